#include "bench_serve/report.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "kiln/core/str.h"

namespace kiln::bench_serve {
namespace {

using nlohmann::json;

std::string error_key(const RequestRecord& r) {
  if (r.error == ErrorKind::kHttpStatus) return str_cat("http_", r.http_status);
  return std::string(error_kind_name(r.error));
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string row(std::string_view name, const std::string& value) {
  std::string line(name);
  size_t width = 44;
  if (line.size() + value.size() + 1 < width) line.append(width - line.size() - value.size(), ' ');
  else line.push_back(' ');
  return str_cat(line, value, "\n");
}

std::string latency_row(std::string_view name, const Summary& s) {
  // Milliseconds, right-aligned under the header in format_table.
  char buf[160];
  std::snprintf(buf, sizeof buf, "%-6s %10.2f %10.2f %10.2f %10.2f %10.2f\n", std::string(name).c_str(),
                s.mean * 1e3, s.p50 * 1e3, s.p90 * 1e3, s.p99 * 1e3, s.max * 1e3);
  return buf;
}

json summary_ms(const Summary& s) {
  Summary ms = scaled(s, 1e3);
  return json{{"count", ms.count}, {"mean", ms.mean}, {"stddev", ms.stddev}, {"min", ms.min},
              {"max", ms.max},     {"p50", ms.p50},   {"p90", ms.p90},       {"p99", ms.p99}};
}

}  // namespace

Metrics compute_metrics(const RunResult& run) {
  Metrics m;
  std::vector<double> ttft, tpot, itl, e2e;
  double latency_sum = 0;
  for (const RequestRecord& r : run.measured) {
    if (r.error == ErrorKind::kCancelled) {
      ++m.cancelled;
      continue;
    }
    latency_sum += r.e2e_s;
    if (!r.ok()) {
      ++m.failed;
      ErrorCount& e = m.errors[error_key(r)];
      if (e.count++ == 0) e.example = r.error_message;
      continue;
    }
    ++m.completed;
    if (r.prompt_tokens > 0) {
      m.input_tokens += r.prompt_tokens;
    } else {
      m.input_tokens += r.prompt_tokens_hint;
      ++m.input_tokens_estimated;
    }
    m.output_tokens += r.output_tokens;
    if (r.output_tokens < r.max_tokens) ++m.short_outputs;
    ttft.push_back(r.ttft_s);
    e2e.push_back(r.e2e_s);
    if (r.output_tokens > 1) tpot.push_back(r.tpot_s());
    for (float gap : r.itl_s) itl.push_back(gap);
  }
  for (const RequestRecord& r : run.warmup) {
    ++m.warmup_requests;
    if (!r.ok()) ++m.warmup_failed;
  }
  m.duration_s = std::max(0.0, seconds_between(run.start, run.end));
  if (m.duration_s > 0) {
    m.request_throughput = static_cast<double>(m.completed) / m.duration_s;
    m.output_throughput = static_cast<double>(m.output_tokens) / m.duration_s;
    m.total_token_throughput = static_cast<double>(m.input_tokens + m.output_tokens) / m.duration_s;
    m.mean_in_flight = latency_sum / m.duration_s;
  }
  m.ttft = summarize(std::move(ttft));
  m.tpot = summarize(std::move(tpot));
  m.itl = summarize(std::move(itl));
  m.e2e = summarize(std::move(e2e));
  return m;
}

std::string format_table(const Metrics& m, const RunLabel& label, bool interrupted) {
  std::string out;
  std::string rule(62, '-');
  out += str_cat("kiln bench serve: ", label.url, " (", label.endpoint, ", model ", label.model, ", ", label.load,
                 label.stream ? ", streamed" : ", not streamed", ")\n");
  if (!label.device.empty()) out += str_cat("server engine: ", label.device, "\n");
  if (interrupted) out += "stopped early by a signal: figures cover the requests that finished\n";
  out += rule + "\n";
  out += row("Successful requests", str_cat(m.completed));
  out += row("Failed requests", str_cat(m.failed));
  if (m.cancelled) out += row("Cancelled requests", str_cat(m.cancelled));
  out += row("Benchmark duration (s)", fixed(m.duration_s, 2));
  out += row(m.input_tokens_estimated ? "Total input tokens (estimated)" : "Total input tokens", str_cat(m.input_tokens));
  out += row("Total output tokens", str_cat(m.output_tokens));
  out += row("Request throughput (req/s)", fixed(m.request_throughput, 2));
  out += row("Output token throughput (tok/s)", fixed(m.output_throughput, 2));
  out += row("Total token throughput (tok/s)", fixed(m.total_token_throughput, 2));
  out += row("Mean requests in flight", fixed(m.mean_in_flight, 2));
  if (m.short_outputs) out += row("Requests shorter than max_tokens", str_cat(m.short_outputs));
  if (m.warmup_requests) out += row("Warmup requests (not counted)", str_cat(m.warmup_requests));
  out += rule + "\n";
  char head[160];
  std::snprintf(head, sizeof head, "%-6s %10s %10s %10s %10s %10s\n", "(ms)", "mean", "p50", "p90", "p99", "max");
  out += head;
  out += latency_row("TTFT", m.ttft);
  out += latency_row("TPOT", m.tpot);
  out += latency_row("ITL", m.itl);
  out += latency_row("E2E", m.e2e);
  out += rule + "\n";
  for (const auto& [key, e] : m.errors) out += str_cat("error ", key, " x", e.count, ": ", e.example, "\n");
  return out;
}

std::string iso8601_utc(int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
  return buf;
}

json report_json(const Metrics& m, const RunResult& run, const json& settings,
                 const std::vector<std::string>& command_line, int64_t started_unix_ms, int64_t finished_unix_ms,
                 bool per_request) {
  json errors = json::object();
  for (const auto& [key, e] : m.errors) errors[key] = json{{"count", e.count}, {"example", e.example}};
  json results = {
      {"completed", m.completed},
      {"failed", m.failed},
      {"cancelled", m.cancelled},
      {"interrupted", run.interrupted},
      {"duration_s", m.duration_s},
      {"input_tokens", m.input_tokens},
      {"input_tokens_estimated_requests", m.input_tokens_estimated},
      {"output_tokens", m.output_tokens},
      {"short_outputs", m.short_outputs},
      {"request_throughput", m.request_throughput},
      {"output_throughput", m.output_throughput},
      {"total_token_throughput", m.total_token_throughput},
      {"mean_in_flight", m.mean_in_flight},
      {"connections_opened", run.connections_opened},
      {"warmup_requests", m.warmup_requests},
      {"warmup_failed", m.warmup_failed},
      {"ttft_ms", summary_ms(m.ttft)},
      {"tpot_ms", summary_ms(m.tpot)},
      {"itl_ms", summary_ms(m.itl)},
      {"e2e_ms", summary_ms(m.e2e)},
      {"errors", errors},
  };
  json doc = {
      {"command_line", command_line},
      {"started_at", iso8601_utc(started_unix_ms)},
      {"finished_at", iso8601_utc(finished_unix_ms)},
      {"settings", settings},
      {"results", results},
  };
  if (per_request) {
    json reqs = json::array();
    for (const RequestRecord& r : run.measured) {
      json itl = json::array();
      for (float gap : r.itl_s) itl.push_back(static_cast<double>(gap) * 1e3);
      json j = {{"index", r.index},
                {"start_ms", seconds_between(run.start, r.started) * 1e3},
                {"ttft_ms", r.ttft_s * 1e3},
                {"e2e_ms", r.e2e_s * 1e3},
                {"prompt_tokens", r.prompt_tokens},
                {"output_tokens", r.output_tokens},
                {"max_tokens", r.max_tokens},
                {"itl_ms", std::move(itl)}};
      if (!r.ok()) {
        j["error"] = error_key(r);
        j["message"] = r.error_message;
      }
      reqs.push_back(std::move(j));
    }
    doc["requests"] = std::move(reqs);
  }
  return doc;
}

}  // namespace kiln::bench_serve
