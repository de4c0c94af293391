#include "kiln/hub/http_client.h"

#include <mutex>

#include <curl/curl.h>

#include "kiln/core/str.h"

namespace kiln::hub {

namespace {

constexpr size_t kMaxErrorBody = 2048;

void global_init() {
  // curl_global_init is not thread-safe; do it once before any handle.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  CURL* curl = nullptr;
  long code = 0;
  std::string error_body;  // the body of an HTTP error, for its message
  Status failure;          // what stopped the transfer from inside a callback
  std::function<Status(CURL*, const char*, size_t)> on_body;
  std::function<bool()> cancelled;
};

size_t on_write(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->code);
  if (t->code >= 400) {
    if (t->error_body.size() < kMaxErrorBody) t->error_body.append(data, std::min(bytes, kMaxErrorBody - t->error_body.size()));
    return bytes;
  }
  Status s = t->on_body(t->curl, data, bytes);
  if (!s.is_ok()) {
    t->failure = std::move(s);
    return CURL_WRITEFUNC_ERROR;
  }
  return bytes;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->cancelled && t->cancelled()) {
    t->failure = cancelled("the download was cancelled");
    return 1;
  }
  return 0;
}

Status http_status(long code, const std::string& url, const std::string& body) {
  std::string detail(trim(body.substr(0, 300)));
  for (char& c : detail) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  const std::string what = str_cat("GET ", url, ": HTTP ", code, detail.empty() ? "" : str_cat(" (", detail, ")"));
  if (code == 401) return unauthenticated(str_cat(what, ": the Hub asks for a token (set HF_TOKEN), or the repository does not exist"));
  if (code == 403) return unauthenticated(str_cat(what, ": the token may not read this repository (a gated model needs its terms accepted on the Hub)"));
  if (code == 404) return not_found(str_cat(what, ": no such repository, revision or file"));
  if (code == 416) return out_of_range(what);
  if (code == 429 || code >= 500) return unavailable(what);
  return failed_precondition(what);
}

Status perform(const std::string& url, const HttpOptions& o, int64_t offset, Transfer& t) {
  global_init();
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return internal_error("libcurl could not start a transfer");
  t.curl = curl;
  t.cancelled = o.cancelled;
  curl_slist* headers = nullptr;
  if (o.token) headers = curl_slist_append(headers, str_cat("Authorization: Bearer ", *o.token).c_str());
  const std::string range = str_cat(offset, "-");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.connect_timeout_ms));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(o.stall_timeout_s));
  curl_easy_setopt(curl, CURLOPT_USERAGENT, o.user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "identity");
  if (offset > 0) curl_easy_setopt(curl, CURLOPT_RANGE, range.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &t.code);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  t.curl = nullptr;
  if (!t.failure.is_ok()) return t.failure;
  if (rc != CURLE_OK) return unavailable(str_cat("GET ", url, ": ", curl_easy_strerror(rc)));
  if (t.code >= 400) return http_status(t.code, url, t.error_body);
  if (t.code != 200 && t.code != 206) return failed_precondition(str_cat("GET ", url, ": unexpected HTTP ", t.code));
  return Status::ok();
}

}  // namespace

Result<std::string> http_get_text(const std::string& url, const HttpOptions& options, size_t max_bytes) {
  std::string out;
  Transfer t;
  t.on_body = [&](CURL*, const char* data, size_t n) -> Status {
    if (out.size() + n > max_bytes) return resource_exhausted(str_cat("GET ", url, ": the answer is over ", max_bytes, " bytes"));
    out.append(data, n);
    return Status::ok();
  };
  KILN_RETURN_IF_ERROR(perform(url, options, 0, t));
  return out;
}

Status http_get_range(const std::string& url, const HttpOptions& options, int64_t offset, const RangeSink& sink) {
  Transfer t;
  bool started = false;
  t.on_body = [&](CURL* curl, const char* data, size_t n) -> Status {
    if (!started) {
      long code = 0;
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
      started = true;
      // 206: the server continues where the partial file ends; 200: it sends the whole file.
      KILN_RETURN_IF_ERROR(sink.start(code == 206 ? offset : 0));
    }
    return sink.write(data, n);
  };
  KILN_RETURN_IF_ERROR(perform(url, options, offset, t));
  if (!started) KILN_RETURN_IF_ERROR(sink.start(t.code == 206 ? offset : 0));  // an empty body
  return Status::ok();
}

}  // namespace kiln::hub
