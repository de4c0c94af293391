// The Responses API: POST /v1/responses (translated into a chat request and served by the chat
// pipeline, responses_api.h), and the stored responses in the job database:
// GET/DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items and
// POST /v1/responses/{id}/cancel (docs/responses-api.md). Background responses are records the
// batch service's runner claims and runs through this same handler (HttpRequest::response_id).
#include <memory>
#include <optional>

#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/http/batch_handlers.h"
#include "kiln/http/chat_handler.h"
#include "kiln/http/handlers.h"
#include "kiln/http/job_tracker.h"
#include "kiln/http/openai_response.h"
#include "kiln/http/responses_api.h"
#include "kiln/http/webhooks.h"

namespace kiln::http {

namespace {

// The most a stored response's input items (earlier turns included) may take, as JSON text.
constexpr size_t kMaxStoredInputBytes = 8u << 20;

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

bool open_status(const std::string& s) { return s == "queued" || s == "in_progress"; }

ApiError response_not_found(const std::string& id, const char* param = nullptr) {
  ApiError e = error_with_status(404, str_cat("Response with id '", echo_value(id), "' not found."), "not_found");
  if (param != nullptr) e.param = param;
  return e;
}

ApiError no_store(const char* param) {
  return invalid_param(param, "kiln runs without a job database (--database off), so it keeps no responses; send the "
                              "whole conversation in 'input'.", "unsupported_parameter");
}

// Who asks: an API key's id, or the client's address. Ownership holds only with API keys: without
// them every client is the same anonymous one (addresses change behind proxies).
std::string requester(const AppContext& ctx, const ExchangePtr& ex) {
  return ctx.jobs != nullptr ? ctx.jobs->client_of(ex->request()) : "";
}

// A stored response as it stands now: an open background response's status is the record's
// (the runner moves queued to in_progress without rewriting the object).
Json stored_object(const jobs::ResponseRecord& r) {
  Json j = Json::parse(r.response, nullptr, false);
  if (j.is_discarded()) j = Json::object();
  if (open_status(r.status)) j["status"] = r.status;
  return j;
}

Json text_part(const char* type, const std::string& text) {
  Json p = {{"type", type}, {"text", text}};
  if (std::string_view(type) == "output_text") p["annotations"] = Json::array();
  return p;
}

// The request's input as stored and listed: every item an object with its type and an id
// (OpenAI's item resources). The input was validated by the translation first.
Json input_items(const Json& input) {
  Json items = Json::array();
  if (input.is_string()) {
    items.push_back({{"id", new_object_id("msg_")}, {"type", "message"}, {"role", "user"}, {"status", "completed"},
                     {"content", Json::array({text_part("input_text", input.get<std::string>())})}});
    return items;
  }
  for (Json it : input) {
    if (!it.contains("type") || !it["type"].is_string()) it["type"] = "message";  // as the translation reads it
    const std::string t = it["type"].get<std::string>();
    const char* prefix = t == "message" ? "msg_" : t == "function_call" ? "fc_" : t == "function_call_output" ? "fco_" : "rs_";
    if (!it.contains("id") || !it["id"].is_string()) it["id"] = new_object_id(prefix);
    if (t == "message" && it["content"].is_string()) {
      const bool assistant = it["role"] == "assistant";
      it["content"] = Json::array({text_part(assistant ? "output_text" : "input_text", it["content"].get<std::string>())});
    }
    if (t == "reasoning" && !it.contains("summary")) it["summary"] = Json::array();
    if (t != "reasoning" && !it.contains("status")) it["status"] = "completed";
    items.push_back(std::move(it));
  }
  return items;
}

std::optional<ApiError> read_flag(const Json& body, const char* name, bool dflt, bool* out) {
  *out = dflt;
  auto v = body.find(name);
  if (v == body.end() || v->is_null()) return std::nullopt;
  if (!v->is_boolean()) return invalid_type(name, "a boolean", json_type_phrase(*v));
  *out = v->get<bool>();
  return std::nullopt;
}

// What a POST asks beyond the translation.
struct Creation {
  Json body;               // as the client sent it
  Json items;              // its input as items
  bool store = false, background = false;
  std::string previous;    // previous_response_id
  std::string client;
};

// Runs (or queues) a request whose earlier turns, if any, are `prior` input items.
void create(const AppContext& ctx, const ExchangePtr& ex, const std::shared_ptr<Creation>& c, Json prior) {
  Json all = std::move(prior);
  for (auto& it : c->items) all.push_back(it);
  std::string items_text = dump(all);
  if (items_text.size() > kMaxStoredInputBytes) {
    return ex->respond_error(invalid_param("input", str_cat("The conversation is ", items_text.size(), " bytes as items; "
                                                            "kiln stores at most ", kMaxStoredInputBytes, ".")));
  }
  Json run = c->body;
  run["input"] = std::move(all);
  Json chat;
  if (auto e = responses_to_chat(run, &chat)) return ex->respond_error(*e);
  auto req = std::make_shared<ChatRequest>();
  if (auto e = parse_chat_body(chat, req.get())) return ex->respond_error(responses_error(*e));
  rename_chat_fields(req.get());

  Json echo = response_echo(c->body);
  echo["store"] = c->store;
  const std::string id = make_completion_id("resp_");
  jobs::ResponseRecord rec;
  rec.id = id;
  rec.client = c->client;
  rec.model = req->params.model;
  rec.background = c->background;
  rec.input_items = std::move(items_text);
  BatchService* svc = ctx.batches;
  if (c->background) {
    // Only a model some node serves is ever claimed: refuse the others now, as a run would.
    bool served = false;
    for (const auto& m : ctx.pool->list()) served = served || m.id == rec.model;
    if (!served) {
      ApiError e = error_with_status(404, pool::model_not_found(rec.model).message(), "model_not_found");
      e.param = "model";
      return ex->respond_error(e);
    }
    rec.status = "queued";
    rec.created_ms = rec.updated_ms = svc->now_ms();
    rec.request = dump(run);
    Json obj = response_object(id, rec.created_ms / 1000, rec.model, "queued", Json::array(), nullptr, echo);
    rec.response = dump(obj);
    return on_batch_store(ctx, ex, [rec, obj](BatchService& s, jobs::BatchStore& db) -> HttpResponse {
      if (Status st = db.insert_response(rec); !st.is_ok()) return error_response(batch_store_error(st));
      s.wake();
      return json_response(obj);
    });
  }
  ResponseOptions o;
  o.id = id;
  o.echo = std::move(echo);
  o.store = c->store;
  if (c->store) {
    // Queued on the API thread before the answer is sent, so that any request the client makes
    // after reading it (a GET, a previous_response_id) is served after the write.
    o.on_final = [svc, rec](const Json& response) mutable {
      rec.status = response.value("status", "completed");
      rec.created_ms = rec.updated_ms = svc->now_ms();
      rec.response = dump(response);
      const bool queued = svc->submit([rec](jobs::BatchStore& db) {
        if (Status st = db.insert_response(rec); !st.is_ok()) log_error("responses: cannot store ", rec.id, ": ", st.message());
      });
      if (!queued) log_error("responses: cannot store ", rec.id, ": the job database is busy");
    };
  }
  serve_chat(ctx, ex, std::move(req), make_responses_renderer(std::move(o)), "resp_");
}

// A background response claimed by the runner: its stored request, under its id.
void run_background(const AppContext& ctx, const ExchangePtr& ex, Json body) {
  Json chat;
  if (auto e = responses_to_chat(body, &chat)) return ex->respond_error(*e);
  auto req = std::make_shared<ChatRequest>();
  if (auto e = parse_chat_body(chat, req.get())) return ex->respond_error(responses_error(*e));
  rename_chat_fields(req.get());
  req->params.stream = false;
  ResponseOptions o;
  o.id = ex->request().response_id;
  o.echo = response_echo(body);
  o.echo["store"] = true;
  o.store = true;
  serve_chat(ctx, ex, std::move(req), make_responses_renderer(std::move(o)), "resp_");
}

// "{id}" captures the rest of the path: "resp_x", "resp_x/input_items", "resp_x/cancel".
bool split_id(const ExchangePtr& ex, const char* suffix, std::string* id) {
  *id = ex->params()["id"];
  if (suffix == nullptr) return id->find('/') == std::string::npos;
  if (!ends_with(*id, suffix)) return false;
  id->resize(id->size() - std::string_view(suffix).size());
  return id->find('/') == std::string::npos;
}

void unknown_url(const ExchangePtr& ex) {
  ex->respond_error(error_with_status(
      404, str_cat("Unknown request URL: ", ex->request().method, " ", echo_value(ex->request().path), "."), "unknown_url"));
}

// Runs `fn` on the API thread with the stored response `id` the requester may see (404
// otherwise); its answer, when it gives one, goes back to the exchange's strand.
using WithResponse = std::function<std::optional<HttpResponse>(BatchService&, jobs::BatchStore&, jobs::ResponseRecord&)>;
void with_response(const AppContext& ctx, const ExchangePtr& ex, const std::string& id, WithResponse fn,
                   const char* param = nullptr) {
  BatchService* svc = ctx.batches;
  if (svc == nullptr) return ex->respond_error(response_not_found(id, param));
  const bool keys = ctx.options->api_keys.enabled();
  if (!svc->submit([svc, ex, id, keys, param, who = requester(ctx, ex), fn = std::move(fn)](jobs::BatchStore& db) {
        std::optional<HttpResponse> out;
        auto r = db.get_response(id);
        if (!r.is_ok()) out = error_response(batch_store_error(r.status()));
        else if (!*r || (keys && (*r)->client != who)) out = error_response(response_not_found(id, param));
        else out = fn(*svc, db, **r);
        if (!out) return;
        auto resp = std::make_shared<HttpResponse>(std::move(*out));
        ex->post([ex, resp] { ex->respond(std::move(*resp)); });
      })) {
    ex->respond_error(batch_store_busy());
  }
}

void list_input_items(const AppContext& ctx, const ExchangePtr& ex, const std::string& id) {
  auto q = query_params(ex->request().target);
  if (!q) return ex->respond_error(invalid_param("query", "The query string has a malformed escape."));
  jobs::Page page;
  if (auto e = read_page(*q, 20, 100, &page)) return ex->respond_error(*e);
  bool asc = false;
  if (auto it = q->find("order"); it != q->end()) {
    if (it->second != "asc" && it->second != "desc") return ex->respond_error(invalid_param("order", "order is 'asc' or 'desc'."));
    asc = it->second == "asc";
  }
  with_response(ctx, ex, id, [page, asc](BatchService&, jobs::BatchStore&, jobs::ResponseRecord& r) -> std::optional<HttpResponse> {
    Json items = Json::parse(r.input_items, nullptr, false);
    if (!items.is_array()) items = Json::array();
    const size_t n = items.size();
    size_t start = 0;
    if (!page.after.empty()) {
      start = n;
      for (size_t i = 0; i < n; ++i) {
        if (items[asc ? i : n - 1 - i].value("id", "") == page.after) start = i + 1;
      }
      if (start == n && (n == 0 || items[asc ? n - 1 : 0].value("id", "") != page.after)) {
        return error_response(invalid_param("after", str_cat("No input item with id '", echo_value(page.after), "'.")));
      }
    }
    Json data = Json::array();
    for (size_t i = start; i < n && data.size() < static_cast<size_t>(page.limit); ++i) {
      data.push_back(items[asc ? i : n - 1 - i]);
    }
    return list_response(std::move(data), start + static_cast<size_t>(page.limit) < n);
  });
}

}  // namespace

void handle_responses(const AppContext& ctx, const ExchangePtr& ex) {
  Json body;
  if (auto e = parse_json_body(ex->request().body, &body)) return ex->respond_error(*e);
  if (!ex->request().response_id.empty()) return run_background(ctx, ex, std::move(body));
  if (!body.is_object()) return ex->respond_error(invalid_type("body", "an object", json_type_phrase(body)));
  auto c = std::make_shared<Creation>();
  const bool have_store = ctx.batches != nullptr;
  // A batch line (the batch service sets this address; a client's is its peer's) is stored only
  // when it asks: a batch's answers are its output file.
  const bool batch_line = starts_with(ex->request().remote, "batch:");
  if (auto e = read_flag(body, "store", have_store && !batch_line, &c->store)) return ex->respond_error(*e);
  if (auto e = read_flag(body, "background", false, &c->background)) return ex->respond_error(*e);
  if (auto e = read_string(body, "previous_response_id", &c->previous)) return ex->respond_error(*e);
  if (auto md = body.find("metadata"); md != body.end()) {
    if (auto e = check_metadata(*md)) return ex->respond_error(*e);
  }
  if (!have_store) {
    if (!c->previous.empty()) return ex->respond_error(no_store("previous_response_id"));
    if (c->background) return ex->respond_error(no_store("background"));
    c->store = false;  // accepted, and the response says it was not stored
  }
  if (c->background && batch_line) {
    return ex->respond_error(invalid_param("background", "A batch line cannot be a background response.", "unsupported_parameter"));
  }
  if (c->background && !c->store) {
    return ex->respond_error(invalid_param("background", "Background responses are stored: they cannot have store: false."));
  }
  bool stream = false;
  if (auto e = read_flag(body, "stream", false, &stream)) return ex->respond_error(*e);
  if (c->background && stream) {
    return ex->respond_error(invalid_param("stream", "kiln does not stream background responses; poll GET "
                                                     "/v1/responses/{id}, or stream without background.",
                                           "unsupported_parameter"));
  }
  // Validate the request as sent before any lookup, so that its errors name its own fields.
  Json chat;
  if (auto e = responses_to_chat(body, &chat)) return ex->respond_error(*e);
  c->items = input_items(body["input"]);
  c->client = ex->record().client;
  c->body = std::move(body);
  if (c->previous.empty()) return create(ctx, ex, c, Json::array());
  const AppContext* cx = &ctx;
  with_response(ctx, ex, c->previous, [cx, ex, c](BatchService&, jobs::BatchStore&, jobs::ResponseRecord& r) -> std::optional<HttpResponse> {
    if (open_status(r.status) || r.status == "failed" || r.status == "cancelled") {
      return error_response(invalid_param("previous_response_id", str_cat("Response '", echo_value(r.id), "' is ", r.status,
                                                                          "; only a finished response can be continued.")));
    }
    Json prior = Json::parse(r.input_items, nullptr, false);
    Json obj = Json::parse(r.response, nullptr, false);
    if (!prior.is_array() || obj.is_discarded()) return error_response(error_with_status(500, "The stored response is damaged."));
    for (const auto& it : obj.value("output", Json::array())) prior.push_back(it);
    ex->post([cx, ex, c, prior = std::move(prior)]() mutable { create(*cx, ex, c, std::move(prior)); });
    return std::nullopt;  // create() answers
  }, "previous_response_id");
}

void handle_get_response(const AppContext& ctx, const ExchangePtr& ex) {
  std::string id;
  if (split_id(ex, "/input_items", &id)) return list_input_items(ctx, ex, id);
  if (!split_id(ex, nullptr, &id)) return unknown_url(ex);
  auto q = query_params(ex->request().target);
  if (q && q->count("stream") && (*q)["stream"] == "true") {
    return ex->respond_error(invalid_param("stream", "kiln does not replay stored responses as a stream; GET it without "
                                                     "stream.", "unsupported_parameter"));
  }
  with_response(ctx, ex, id, [](BatchService&, jobs::BatchStore&, jobs::ResponseRecord& r) -> std::optional<HttpResponse> {
    return json_response(stored_object(r));
  });
}

void handle_delete_response(const AppContext& ctx, const ExchangePtr& ex) {
  std::string id;
  if (!split_id(ex, nullptr, &id)) return unknown_url(ex);
  JobTracker* jobs = ctx.jobs;
  with_response(ctx, ex, id, [jobs](BatchService&, jobs::BatchStore& db, jobs::ResponseRecord& r) -> std::optional<HttpResponse> {
    auto d = db.delete_response(r.id);
    if (!d.is_ok()) return error_response(batch_store_error(d.status()));
    // A background response still running here stops; its late result finds no record.
    if (open_status(r.status) && jobs != nullptr) (void)jobs->cancel(r.id);
    return json_response({{"id", r.id}, {"object", "response"}, {"deleted", true}});
  });
}

void handle_cancel_response(const AppContext& ctx, const ExchangePtr& ex) {
  std::string id;
  if (!split_id(ex, "/cancel", &id)) return unknown_url(ex);
  JobTracker* jobs = ctx.jobs;
  with_response(ctx, ex, id, [jobs](BatchService& svc, jobs::BatchStore& db, jobs::ResponseRecord& r) -> std::optional<HttpResponse> {
    if (!r.background) {
      return error_response(invalid_param("response_id", "Only responses created with background: true can be cancelled."));
    }
    if (r.status == "cancelled") return json_response(stored_object(r));
    if (open_status(r.status)) {
      Json obj = stored_object(r);
      obj["status"] = "cancelled";
      const int64_t now = svc.now_ms();
      bool ended = false;
      Status st = db.in_transaction([&]() -> Status {
        KILN_ASSIGN_OR_RETURN(ended, db.finish_response(r.id, "", "cancelled", dump(obj), now,
                                                        svc.webhooks().events_for(r.id, "response.cancelled", now)));
        return Status();
      });
      if (!st.is_ok()) return error_response(batch_store_error(st));
      if (ended) {
        svc.webhooks().wake();
        if (jobs != nullptr) (void)jobs->cancel(r.id);
        return json_response(obj);
      }
      auto now_r = db.get_response(r.id);  // it ended meanwhile
      if (!now_r.is_ok()) return error_response(batch_store_error(now_r.status()));
      if (!*now_r) return error_response(response_not_found(r.id));
      r = **now_r;
      if (r.status == "cancelled") return json_response(stored_object(r));
    }
    return error_response(invalid_param("response_id", str_cat("Cannot cancel a response with status '", r.status, "'."),
                                        "response_not_cancellable"));
  });
}

}  // namespace kiln::http
