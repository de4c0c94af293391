// The web UI's files as the server answers them: client routes, cache headers, ETag and 304.
#include "kiln/http/static_site.h"

#include <gtest/gtest.h>

#include <array>

namespace kiln::http {
namespace {

const std::array<StaticAsset, 2> kSite = {{
    {"/index.html", "text/html; charset=utf-8", "\"aaa\"", "<!doctype html>page"},
    {"/assets/app-1.js", "text/javascript; charset=utf-8", "\"bbb\"", "console.log(1)"},
}};

std::string header(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

TEST(StaticSite, ClientRoutesAnswerTheIndex) {
  for (const char* p : {"/", "/models", "/playground", "/live", "/jobs", "/jobs/job_1"}) {
    auto r = serve_static(kSite, p, nullptr);
    ASSERT_TRUE(r) << p;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "<!doctype html>page");
    EXPECT_EQ(r->content_type, "text/html; charset=utf-8");
    EXPECT_EQ(header(*r, "Cache-Control"), "no-cache");
    EXPECT_EQ(header(*r, "ETag"), "\"aaa\"");
    EXPECT_EQ(header(*r, "X-Frame-Options"), "DENY");
    EXPECT_NE(header(*r, "Content-Security-Policy").find("frame-ancestors 'none'"), std::string::npos);
  }
}

TEST(StaticSite, AssetsAreImmutable) {
  auto r = serve_static(kSite, "/assets/app-1.js", nullptr);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "console.log(1)");
  EXPECT_EQ(header(*r, "Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(header(*r, "X-Content-Type-Options"), "nosniff");
}

TEST(StaticSite, OtherPathsAreNotTheUis) {
  // Left to the API's 404: unknown files, the index by name, paths above a client route.
  for (const char* p : {"/assets/nope.js", "/index.html", "/v1/nope", "/jobs/a/b", "/jobs/", "/modelsx", "/assets/"}) {
    EXPECT_FALSE(serve_static(kSite, p, nullptr)) << p;
  }
}

TEST(StaticSite, MatchingEtagAnswers304WithoutBody) {
  for (std::string inm : {"\"bbb\"", "W/\"bbb\"", "\"x\", \"bbb\"", "*"}) {
    auto r = serve_static(kSite, "/assets/app-1.js", &inm);
    ASSERT_TRUE(r) << inm;
    EXPECT_EQ(r->status, 304) << inm;
    EXPECT_TRUE(r->body.empty());
    EXPECT_EQ(header(*r, "ETag"), "\"bbb\"");
  }
  std::string other = "\"aaa\"";
  EXPECT_EQ(serve_static(kSite, "/assets/app-1.js", &other)->status, 200);
}

TEST(StaticSite, NoAssetsNoUi) {
  EXPECT_FALSE(serve_static({}, "/", nullptr));
}

}  // namespace
}  // namespace kiln::http
