// kiln tokenize --model DIR: reads lines of JSON {"text": ...} on stdin and writes one line of
// {"ids": [...], "text_back": ...} per input line. DIR needs only the tokenizer files.
// A line that cannot be read or encoded gets {"error": ...}; the exit code is then 1.
#include <cstdio>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "command.h"
#include "kiln/text/tokenizer.h"

namespace kiln::app {
namespace {

struct TokenizeArgs {
  std::string model_dir;
  bool no_add_special = false;
  bool keep_special = false;
};

int run_tokenize(const TokenizeArgs& a) {
  auto tok = text::Tokenizer::load(a.model_dir);
  if (!tok.is_ok()) {
    std::fprintf(stderr, "kiln tokenize: %s\n", tok.status().to_string().c_str());
    return 1;
  }
  using nlohmann::json;
  int rc = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    json out;
    try {
      const json in = json::parse(line);
      if (!in.is_object() || !in.contains("text") || !in["text"].is_string())
        throw std::runtime_error("expected an object with a string field \"text\"");
      const bool add_special = in.value("add_special_tokens", !a.no_add_special);
      auto ids = (*tok)->encode(in["text"].get_ref<const std::string&>(), add_special);
      if (!ids.is_ok()) throw std::runtime_error(ids.status().message());
      out["ids"] = *ids;
      out["text_back"] = (*tok)->decode(*ids, !a.keep_special);
    } catch (const std::exception& e) {
      out = json{{"error", e.what()}};
      rc = 1;
    }
    std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
  }
  std::cout.flush();
  return rc;
}

KILN_REGISTER_COMMAND(kTokenize, "tokenize", "Encode lines of JSON {\"text\": ...} from stdin with a model's tokenizer",
                      [](CLI::App& sub) -> std::function<int()> {
                        auto args = std::make_shared<TokenizeArgs>();
                        sub.add_option("--model", args->model_dir, "Directory with tokenizer.json (+ tokenizer_config.json)")
                            ->required();
                        sub.add_flag("--no-add-special", args->no_add_special,
                                     "Do not add the post-processor's special tokens (BOS/EOS); a line's "
                                     "\"add_special_tokens\" overrides this");
                        sub.add_flag("--keep-special", args->keep_special, "Keep special tokens in text_back");
                        return [args] { return run_tokenize(*args); };
                      });

}  // namespace
}  // namespace kiln::app
