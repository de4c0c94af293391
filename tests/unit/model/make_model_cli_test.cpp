// `kiln make-model` as users run it: the real binary, its output and its exit codes.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "kiln/model/checkpoint.h"
#include "kiln/model/config.h"

namespace kiln::model {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int code = -1;
  std::string output;  // stdout and stderr
};

CliRun run_kiln(const std::string& args) {
  CliRun r;
  const std::string cmd = std::string(KILN_BINARY) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(MakeModelCli, ListsPresets) {
  CliRun r = run_kiln("make-model --list-presets");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* name : {"llama-3.2-1b", "llama-3.1-8b", "qwen3-0.6b", "qwen2.5-1.5b", "mistral-7b", "tiny-llama",
                           "tiny-mistral", "tiny-qwen2", "tiny-qwen3", "bench-100m", "qwen3-30b-a3b", "mixtral-8x7b",
                           "gemma3-1b", "gemma3-4b", "tiny-qwen3-moe", "tiny-mixtral", "tiny-gemma3"}) {
    EXPECT_NE(r.output.find(name), std::string::npos) << name;
  }
  EXPECT_NE(r.output.find("100,092,672"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("30,532,122,624"), std::string::npos) << r.output;  // Qwen3-30B-A3B
}

TEST(MakeModelCli, WritesAModelAndSaysWhat) {
  const fs::path out = fs::temp_directory_path() / ("kiln_cli_mm_" + std::to_string(::getpid()));
  fs::remove_all(out);
  const std::string tok = (fs::path(KILN_SOURCE_DIR) / "node_modules").string();
  CliRun r = run_kiln("make-model --preset tiny-mistral --seed 9 --vocab-size 1024 --allow-small-vocab --num-layers 3 "
               "--sliding-window 8 --dtype f32 --max-shard-size 200K --threads 2 --tokenizer-dir " + tok + " --out " +
               out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("parameters"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("seconds"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("numerical tests only"), std::string::npos) << r.output;
  auto cfg = load_model_config(out);
  ASSERT_TRUE(cfg.is_ok()) << cfg.status().to_string();
  EXPECT_EQ(cfg->architecture, Architecture::kMistral);
  EXPECT_EQ(cfg->num_layers, 3);
  EXPECT_EQ(cfg->vocab_size, 1024);
  EXPECT_EQ(cfg->sliding_window, std::optional<int64_t>(8));
  EXPECT_EQ(cfg->torch_dtype, DType::kF32);
  EXPECT_TRUE(fs::exists(out / "model.safetensors.index.json"));
  auto ck = Checkpoint::open(out);
  ASSERT_TRUE(ck.is_ok()) << ck.status().to_string();
  EXPECT_TRUE((*ck)->get("lm_head.weight", {1024, 64}).is_ok());
  fs::remove_all(out);
}

TEST(MakeModelCli, BadArgumentsFailWithTheirName) {
  CliRun dtype = run_kiln("make-model --preset tiny-llama --dtype f16 --out /tmp/never");
  EXPECT_EQ(dtype.code, 1);
  EXPECT_NE(dtype.output.find("--dtype"), std::string::npos) << dtype.output;
  CliRun size = run_kiln("make-model --preset tiny-llama --max-shard-size lots --out /tmp/never");
  EXPECT_EQ(size.code, 1);
  EXPECT_NE(size.output.find("--max-shard-size"), std::string::npos) << size.output;
  CliRun heads = run_kiln("make-model --preset tiny-llama --num-heads 0 --out /tmp/never");
  EXPECT_EQ(heads.code, 1);
  EXPECT_NE(heads.output.find("num_attention_heads"), std::string::npos) << heads.output;
  CliRun no_out = run_kiln("make-model --preset tiny-llama");
  EXPECT_EQ(no_out.code, 1);
  EXPECT_NE(no_out.output.find("--out"), std::string::npos) << no_out.output;
  CliRun arch = run_kiln("make-model --architecture gpt2 --out /tmp/never");
  EXPECT_EQ(arch.code, 1);
  EXPECT_NE(arch.output.find("gpt2"), std::string::npos) << arch.output;
  EXPECT_FALSE(fs::exists("/tmp/never"));
}

}  // namespace
}  // namespace kiln::model
