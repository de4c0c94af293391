// The jobs API: GET /v1/jobs, GET|DELETE /v1/jobs/{id}, GET /v1/jobs/stats, GET /v1/jobs/export
// (docs/jobs.md). Reads run on the job store's query thread and come back to the exchange's
// strand; a request in flight here is answered from memory (the store lags by a batch).
#include <charconv>
#include <cmath>
#include <map>
#include <memory>

#include "kiln/core/str.h"
#include "kiln/http/handlers.h"
#include "kiln/http/job_tracker.h"
#include "kiln/http/json_fields.h"
#include "kiln/pool/registry.h"

namespace kiln::http {

namespace {

using jobs::Job;
using jobs::JobFilter;
using jobs::JobStore;

// Export: pages of this many jobs, and no next page while this much is still unsent.
constexpr int kExportPage = 500;
constexpr size_t kExportBacklogBytes = 1 << 20;
constexpr auto kExportBackoff = std::chrono::milliseconds(20);
constexpr auto kDefaultStatsWindow = std::chrono::hours(24);

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json ms_or_null(int64_t v) { return v > 0 ? Json(v) : Json(nullptr); }
Json delta_or_null(int64_t v) { return v >= 0 ? Json(v) : Json(nullptr); }

Json job_json(const Job& j) {
  Json o = {{"id", j.id},
            {"object", "job"},
            {"created_at", j.received_ms / 1000},
            {"status", std::string(jobs::job_status_name(j.status))},
            {"model", j.model},
            {"endpoint", j.endpoint},
            {"client", j.client},
            {"node", j.node},
            {"stream", j.stream},
            {"received_ms", j.received_ms},
            {"started_ms", ms_or_null(j.started_ms)},
            {"first_token_ms", ms_or_null(j.first_token_ms)},
            {"finished_ms", ms_or_null(j.finished_ms)},
            {"queue_wait_ms", delta_or_null(j.queue_wait_ms())},
            {"ttft_ms", delta_or_null(j.ttft_ms())},
            {"duration_ms", delta_or_null(j.duration_ms())},
            {"usage",
             {{"prompt_tokens", j.prompt_tokens},
              {"completion_tokens", j.completion_tokens},
              {"total_tokens", j.prompt_tokens + j.completion_tokens}}},
            {"finish_reason", j.finish_reason.empty() ? Json(nullptr) : Json(j.finish_reason)},
            {"http_status", j.http_status > 0 ? Json(j.http_status) : Json(nullptr)},
            {"error", j.error_code.empty() && j.error_message.empty()
                          ? Json(nullptr)
                          : Json{{"code", j.error_code}, {"message", j.error_message}}}};
  if (!j.request_body.empty()) o["request_body"] = j.request_body;
  if (!j.response_body.empty()) o["response_body"] = j.response_body;
  return o;
}

}  // namespace

// ?a=1&b=x -> {a: 1, b: x}, percent-decoded ('+' is a space); nullopt on a bad escape.
std::optional<std::map<std::string, std::string>> query_params(const std::string& target) {
  std::map<std::string, std::string> out;
  const size_t q = target.find('?');
  if (q == std::string::npos) return out;
  for (const auto& part : split(std::string_view(target).substr(q + 1), '&')) {
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    std::string k = part.substr(0, eq), v = eq == std::string::npos ? "" : part.substr(eq + 1);
    for (char& c : v) {
      if (c == '+') c = ' ';
    }
    std::string dk, dv;
    if (!percent_decode(k, &dk) || !percent_decode(v, &dv)) return std::nullopt;
    out[dk] = dv;
  }
  return out;
}

ApiError jobs_off() {
  return error_with_status(404, "Job tracking is off on this server (--database off).", "jobs_disabled");
}

ApiError store_error(const Status& s) {
  ApiError e = error_with_status(503, str_cat("The job store is unavailable: ", s.message()), "job_store_unavailable");
  e.type = "server_error";
  e.retry_after_seconds = 1;
  return e;
}

namespace {

ApiError busy() {
  ApiError e = error_with_status(503, "Too many job queries are waiting; retry shortly.", "job_store_busy");
  e.type = "server_error";
  e.retry_after_seconds = 1;
  return e;
}

// Unix seconds (a decimal fraction allowed) -> Unix milliseconds.
std::optional<ApiError> read_time(const std::map<std::string, std::string>& q, const char* name, int64_t* out) {
  auto it = q.find(name);
  if (it == q.end()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || end != it->second.c_str() + it->second.size() || !std::isfinite(v) || v < 0 || v > 1e11) {
    return invalid_param(name, "expected Unix time in seconds, e.g. 1735689600.");
  }
  *out = static_cast<int64_t>(std::llround(v * 1000.0));
  return std::nullopt;
}

// Reads the list/export filters; `allowed` extra names are accepted (and read by the caller).
std::optional<ApiError> read_filter(const std::map<std::string, std::string>& q, JobFilter* f,
                                    std::initializer_list<const char*> allowed) {
  for (const auto& [k, v] : q) {
    static const char* kKnown[] = {"status", "model", "client", "endpoint", "since", "until", "after", "limit"};
    bool ok = std::find_if(std::begin(kKnown), std::end(kKnown), [&](const char* n) { return k == n; }) != std::end(kKnown);
    for (const char* a : allowed) ok = ok || k == a;
    if (!ok) return invalid_param(k, str_cat("unknown query parameter '", echo_value(k), "'."), "unknown_parameter");
  }
  if (auto it = q.find("status"); it != q.end()) {
    f->status = jobs::parse_job_status(it->second);
    if (!f->status) {
      return invalid_param("status", str_cat("'", echo_value(it->second),
                                             "' is not a job status (queued, running, completed, failed, cancelled)."));
    }
  }
  if (auto it = q.find("model"); it != q.end()) f->model = it->second;
  if (auto it = q.find("client"); it != q.end()) f->client = it->second;
  if (auto it = q.find("endpoint"); it != q.end()) f->endpoint = it->second;
  if (auto it = q.find("after"); it != q.end()) f->after = it->second;
  if (auto e = read_time(q, "since", &f->since_ms)) return e;
  if (auto e = read_time(q, "until", &f->until_ms)) return e;
  if (auto it = q.find("limit"); it != q.end()) {
    int v = 0;
    auto [p, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
    if (ec != std::errc() || p != it->second.data() + it->second.size() || v < 1 || v > jobs::kMaxListLimit) {
      return invalid_param("limit", str_cat("expected an integer from 1 to ", jobs::kMaxListLimit, "."));
    }
    f->limit = v;
  }
  return std::nullopt;
}

// Runs `query` on the query thread, then `done(result)` on the exchange's strand.
template <typename T>
void run_query(const AppContext& ctx, const ExchangePtr& ex, std::function<Result<T>(JobStore&)> query,
               std::function<void(const ExchangePtr&, Result<T>&)> done) {
  const bool queued = ctx.jobs->queries().submit([ex, query = std::move(query), done = std::move(done)](JobStore& s) {
    auto result = std::make_shared<Result<T>>(query(s));
    ex->post([ex, result, done] { done(ex, *result); });
  });
  if (!queued) ex->respond_error(busy());
}

std::string csv_field(std::string_view v) {
  std::string s(v);
  // A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
  if (!s.empty() && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@')) s.insert(0, "'");
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

constexpr const char* kCsvHeader =
    "id,node,model,endpoint,client,status,stream,received_ms,started_ms,first_token_ms,finished_ms,queue_wait_ms,"
    "ttft_ms,duration_ms,prompt_tokens,completion_tokens,finish_reason,http_status,error_code,error_message\r\n";

std::string csv_row(const Job& j) {
  auto num = [](int64_t v) { return v >= 0 ? std::to_string(v) : std::string(); };
  return str_cat(csv_field(j.id), ",", csv_field(j.node), ",", csv_field(j.model), ",", csv_field(j.endpoint), ",",
                 csv_field(j.client), ",", jobs::job_status_name(j.status), ",", j.stream ? "true" : "false", ",",
                 j.received_ms, ",", num(j.started_ms > 0 ? j.started_ms : -1), ",",
                 num(j.first_token_ms > 0 ? j.first_token_ms : -1), ",", num(j.finished_ms > 0 ? j.finished_ms : -1),
                 ",", num(j.queue_wait_ms()), ",", num(j.ttft_ms()), ",", num(j.duration_ms()), ",", j.prompt_tokens,
                 ",", j.completion_tokens, ",", csv_field(j.finish_reason), ",", j.http_status, ",",
                 csv_field(j.error_code), ",", csv_field(j.error_message), "\r\n");
}

// Streams every job the filter matches, a page at a time: a page is read only once the client
// has taken most of the previous one, so memory stays bounded whatever the store holds.
class Export : public std::enable_shared_from_this<Export> {
 public:
  Export(const AppContext& ctx, ExchangePtr ex, JobFilter f, bool csv)
      : ctx_(ctx), ex_(std::move(ex)), filter_(std::move(f)), csv_(csv) {
    filter_.limit = kExportPage;
  }

  void next() {
    if (ex_->finished() || ex_->client_gone()) return;
    if (ex_->pending_write_bytes() > kExportBacklogBytes) {
      auto self = shared_from_this();
      ex_->post_after(kExportBackoff, [self] { self->next(); });
      return;
    }
    auto self = shared_from_this();
    JobFilter f = filter_;
    run_query<jobs::JobPage>(
        ctx_, ex_, [f](JobStore& s) { return s.list(f); },
        [self](const ExchangePtr&, Result<jobs::JobPage>& page) { self->write(page); });
  }

 private:
  void write(Result<jobs::JobPage>& page) {
    if (!page.is_ok()) {
      ApiError e = page.status().code() == StatusCode::kNotFound ? invalid_param("after", page.status().message())
                                                                 : store_error(page.status());
      if (!ex_->streaming()) return ex_->respond_error(e);
      // Mid-export: the last line says the export is incomplete, then the stream ends.
      ex_->send(csv_ ? str_cat("# error: ", e.message, "\r\n") : error_body(e) + "\n");
      return ex_->end_stream();
    }
    if (!ex_->streaming()) {
      ex_->start_stream(csv_ ? "text/csv; charset=utf-8" : "application/x-ndjson");
      if (csv_) ex_->send(kCsvHeader);
    }
    std::string out;
    for (const Job& j : page->jobs) out += csv_ ? csv_row(j) : dump(job_json(j)) + "\n";
    ex_->send(std::move(out));
    if (!page->has_more || page->jobs.empty()) return ex_->end_stream();
    filter_.after = page->jobs.back().id;
    next();
  }

  const AppContext& ctx_;
  ExchangePtr ex_;
  JobFilter filter_;
  bool csv_;
};

Json percentiles_json(const jobs::Percentiles& p) {
  return {{"count", p.count}, {"p50", p.p50}, {"p95", p.p95}, {"p99", p.p99}};
}

}  // namespace

void handle_list_jobs(const AppContext& ctx, const ExchangePtr& ex) {
  if (ctx.jobs == nullptr) return ex->respond_error(jobs_off());
  auto q = query_params(ex->request().target);
  if (!q) return ex->respond_error(error_with_status(400, "Malformed query string.", "invalid_query"));
  JobFilter f;
  if (auto e = read_filter(*q, &f, {})) return ex->respond_error(*e);
  run_query<jobs::JobPage>(
      ctx, ex, [f](JobStore& s) { return s.list(f); },
      [](const ExchangePtr& x, Result<jobs::JobPage>& page) {
        if (!page.is_ok()) {
          if (page.status().code() == StatusCode::kNotFound) return x->respond_error(invalid_param("after", page.status().message()));
          return x->respond_error(store_error(page.status()));
        }
        Json data = Json::array();
        for (const Job& j : page->jobs) data.push_back(job_json(j));
        Json body = {{"object", "list"},
                     {"data", std::move(data)},
                     {"first_id", page->jobs.empty() ? Json(nullptr) : Json(page->jobs.front().id)},
                     {"last_id", page->jobs.empty() ? Json(nullptr) : Json(page->jobs.back().id)},
                     {"has_more", page->has_more}};
        x->respond({200, "application/json", {}, dump(body)});
      });
}

void handle_get_job(const AppContext& ctx, const ExchangePtr& ex) {
  if (ctx.jobs == nullptr) return ex->respond_error(jobs_off());
  const std::string id = ex->params()["id"];
  run_query<std::optional<Job>>(
      ctx, ex, [id](JobStore& s) { return s.get(id); },
      [id](const ExchangePtr& x, Result<std::optional<Job>>& job) {
        if (!job.is_ok()) return x->respond_error(store_error(job.status()));
        if (!job->has_value()) {
          return x->respond_error(error_with_status(404, str_cat("No job '", echo_value(id), "'."), "job_not_found"));
        }
        x->respond({200, "application/json", {}, dump(job_json(**job))});
      });
}

void handle_cancel_job(const AppContext& ctx, const ExchangePtr& ex) {
  if (ctx.jobs == nullptr) return ex->respond_error(jobs_off());
  const std::string id = ex->params()["id"];
  if (auto live = ctx.jobs->cancel(id)) {
    // The worker stops it at its next step; the job's record ends as cancelled.
    live->status = jobs::JobStatus::kCancelled;
    return ex->respond({200, "application/json", {}, dump(job_json(*live))});
  }
  const std::string node = ctx.jobs->options().node;
  run_query<std::optional<Job>>(
      ctx, ex, [id](JobStore& s) { return s.get(id); },
      [id, node](const ExchangePtr& x, Result<std::optional<Job>>& job) {
        if (!job.is_ok()) return x->respond_error(store_error(job.status()));
        if (!job->has_value()) {
          return x->respond_error(error_with_status(404, str_cat("No job '", echo_value(id), "'."), "job_not_found"));
        }
        const Job& j = **job;
        if (!jobs::is_terminal(j.status) && j.node != node) {
          return x->respond_error(error_with_status(
              409, str_cat("Job '", echo_value(id), "' runs on node '", j.node, "'; send the DELETE to that node."),
              "job_on_other_node"));
        }
        // Finished already (or finishing): cancelling it again changes nothing.
        x->respond({200, "application/json", {}, dump(job_json(j))});
      });
}

std::optional<ApiError> read_stats_window(const std::map<std::string, std::string>& q, int64_t* since, int64_t* until) {
  *until = jobs::system_now_ms() + 1;
  if (auto e = read_time(q, "until", until)) return e;
  pool::Millis window = kDefaultStatsWindow;
  if (auto it = q.find("window"); it != q.end()) {
    auto w = pool::parse_duration(it->second);
    if (!w.is_ok() || w->count() <= 0) return invalid_param("window", "expected a duration such as 15m, 1h or 7d.");
    window = *w;
  }
  *since = *until - window.count();
  return read_time(q, "since", since);
}

void query_job_stats(const AppContext& ctx, const ExchangePtr& ex, int64_t since, int64_t until, std::string model,
                     std::function<void(const ExchangePtr&, Result<Json>&)> done) {
  auto* tracker = ctx.jobs;
  run_query<Json>(
      ctx, ex,
      [since, until, model = std::move(model), tracker](JobStore& s) -> Result<Json> {
        auto st = s.stats(since, until, model);
        if (!st.is_ok()) return st.status();
        Json by_status = Json::object();
        for (int i = 0; i < 5; ++i) by_status[std::string(jobs::job_status_name(static_cast<jobs::JobStatus>(i)))] = st->by_status[i];
        return Json{{"object", "job.stats"},
                    {"since_ms", st->since_ms},
                    {"until_ms", st->until_ms},
                    {"total", st->total},
                    {"by_status", by_status},
                    {"usage",
                     {{"prompt_tokens", st->prompt_tokens},
                      {"completion_tokens", st->completion_tokens},
                      {"total_tokens", st->prompt_tokens + st->completion_tokens}}},
                    {"generation_ms", st->generation_ms},
                    {"latency_ms",
                     {{"duration", percentiles_json(st->duration_ms)},
                      {"ttft", percentiles_json(st->ttft_ms)},
                      {"queue_wait", percentiles_json(st->queue_wait_ms)}}},
                    {"store",
                     {{"pending_writes", tracker->recorder().pending()},
                      {"written", tracker->recorder().written()},
                      {"dropped", tracker->recorder().dropped()}}}};
      },
      std::move(done));
}

void handle_job_stats(const AppContext& ctx, const ExchangePtr& ex) {
  if (ctx.jobs == nullptr) return ex->respond_error(jobs_off());
  auto q = query_params(ex->request().target);
  if (!q) return ex->respond_error(error_with_status(400, "Malformed query string.", "invalid_query"));
  for (const auto& [k, v] : *q) {
    if (k != "window" && k != "since" && k != "until" && k != "model") {
      return ex->respond_error(invalid_param(k, str_cat("unknown query parameter '", echo_value(k), "'."), "unknown_parameter"));
    }
  }
  int64_t since = 0, until = 0;
  if (auto e = read_stats_window(*q, &since, &until)) return ex->respond_error(*e);
  std::string model = q->count("model") != 0 ? q->at("model") : "";
  query_job_stats(ctx, ex, since, until, std::move(model), [](const ExchangePtr& x, Result<Json>& st) {
    if (!st.is_ok()) return x->respond_error(store_error(st.status()));
    x->respond({200, "application/json", {}, dump(*st)});
  });
}

void handle_export_jobs(const AppContext& ctx, const ExchangePtr& ex) {
  if (ctx.jobs == nullptr) return ex->respond_error(jobs_off());
  auto q = query_params(ex->request().target);
  if (!q) return ex->respond_error(error_with_status(400, "Malformed query string.", "invalid_query"));
  JobFilter f;
  if (auto e = read_filter(*q, &f, {"format"})) return ex->respond_error(*e);
  if (q->count("limit") != 0) return ex->respond_error(invalid_param("limit", "an export has no limit; narrow it with since/until."));
  std::string format = q->count("format") != 0 ? q->at("format") : "jsonl";
  if (format != "jsonl" && format != "csv") return ex->respond_error(invalid_param("format", "expected jsonl or csv."));
  std::make_shared<Export>(ctx, ex, std::move(f), format == "csv")->next();
}

}  // namespace kiln::http
