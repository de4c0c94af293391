// Every label of the HTTP metrics comes from a bounded set, whatever a client sends.
#include "kiln/http/request_metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln::http {
namespace {

class RequestMetricsTest : public ::testing::Test {
 protected:
  RequestMetricsTest() : metrics_(registry_, [](std::string_view id) { return id == "tiny"; }) {
    metrics_.add_route("/v1/completions");
    metrics_.add_route("/v1/models/{id}");
  }
  static AccessRecord request(std::string method, std::string path, std::string route, int status) {
    AccessRecord r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.route = std::move(route);
    r.status = status;
    return r;
  }
  static AccessRecord generation(std::string model, int status) {
    AccessRecord r = request("POST", "/v1/completions", "/v1/completions", status);
    r.model = std::move(model);
    r.prompt_tokens = 3;
    r.completion_tokens = 2;
    return r;
  }

  metrics::Registry registry_;
  RequestMetrics metrics_;
};

TEST_F(RequestMetricsTest, MethodsOutsideTheKnownSetAreOther) {
  for (const char* m : {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}) {
    EXPECT_EQ(RequestMetrics::method_label(m), m);
  }
  for (const char* m : {"get", "FOO", "", "PROPFIND", "GET "}) EXPECT_EQ(RequestMetrics::method_label(m), "other") << m;
  EXPECT_EQ(RequestMetrics::method_label(std::string(16384, 'X')), "other");
}

TEST_F(RequestMetricsTest, RoutesAreRegisteredPatternsNeverRawPaths) {
  EXPECT_EQ(metrics_.route_label("/v1/models/{id}"), "/v1/models/{id}");
  EXPECT_EQ(metrics_.route_label("/v1/completions"), "/v1/completions");
  EXPECT_EQ(metrics_.route_label("unmatched"), "unmatched");
  EXPECT_EQ(metrics_.route_label("preflight"), "preflight");
  EXPECT_EQ(metrics_.route_label(""), "none");
  EXPECT_EQ(metrics_.route_label("/v1/models/tiny"), "unmatched");
  EXPECT_EQ(metrics_.route_label("/anything/else"), "unmatched");
}

TEST_F(RequestMetricsTest, StatusesOutsideHttpsRangeAreOther) {
  EXPECT_EQ(RequestMetrics::status_label(200), "200");
  EXPECT_EQ(RequestMetrics::status_label(499), "499");
  EXPECT_EQ(RequestMetrics::status_label(0), "other");
  EXPECT_EQ(RequestMetrics::status_label(1000), "other");
}

TEST_F(RequestMetricsTest, ThousandsOfUniqueMethodsAndPathsAddNoSeries) {
  // The first request of each shape creates its series; the thousands after it add none.
  auto shapes = [&](int i) {
    std::string u = std::to_string(i);
    metrics_.record(request("M" + u, "/v1/completions", "/v1/completions", 405));
    metrics_.record(request("GET", "/nothing/" + u, "unmatched", 404));
    metrics_.record(request("GET", "/v1/models/m" + u, "/v1/models/{id}", 401));
    metrics_.record(request("X" + std::string(16384, 'x') + u, "/raw/" + u, "", 400));  // answered before routing
    metrics_.record(request("GET", "/raw/" + u, "/raw/" + u, 408));  // a route that is not a pattern
    metrics_.record(generation("unknown-" + u, 404));
  };
  shapes(0);
  const size_t series = registry_.series_count();
  const size_t bytes = registry_.render().size();
  for (int i = 1; i < 3000; ++i) shapes(i);
  EXPECT_EQ(registry_.series_count(), series);
  std::string text = registry_.render();
  EXPECT_LT(text.size(), bytes + 2000);  // only the counts' digits grow
  EXPECT_EQ(text.find("M1"), std::string::npos);
  EXPECT_EQ(text.find("/nothing/"), std::string::npos);
  EXPECT_EQ(text.find("/raw/"), std::string::npos);
  EXPECT_EQ(text.find("unknown-"), std::string::npos);
  EXPECT_NE(text.find("kiln_http_requests_total{route=\"/v1/completions\",method=\"other\",status=\"405\"} 3000\n"),
            std::string::npos);
  EXPECT_NE(text.find("kiln_http_requests_total{route=\"none\",method=\"other\",status=\"400\"} 3000\n"),
            std::string::npos);
  EXPECT_NE(text.find("kiln_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 3000\n"),
            std::string::npos);
}

TEST_F(RequestMetricsTest, ModelLabelsOnlyForListedModelsAndCancelledApartFromErrors) {
  metrics_.record(generation("tiny", 200));
  metrics_.record(generation("tiny", 499));
  metrics_.record(generation("tiny", 500));
  metrics_.record(generation("not-listed", 200));
  std::string text = registry_.render();
  for (const char* s : {"200", "499", "500"}) {
    EXPECT_NE(text.find("kiln_generation_requests_total{model=\"tiny\",status=\"" + std::string(s) + "\"} 1\n"),
              std::string::npos)
        << s;
  }
  EXPECT_NE(text.find("kiln_prompt_tokens_total{model=\"tiny\"} 9\n"), std::string::npos);
  EXPECT_EQ(text.find("not-listed"), std::string::npos);
}

}  // namespace
}  // namespace kiln::http
