// The seed's model, queue and health routes through the real server, on SQLite and PostgreSQL:
// each answers from the same pool, engine and job-store state as kiln's own endpoints.
#include "integration/jobs_fixture.h"

namespace kiln::testing {
namespace {

constexpr const char* kAdmin = "Authorization: Bearer adm-key\r\n";

class JobsAliases : public JobsServer {
 protected:
  void start_with_keys() { start({"--api-key", "user-key", "--admin-key", "adm-key"}); }
  RawResponse admin(const std::string& method, const std::string& path, const std::string& body = "") {
    return send(http_request(method, path, body, kAdmin));
  }
  json admin_json(const std::string& path, int* status = nullptr) {
    RawResponse r = admin("GET", path);
    if (status != nullptr) *status = r.status;
    return json::parse(r.body, nullptr, false);
  }
  RawResponse user_chat(const std::string& body, const std::string& id) {
    return send(http_request("POST", "/v1/chat/completions", body,
                             "Authorization: Bearer user-key\r\nX-Request-ID: " + id + "\r\n"));
  }
};

TEST_P(JobsAliases, TakeTheAdminKey) {
  start_with_keys();
  for (const char* path : {"/v1/queue/stats", "/v1/health/metrics", "/v1/models/tiny/info", "/v1/models/tiny/stats"}) {
    EXPECT_EQ(send(http_request("GET", path)).status, 401) << path;
    EXPECT_EQ(send(http_request("GET", path, "", "Authorization: Bearer user-key\r\n")).status, 401) << path;
    EXPECT_EQ(admin("GET", path).status, 200) << path;
  }
  EXPECT_EQ(send(http_request("POST", "/v1/models/load", R"({"model":"tiny"})", "Authorization: Bearer user-key\r\n")).status, 401);
  EXPECT_EQ(send(http_request("DELETE", "/v1/models/tiny/unload", "", "Authorization: Bearer user-key\r\n")).status, 401);
  // The model's own entry stays an API-key route.
  EXPECT_EQ(send(http_request("GET", "/v1/models/tiny", "", "Authorization: Bearer user-key\r\n")).status, 200);
}

TEST_P(JobsAliases, LoadInfoStatsQueueHealthAndUnload) {
  start_with_keys();
  RawResponse load = admin("POST", "/v1/models/load", R"({"model":"tiny"})");
  ASSERT_EQ(load.status, 200) << load.body;
  EXPECT_EQ(json::parse(load.body)["state"], "ready");
  EXPECT_EQ(admin("POST", "/v1/models/load", "{}").status, 400);
  EXPECT_EQ(admin("POST", "/v1/models/load", R"({"model":"nope"})").status, 404);
  EXPECT_EQ(admin("POST", "/v1/models/load", R"({"model":"tiny","pinned":"yes"})").status, 400);

  json info = admin_json("/v1/models/tiny/info");
  EXPECT_EQ(info["object"], "model.info");
  EXPECT_EQ(info["state"], "ready");
  EXPECT_TRUE(info["architecture"].is_string()) << info.dump();
  EXPECT_GT(info["parameters"].get<int64_t>(), 0);
  EXPECT_EQ(info["context_length"], 2048);
  EXPECT_TRUE(info["dtype"].is_string());
  EXPECT_GT(info["memory"]["used_bytes"].get<int64_t>(), 0);
  EXPECT_EQ(info["memory"]["peak_bytes"], info["memory"]["used_bytes"]);
  int status = 0;
  admin_json("/v1/models/nope/info", &status);
  EXPECT_EQ(status, 404);

  ASSERT_EQ(user_chat(chat(false, 3, true), "s-1").status, 200);
  ASSERT_EQ(user_chat(chat(true, 3, true), "s-2").status, 200);
  // Refused once its model is known (too long for the context): an error of this model. One
  // refused before (a malformed body) has no model and is not counted here.
  ASSERT_EQ(user_chat(chat(false, 4000, true), "s-3").status, 400);
  ASSERT_EQ(user_chat(R"({"model":"tiny","messages":"bad"})", "s-4").status, 400);
  // The job store is written a batch behind the answers, and the model-less refusal (s-4) may be
  // written in a later batch than the other three: wait for all four.
  json stats, all;
  ASSERT_TRUE(eventually([&] {
    stats = admin_json("/v1/models/tiny/stats");
    all = admin_json("/v1/jobs/stats");
    return stats.contains("requests") && stats["requests"]["total"] == 3 && all["total"] == 4;
  })) << stats.dump() << " " << all.dump();
  EXPECT_EQ(stats["object"], "model.stats");
  EXPECT_EQ(stats["requests"]["by_status"]["completed"], 2);
  EXPECT_EQ(stats["errors"], 1);
  EXPECT_EQ(stats["usage"]["completion_tokens"], 6);
  EXPECT_EQ(stats["latency_ms"]["duration"]["count"], 3);
  EXPECT_GE(stats["latency_ms"]["ttft"]["p99"].get<double>(), stats["latency_ms"]["ttft"]["p50"].get<double>());
  EXPECT_GT(stats["tokens_per_second"].get<double>(), 0.0);
  EXPECT_GE(stats["loads"].get<int64_t>(), 1);
  EXPECT_EQ(stats["evictions"], 0);
  EXPECT_GT(stats["memory"]["used_bytes"].get<int64_t>(), 0);
  admin_json("/v1/models/tiny/stats?window=nonsense", &status);
  EXPECT_EQ(status, 400);
  // The jobs API's stats filter by model the same way.
  json other = admin_json("/v1/jobs/stats?model=other");
  EXPECT_EQ(other["total"], 0);
  EXPECT_EQ(admin_json("/v1/jobs/stats")["total"], 4);  // read again: it stays

  // A finished request leaves the worker's running set at the step after its last token, which may
  // come just after the client has read its answer: wait for it rather than read it once.
  json queue;
  ASSERT_TRUE(eventually([&] {
    queue = admin_json("/v1/queue/stats");
    return queue["queue_stats"]["running"] == 0;
  })) << queue.dump();
  EXPECT_EQ(queue["status"], "ok");
  const json& q = queue["queue_stats"];
  for (const char* k : {"running", "queue_size", "max_queue_size", "active_requests", "max_concurrency"}) {
    EXPECT_TRUE(q[k].is_number_integer()) << k << " " << queue.dump();
    EXPECT_EQ(q[k], q["models"]["tiny"][k]) << k;  // one model: the total is its figures
  }
  EXPECT_EQ(q["running"], 0);
  EXPECT_EQ(q["queue_size"], 0);
  EXPECT_GT(q["max_queue_size"].get<int64_t>(), 0);
  EXPECT_GT(q["max_concurrency"].get<int64_t>(), 0);

  json health = admin_json("/v1/health/metrics");
  EXPECT_EQ(health["status"], "ok");
  EXPECT_EQ(health["active_models"], json::array({"tiny"}));
  ASSERT_EQ(health["models"].size(), 1u);
  EXPECT_GT(health["models"][0]["memory"]["used_bytes"].get<int64_t>(), 0);
  EXPECT_GT(health["models"][0]["kv_cache"]["blocks_total"].get<int64_t>(), 0);
  EXPECT_EQ(health["queue"]["depth"], 0);
  EXPECT_EQ(health["throughput"]["requests"], 4);
  EXPECT_GT(health["throughput"]["output_tokens_per_second"].get<double>(), 0.0);
  EXPECT_EQ(health["latency_ms"]["duration"]["count"], 4);

  RawResponse unload = admin("DELETE", "/v1/models/tiny/unload");
  ASSERT_EQ(unload.status, 200) << unload.body;
  EXPECT_EQ(json::parse(unload.body)["state"], "unloaded");
  info = admin_json("/v1/models/tiny/info");
  EXPECT_EQ(info["state"], "unloaded");
  EXPECT_TRUE(info["architecture"].is_string());  // from the model's config.json
  EXPECT_TRUE(info["context_length"].is_null());
  health = admin_json("/v1/health/metrics");
  EXPECT_EQ(health["active_models"], json::array());
  EXPECT_EQ(admin("DELETE", "/v1/models/tiny").status, 404);
  EXPECT_EQ(admin("DELETE", "/v1/models/nope/unload").status, 404);
  EXPECT_EQ(admin("DELETE", "/v1/models/tiny/unload?force=maybe").status, 400);
}

TEST_P(JobsAliases, ForceUnloadCancelsRequestsInFlight) {
  start_with_keys();
  RawClient client(server_->port());
  ASSERT_TRUE(client.send(http_request("POST", "/v1/chat/completions", chat(true, 1900, true),
                                       "Authorization: Bearer user-key\r\nX-Request-ID: long-f\r\n")));
  ASSERT_TRUE(eventually([&] { return admin_json("/v1/jobs/long-f").value("status", "") == "running"; }));
  RawResponse unload = admin("DELETE", "/v1/models/tiny/unload?force=true");
  ASSERT_EQ(unload.status, 200) << unload.body;
  EXPECT_EQ(json::parse(unload.body)["state"], "unloaded");
  auto r = client.read_response(60000);
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(r->body.find("request_cancelled"), std::string::npos);
  ASSERT_TRUE(eventually([&] { return admin_json("/v1/jobs/long-f").value("status", "") == "cancelled"; }));
  EXPECT_LT(admin_json("/v1/jobs/long-f")["usage"]["completion_tokens"].get<int>(), 1900);
}

INSTANTIATE_TEST_SUITE_P(Backends, JobsAliases, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace kiln::testing
