#include "kiln/hub/repo.h"

#include <gtest/gtest.h>

#include "kiln/hub/progress.h"
#include "kiln/hub/pull.h"

namespace kiln::hub {
namespace {

TEST(RepoRef, ParsesIdAndRevision) {
  auto r = parse_repo_ref("Qwen/Qwen3-0.6B");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->repo, "Qwen/Qwen3-0.6B");
  EXPECT_EQ(r->revision, "main");
  r = parse_repo_ref("org/name_1.5@refs/pr/1");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->repo, "org/name_1.5");
  EXPECT_EQ(r->revision, "refs/pr/1");
}

TEST(RepoRef, RefusesWhatCouldLeaveTheCache) {
  for (const char* bad : {"name", "a/b/c", "../x", "a/..", "a/.b", "-a/b", "a/b@", "a/b@x..y", "a/b@/x", "a/b c",
                          "a/b@x y", "a\\b/c", ""}) {
    EXPECT_FALSE(parse_repo_ref(bad).is_ok()) << bad;
  }
  EXPECT_FALSE(parse_repo_ref(std::string(97, 'a') + "/b").is_ok());
}

TEST(KilnServes, KeepsWhatKilnReads) {
  for (const char* yes : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                          "special_tokens_map.json", "chat_template.jinja", "chat_template.json", "model.safetensors",
                          "model-00001-of-00004.safetensors", "model.safetensors.index.json", "modules.json",
                          "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json"}) {
    EXPECT_TRUE(kiln_serves(yes)) << yes;
  }
  for (const char* no : {"README.md", "pytorch_model.bin", "model.gguf", "onnx/model.onnx", "2_Dense/config.json",
                         "sub/model.safetensors", ".gitattributes", "tokenizer.model", "1_Pooling/other.json"}) {
    EXPECT_FALSE(kiln_serves(no)) << no;
  }
}

constexpr const char* kInfo = R"({"id": "o/m", "sha": "0123456789abcdef0123456789abcdef01234567", "siblings": [
  {"rfilename": "config.json", "size": 10, "blobId": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
  {"rfilename": "model.safetensors", "size": 134, "blobId": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
   "lfs": {"size": 5000, "sha256": "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc", "pointerSize": 134}},
  {"rfilename": "README.md", "size": 3, "blobId": "dddddddddddddddddddddddddddddddddddddddd"}]})";

TEST(RepoInfo, ReadsTheApiAnswer) {
  auto info = parse_repo_info(kInfo);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->commit, "0123456789abcdef0123456789abcdef01234567");
  ASSERT_EQ(info->files.size(), 3u);
  EXPECT_EQ(info->files[1].size, 5000);  // the LFS object's size, not the pointer's
  EXPECT_EQ(blob_name(info->files[1]), std::string(64, 'c'));
  EXPECT_EQ(blob_name(info->files[0]), std::string(40, 'a'));
  auto files = files_to_pull(*info);
  ASSERT_TRUE(files.is_ok());
  EXPECT_EQ(files->size(), 2u);
}

TEST(RepoInfo, RefusesBadAnswers) {
  EXPECT_FALSE(parse_repo_info("not json").is_ok());
  EXPECT_FALSE(parse_repo_info(R"({"siblings": []})").is_ok());
  EXPECT_FALSE(parse_repo_info(R"({"sha": "0123456789abcdef0123456789abcdef01234567"})").is_ok());
  auto unsafe = parse_repo_info(
      R"({"sha": "0123456789abcdef0123456789abcdef01234567", "siblings": [{"rfilename": "../../etc/x"}]})");
  ASSERT_FALSE(unsafe.is_ok());
  EXPECT_NE(unsafe.status().message().find("unsafe path"), std::string::npos);
  EXPECT_FALSE(parse_repo_info(
                   R"({"sha": "0123456789abcdef0123456789abcdef01234567", "siblings": [{"rfilename": "a", "lfs": {}}]})")
                   .is_ok());
}

