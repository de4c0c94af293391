// The model registry: directory scans (models dir, nested ORG/NAME, the Hugging Face cache),
// precedence between sources, kiln.toml model tables and durations.
#include "kiln/pool/registry.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "kiln/core/file.h"
#include "kiln/core/str.h"

namespace kiln::pool {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    static int n = 0;
    path_ = fs::temp_directory_path() / str_cat("kiln-registry-test-", getpid(), "-", n++);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A directory that looks like a model to the registry (the registry never reads the weights).
void fake_model(const fs::path& dir, bool sharded = false) {
  fs::create_directories(dir);
  ASSERT_TRUE(write_file_atomic(dir / "config.json", "{}").is_ok());
  ASSERT_TRUE(write_file_atomic(dir / (sharded ? "model.safetensors.index.json" : "model.safetensors"), "x").is_ok());
}

std::vector<std::string> ids(const std::vector<ModelEntry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.id);
  return out;
}

TEST(Duration, Parses) {
  EXPECT_EQ(parse_duration("30s").value(), Millis(30'000));
  EXPECT_EQ(parse_duration("5m").value(), Millis(300'000));
  EXPECT_EQ(parse_duration("1h").value(), Millis(3'600'000));
  EXPECT_EQ(parse_duration("1h30m").value(), Millis(5'400'000));
  EXPECT_EQ(parse_duration("250ms").value(), Millis(250));
  EXPECT_EQ(parse_duration("0").value(), Millis(0));
  EXPECT_EQ(parse_duration("2.5").value(), Millis(2500));
  EXPECT_EQ(parse_duration("-1").value(), Millis(-1));
  EXPECT_EQ(parse_duration("-5m").value(), Millis(-1));
  EXPECT_FALSE(parse_duration("").is_ok());
  EXPECT_FALSE(parse_duration("soon").is_ok());
  EXPECT_FALSE(parse_duration("5 minutes").is_ok());
  EXPECT_EQ(parse_duration("7d").value(), Millis(604'800'000));
  EXPECT_EQ(parse_duration("1d12h").value(), Millis(129'600'000));
  EXPECT_FALSE(parse_duration("5w").is_ok());
  EXPECT_FALSE(parse_duration("5m3").is_ok());
  EXPECT_EQ(format_duration(Millis(-1)), "forever");
  EXPECT_EQ(format_duration(Millis(300'000)), "5m");
  EXPECT_EQ(format_duration(Millis(1500)), "1500ms");
  EXPECT_EQ(format_duration(Millis(0)), "0s");
}

TEST(Registry, ScansModelsDirWithOrgFolders) {
  TempDir t;
  fake_model(t.path() / "llama-a");
  fake_model(t.path() / "meta" / "llama-b", /*sharded=*/true);
  fake_model(t.path() / ".hidden");
  fs::create_directories(t.path() / "empty-org" / "not-a-model");
  fs::create_directories(t.path() / "config-only");
  ASSERT_TRUE(write_file_atomic(t.path() / "config-only" / "config.json", "{}").is_ok());
  auto entries = scan_models_dir(t.path());
  EXPECT_EQ(ids(entries), (std::vector<std::string>{"llama-a", "meta/llama-b"}));
  EXPECT_EQ(entries[1].owned_by, "meta");
  EXPECT_EQ(entries[0].owned_by, "kiln");
  EXPECT_EQ(entries[1].dir, t.path() / "meta" / "llama-b");
  EXPECT_TRUE(scan_models_dir(t.path() / "missing").empty());
}

TEST(Registry, ScansHuggingFaceCache) {
  TempDir t;
  const fs::path repo = t.path() / "models--Qwen--Qwen3-0.6B";
  fake_model(repo / "snapshots" / "aaa");
  fake_model(repo / "snapshots" / "bbb");
  fs::create_directories(repo / "refs");
  ASSERT_TRUE(write_file_atomic(repo / "refs" / "main", "aaa\n").is_ok());
  fake_model(t.path() / "models--gpt2" / "snapshots" / "ccc");
  fake_model(t.path() / "datasets--x--y" / "snapshots" / "ddd");
  fs::create_directories(t.path() / "models--half--done" / "snapshots" / "eee");
  auto entries = scan_hf_cache(t.path());
  ASSERT_EQ(ids(entries), (std::vector<std::string>{"Qwen/Qwen3-0.6B", "gpt2"}));
  EXPECT_EQ(entries[0].dir, repo / "snapshots" / "aaa");  // refs/main wins over the newer snapshot
  EXPECT_EQ(entries[0].source, ModelSource::kHuggingFaceCache);
  EXPECT_EQ(entries[0].owned_by, "Qwen");
}

TEST(Registry, ConfiguredModelsShadowScannedOnes) {
  TempDir t;
  fake_model(t.path() / "models" / "a");
  fake_model(t.path() / "models" / "b");
  fake_model(t.path() / "hub" / "models--org--c" / "snapshots" / "r1");
  fake_model(t.path() / "hub" / "models--a" / "snapshots" / "r1");
  RegistryScan scan;
  scan.models_dirs = {t.path() / "models"};
  scan.hf_hub = t.path() / "hub";
  ModelEntry alias;
  alias.id = "b";
  alias.dir = t.path() / "models" / "a";
  alias.source = ModelSource::kConfig;
  scan.configured = {alias};
  std::vector<std::string> notes;
  auto entries = scan_registry(scan, &notes);
  EXPECT_EQ(ids(entries), (std::vector<std::string>{"b", "a", "org/c"}));
  EXPECT_EQ(entries[0].dir, t.path() / "models" / "a");
  EXPECT_EQ(notes.size(), 2u);  // models/b and the hub's `a`
}

std::map<std::string, SettingValue> values(std::initializer_list<std::pair<std::string, std::string>> kv) {
  std::map<std::string, SettingValue> out;
  int line = 1;
  for (const auto& [k, v] : kv) out[k] = SettingValue{{v}, false, line++};
  return out;
}

TEST(Registry, ParsesModelTables) {
  auto v = values({{"models.chat.path", "models/llama"},
                   {"models.chat.context_length", "4096"},
                   {"models.chat.max_seqs", "8"},
                   {"models.chat.kv_cache_memory", "1GiB"},
                   {"models.chat.pinned", "true"},
                   {"models.chat.keep_alive", "10m"},
                   {"models.chat.temperature", "0.2"},
                   {"models.chat.top_k", "40"},
                   {"models.chat.tool_parser", "hermes"},
                   {"models.chat.reasoning_parser", "none"},
                   {"models.qwen2.5-1.5b.path", "/abs/qwen"},
                   {"models.qwen2.5-1.5b.kv_share", "0.25"},
                   {"models.qwen2.5-1.5b.kind", "rerank"},
                   {"models.org/name.path", "~/m"},
                   {"port", "8000"}});
  auto r = parse_model_tables(v, "kiln.toml", "/etc/kiln");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 3u);
  const ModelEntry& chat = (*r)[0];
  EXPECT_EQ(chat.id, "chat");
  EXPECT_EQ(chat.dir, fs::path("/etc/kiln/models/llama"));
  EXPECT_EQ(chat.source, ModelSource::kConfig);
  EXPECT_EQ(chat.settings.context_length, 4096);
  EXPECT_EQ(chat.settings.max_seqs, 8);
  EXPECT_EQ(chat.settings.kv_cache_bytes, int64_t{1} << 30);
  EXPECT_TRUE(chat.settings.pinned);
  EXPECT_EQ(chat.settings.keep_alive, Millis(600'000));
  EXPECT_DOUBLE_EQ(chat.settings.temperature.value(), 0.2);
  EXPECT_EQ(chat.settings.top_k, 40);
  EXPECT_EQ(chat.settings.tool_parser, "hermes");
  EXPECT_EQ(chat.settings.reasoning_parser, "none");
  EXPECT_FALSE((*r)[1].settings.tool_parser.has_value());  // detected from the template at load
  EXPECT_EQ((*r)[1].id, "qwen2.5-1.5b");
  EXPECT_EQ((*r)[1].dir, fs::path("/abs/qwen"));
  EXPECT_DOUBLE_EQ((*r)[1].settings.kv_share.value(), 0.25);
  EXPECT_EQ((*r)[1].settings.kind, model::ModelKind::kRerank);
  EXPECT_FALSE(chat.settings.kind.has_value());  // from the model's files
  EXPECT_EQ((*r)[2].id, "org/name");
}

TEST(Registry, ModelTableErrorsNameTheLineAndKey) {
  auto expect_error = [](std::initializer_list<std::pair<std::string, std::string>> kv, const std::string& needle) {
    auto r = parse_model_tables(values(kv), "kiln.toml", "/");
    ASSERT_FALSE(r.is_ok()) << needle;
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("kiln.toml:"), std::string::npos) << r.status().message();
  };
  expect_error({{"models.a.context_length", "4096"}}, "has no path");
  expect_error({{"models.a.path", "x"}, {"models.a.colour", "red"}}, "'models.a.colour' is not a model setting");
  expect_error({{"models.a.path", "x"}, {"models.a.max_seqs", "lots"}}, "'models.a.max_seqs' must be an integer");
  expect_error({{"models.a.path", "x"}, {"models.a.pinned", "yes"}}, "takes true or false");
  expect_error({{"models.a.path", "x"}, {"models.a.keep_alive", "soon"}}, "'models.a.keep_alive'");
  expect_error({{"models.a.path", "x"}, {"models.a.kv_share", "2"}}, "must be a number from");
  expect_error({{"models.a.path", "x"}, {"models.a.kv_cache_memory", "1G"}, {"models.a.kv_share", "0.5"}},
               "sets both");
  expect_error({{"models.path", "x"}}, "is not a model setting");
  expect_error({{"models.a.path", "x"}, {"models.a.tool_parser", "qwen"}}, "'qwen' is not a tool_parser (hermes,");
  expect_error({{"models.a.path", "x"}, {"models.a.reasoning_parser", "hermes"}}, "is not a reasoning_parser (think");
  expect_error({{"models.a.path", "x"}, {"models.a.kind", "classify"}}, "must be generate, embed or rerank");
}

}  // namespace
}  // namespace kiln::pool
