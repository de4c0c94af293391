// The keys file (bare keys, and keys with rate limits), key ids, and the rate-limit headers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "kiln/http/auth.h"
#include "kiln/http/rate_limit.h"

namespace kiln::http {
namespace {

std::filesystem::path write_keys(const std::string& name, const std::string& text) {
  auto p = std::filesystem::temp_directory_path() / ("kiln_keys_" + std::to_string(getpid()) + "_" + name);
  std::ofstream(p) << text;
  return p;
}

TEST(KeysFile, BareKeysReadAsBefore) {
  auto p = write_keys("bare", "# comment\nsk-one\n\n  sk-two  \n");
  auto keys = read_api_key_file(p);
  ASSERT_TRUE(keys.is_ok()) << keys.status().to_string();
  EXPECT_EQ(*keys, (std::vector<std::string>{"sk-one", "sk-two"}));
  std::filesystem::remove(p);
}

TEST(KeysFile, PerKeyLimits) {
  auto p = write_keys("limits", "sk-a rpm=60 tpm=100000\nsk-b\ttpm=5\nsk-c rpm=0\nsk-d\n");
  auto e = read_api_key_entries(p);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  ASSERT_EQ(e->size(), 4u);
  EXPECT_EQ((*e)[0].key, "sk-a");
  EXPECT_EQ((*e)[0].rpm, 60);
  EXPECT_EQ((*e)[0].tpm, 100000);
  EXPECT_FALSE((*e)[1].rpm.has_value());
  EXPECT_EQ((*e)[1].tpm, 5);
  EXPECT_EQ((*e)[2].rpm, 0);
  EXPECT_FALSE((*e)[3].rpm.has_value() || (*e)[3].tpm.has_value());
  std::filesystem::remove(p);
}

TEST(KeysFile, BadAttributesNameTheLine) {
  for (const char* bad : {"sk-a rpm\n", "sk-a rpm=-1\n", "sk-a rpm=1x\n", "sk-a burst=3\n", "sk-a rpm=\n"}) {
    auto p = write_keys("bad", std::string("# first\n") + bad);
    auto e = read_api_key_entries(p);
    ASSERT_FALSE(e.is_ok()) << bad;
    EXPECT_NE(e.status().message().find("line 2"), std::string::npos) << e.status().message();
    std::filesystem::remove(p);
  }
  auto empty = write_keys("empty", "# nothing\n");
  EXPECT_FALSE(read_api_key_entries(empty).is_ok());
  std::filesystem::remove(empty);
}

TEST(KeyId, IsADigestPrefixNeverTheKey) {
  const std::string id = key_id("sk-secret");
  EXPECT_EQ(id.size(), 16u);
  EXPECT_EQ(id.rfind("key_", 0), 0u);
  EXPECT_EQ(id.find("secret"), std::string::npos);
  EXPECT_EQ(id, key_id("sk-secret"));
  EXPECT_NE(id, key_id("sk-secreT"));
  HttpRequest r;
  r.remote = "10.0.0.7:51234";
  r.headers.emplace_back("authorization", "Bearer sk-secret");
  EXPECT_EQ(client_id(r, true), id);
  EXPECT_EQ(client_id(r, false), "10.0.0.7");  // without keys: the address, not the port
}

TEST(RateLimitHeaders, OnlyForTheLimitsThatExist) {
  jobs::RateDecision d;
  d.requests = {60, 59, 1000};
  EXPECT_EQ(rate_limit_headers(d), (Headers{{"x-ratelimit-limit-requests", "60"},
                                            {"x-ratelimit-remaining-requests", "59"},
                                            {"x-ratelimit-reset-requests", "1s"}}));
  d.tokens = {1000, 0, 61500};
  Headers h = rate_limit_headers(d);
  ASSERT_EQ(h.size(), 6u);
  EXPECT_EQ(h[5], (std::pair<std::string, std::string>{"x-ratelimit-reset-tokens", "1m1.5s"}));
}

}  // namespace
}  // namespace kiln::http