TEST(RepoInfo, NeedsConfigAndSafetensors) {
  RepoInfo info;
  info.commit = std::string(40, '0');
  info.files.push_back({"config.json", 2, std::string(40, 'a'), ""});
  auto r = files_to_pull(info);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("safetensors"), std::string::npos);
  info.files.push_back({"model.safetensors", 2, "", ""});  // no blob id, no sha256: nothing to check it by
  EXPECT_FALSE(files_to_pull(info).is_ok());
}

TEST(SelectWeights, TakesWhatTheCheckpointLoaderOpens) {
  auto file = [](const char* p) { return RepoFile{p, 1, std::string(40, 'a'), ""}; };
  const std::vector<RepoFile> all = {file("config.json"), file("model.safetensors.index.json"),
                                     file("model-00001-of-00002.safetensors"), file("model-00002-of-00002.safetensors"),
                                     file("consolidated.safetensors")};
  auto r = select_weights(all, std::string(R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                                              "b": "model-00002-of-00002.safetensors"}})"));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  std::vector<std::string> paths;
  for (const auto& f : *r) paths.push_back(f.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"config.json", "model.safetensors.index.json",
                                              "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}));
  auto missing = select_weights(all, std::string(R"({"weight_map": {"a": "model-00003-of-00003.safetensors"}})"));
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("model-00003-of-00003.safetensors"), std::string::npos);
  EXPECT_FALSE(select_weights(all, std::string("{}")).is_ok());
  // Without an index: model.safetensors only.
  auto single = select_weights({file("config.json"), file("model.safetensors"), file("adapter.safetensors")}, std::nullopt);
  ASSERT_TRUE(single.is_ok());
  EXPECT_EQ(single->size(), 2u);
  EXPECT_FALSE(select_weights({file("config.json"), file("consolidated.safetensors")}, std::nullopt).is_ok());
}

TEST(CacheLayout, MatchesHuggingFaceHub) {
  EXPECT_EQ(repo_cache_dir("/hub", "Qwen/Qwen3-0.6B"), "/hub/models--Qwen--Qwen3-0.6B");
  EXPECT_EQ(blob_link_target("config.json", "abc"), "../../blobs/abc");
  EXPECT_EQ(blob_link_target("1_Pooling/config.json", "abc"), "../../../blobs/abc");
  EXPECT_EQ(url_segment("refs/pr/1"), "refs%2Fpr%2F1");
  EXPECT_EQ(url_path("1_Pooling/config.json"), "1_Pooling/config.json");
  EXPECT_EQ(url_path("a b.json"), "a%20b.json");
}

TEST(FreeSpace, KeepsAMargin) {
  EXPECT_TRUE(check_free_space(100, 100 + kFreeSpaceMargin, "/hub", "o/m").is_ok());
  Status s = check_free_space(3LL << 30, 2LL << 30, "/hub", "o/m");
  ASSERT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(),
            "not enough free space for o/m: it needs 3.00 GiB more (and 64.00 MiB to spare) in /hub, which has 2.00 GiB free");
}

TEST(Progress, RendersRateAndEta) {
  EXPECT_EQ(format_eta(47), "0:47");
  EXPECT_EQ(format_eta(3723), "1:02:03");
  EXPECT_EQ(format_eta(-1), "--:--");
  RateMeter m(5.0);
  m.add(0.0, 0);
  m.add(1.0, 1 << 20);
  m.add(2.0, 2 << 20);
  EXPECT_DOUBLE_EQ(m.bytes_per_second(), 1 << 20);
  m.add(10.0, 2 << 20);  // stalled: the old samples leave the window
  EXPECT_DOUBLE_EQ(m.bytes_per_second(), 0.0);
  EXPECT_EQ(progress_bar_line(1 << 20, 4 << 20, 1 << 20, 8), "[##......]  1.00 MiB / 4.00 MiB  25%  1.00 MiB/s  ETA 0:03");
  EXPECT_EQ(progress_plain_line(4 << 20, 4 << 20, 0), "pull: 4.00 MiB / 4.00 MiB (100%), 0 B/s, ETA 0:00");
  EXPECT_EQ(progress_plain_line(1, 4 << 20, 0), "pull: 1 B / 4.00 MiB (0%), 0 B/s, ETA --:--");
}

}  // namespace
}  // namespace kiln::hub
