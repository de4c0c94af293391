#include "kiln/http/generation.h"

#include <atomic>
#include <memory>

#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/text/utf8.h"
#include "kiln/http/choice_events.h"
#include "kiln/http/choice_text.h"
#include "kiln/http/job_tracker.h"
#include "kiln/http/rate_limit.h"
#include "kiln/http/sse.h"
#include "kiln/serve/grammar_constraint.h"

namespace kiln::http {

namespace {

struct ChoiceState {
  ChoiceState(ChoiceText t, std::unique_ptr<text::OutputParser> p) : text(std::move(t)), parser(std::move(p)) {}
  ChoiceText text;
  std::unique_ptr<text::OutputParser> parser;  // chat with tools or reasoning; null: plain text
  ChoiceEvents events;                         // what the parser found
  std::string pending;                 // text not yet sent (streaming) or the whole text (not streaming)
  std::vector<LogprobEntry> logprobs;  // likewise
  int64_t emitted = 0;                 // characters of text already sent, echo included (text_offset)
  std::string finish_reason;
  std::string stop_sequence;  // the stop string that ended it
  bool done = false;
};

// serve/ names the fields of its Request; the API calls two of them differently.
std::string api_param(const ResponseRenderer& api, const std::string& field) {
  if (field == "prompt") return std::string(api.prompt_param());
  if (field == "logprobs") return std::string(api.logprobs_param());
  return field;
}

runtime::SamplingParams sampling_for(const GenerationParams& p, const model::GenerationConfig& g) {
  runtime::SamplingParams s;
  double temperature = p.temperature ? *p.temperature : g.temperature.value_or(1.0);
  if (!p.temperature && g.do_sample && !*g.do_sample) temperature = 0.0;  // the model asks for greedy
  double top_p = p.top_p ? *p.top_p : g.top_p.value_or(1.0);
  if (top_p <= 0.0) {  // OpenAI accepts top_p=0: only the most likely token remains
    temperature = 0.0;
    top_p = 1.0;
  }
  s.temperature = static_cast<float>(temperature);
  s.top_p = static_cast<float>(top_p);
  s.top_k = static_cast<int32_t>(p.top_k ? std::max<int64_t>(0, *p.top_k) : g.top_k.value_or(0));
  s.min_p = static_cast<float>(p.min_p ? *p.min_p : g.min_p.value_or(0.0));
  s.repetition_penalty = static_cast<float>(p.repetition_penalty ? *p.repetition_penalty : g.repetition_penalty.value_or(1.0));
  s.presence_penalty = static_cast<float>(p.presence_penalty);
  s.frequency_penalty = static_cast<float>(p.frequency_penalty);
  for (const auto& [id, bias] : p.logit_bias) s.logit_bias.emplace_back(static_cast<int32_t>(id), static_cast<float>(bias));
  s.num_logprobs = p.num_logprobs;
  return s;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(const AppContext& ctx, ExchangePtr ex, GenerationPlan plan)
      : ctx_(ctx), ex_(std::move(ex)), plan_(std::move(plan)) {}

  void start(const std::vector<int64_t>& max_tokens, const text::StopMatcher& stops,
             std::shared_ptr<const serve::ConstraintFactory> constraint) {
    const auto& p = plan_.params;
    const int n = p.n;
    for (size_t i = 0; i < plan_.prompts.size() * static_cast<size_t>(n); ++i) {
      std::unique_ptr<text::OutputParser> parser;
      if (plan_.parser) {
        text::OutputParserOptions po = *plan_.parser;
        po.seed = p.seed ? static_cast<uint64_t>(*p.seed) + i : i;
        auto made = text::OutputParser::create(po);
        if (!made.is_ok()) return ex_->respond_error(api_error_from_status(made.status()));
        parser = std::move(made).value();
      }
      // The prompt's last few tokens are enough context for the first delta (a leading space, a
      // split character) without decoding a long prompt again for every choice.
      const auto& prompt = plan_.prompts[i / static_cast<size_t>(n)];
      size_t ctx = std::min<size_t>(prompt.size(), 8);
      std::span<const int32_t> context(prompt.data() + prompt.size() - ctx, ctx);
      const bool keep_special = parser != nullptr;
      choices_.emplace_back(ChoiceText(plan_.lease.tokenizer_ptr(), stops, context, keep_special), std::move(parser));
    }
    runtime::SamplingParams sampling = sampling_for(p, plan_.lease.generation());
    if (ctx_.limits != nullptr) {
      // Tokens per minute: the prompts and the most every choice may generate, charged now; what
      // the request does not use is refunded when it is answered.
      int64_t tokens = 0;
      for (size_t i = 0; i < plan_.prompts.size(); ++i) {
        tokens += static_cast<int64_t>(plan_.prompts[i].size()) + n * max_tokens[i];
      }
      if (auto e = ctx_.limits->charge(ex_, tokens)) return ex_->respond_error(*e);
    }
    for (size_t i = 0; i < plan_.prompts.size(); ++i) {
      serve::Request r;
      r.id = ex_->request_id();
      r.prompt = plan_.prompts[i];
      r.priority = ex_->request().priority;
      r.sampling = sampling;
      if (p.seed) r.seed = static_cast<uint64_t>(*p.seed);
      r.n = n;
      r.max_tokens = static_cast<int32_t>(std::min<int64_t>(max_tokens[i], INT32_MAX));
      r.ignore_eos = p.ignore_eos;
      r.stop_token_ids = p.stop_token_ids;
      r.constraint = constraint;
      serve::SubmitResult sub = plan_.lease.worker().submit(std::move(r));
      if (!sub.ok()) {
        cancel_all();
        ApiError e = error_for(sub.status);
        if (sub.retry_after_seconds > 0) e.retry_after_seconds = sub.retry_after_seconds;
        ex_->respond_error(e);
        return;
      }
      streams_.push_back(sub.stream);
      stream_done_.push_back(false);
    }
    auto self = shared_from_this();
    ex_->on_client_gone([self] { self->cancel_all(); });
    if (ctx_.jobs != nullptr) {
      // DELETE /v1/jobs/{id}: the same cancellation as a client that leaves, on this strand.
      std::weak_ptr<Session> weak = self;
      std::weak_ptr<Exchange> wex = ex_;
      job_ = ctx_.jobs->begin(ex_, plan_.lease.id(), p.stream, plan_.lease.store_bodies(), [weak, wex] {
        if (auto ex = wex.lock()) {
          ex->post([weak] {
            if (auto me = weak.lock()) me->cancel_by_job();
          });
        }
      });
    }
    for (size_t g = 0; g < choices_.size(); ++g) {
      const std::string* echo = echo_of(g);
      if (echo == nullptr) continue;
      // The echoed prompt opens the choice's text: a stream sends it first, a response holds it.
      choices_[g].emitted = static_cast<int64_t>(text::utf8_code_points(*echo));
      if (!p.stream) choices_[g].pending = *echo;
    }
    if (p.stream) {
      writer_ = plan_.api->stream_writer(plan_.meta, p.include_usage);
      ex_->start_stream();
      for (size_t g = 0; g < choices_.size(); ++g) send(writer_->open(static_cast<int>(g), echo_of(g)));
      schedule_keepalive();
    }
    for (const auto& s : streams_) {
      std::weak_ptr<Session> weak = self;
      ExchangePtr ex = ex_;
      s->set_notify([weak, ex] {
        auto me = weak.lock();
        if (!me || me->wake_pending_.exchange(true)) return;
        ex->post([me] {
          me->wake_pending_ = false;
          me->drain();
        });
      });
    }
  }

 private:
  void send(std::string bytes) {
    if (!bytes.empty()) ex_->send(std::move(bytes));
  }

  // The last event of a failed stream, in the API's words.
  void end_stream_with_error(const ApiError& e) { ex_->end_stream_with_error(e, writer_->error(e)); }

  ApiError error_for(const Status& s) const { return api_error_from_status(s, api_param(*plan_.api, s.param())); }

  // Completions with echo: the prompt text choice `g` starts with; null otherwise.
  const std::string* echo_of(size_t g) const {
    return plan_.echo.empty() ? nullptr : &plan_.echo[g / static_cast<size_t>(plan_.params.n)];
  }

  void schedule_keepalive() {
    auto self = shared_from_this();
    ex_->post_after(ctx_.options->sse_keepalive, [self] {
      if (self->finished_ || self->got_token_ || self->ex_->finished()) return;
      self->ex_->send(sse_comment("waiting in the queue"));
      self->schedule_keepalive();
    });
  }

  void cancel_all() {
    cancelled_ = true;
    for (const auto& s : streams_) s->cancel();
  }

  void cancel_by_job() {
    if (finished_) return;
    job_cancelled_ = true;
    cancel_all();
  }

  void drain() {
    if (finished_) return;
    const int n = plan_.params.n;
    for (size_t sub = 0; sub < streams_.size(); ++sub) {
      if (stream_done_[sub]) continue;
      serve::StreamChunk chunk = streams_[sub]->take();
      for (const auto& t : chunk.tokens) on_token(sub, t);
      for (const auto& [c, reason] : chunk.finished) {
        end_choice(sub * static_cast<size_t>(n) + static_cast<size_t>(c), std::string(serve::finish_reason_name(reason)));
      }
      if (chunk.done) {
        stream_done_[sub] = true;
        usage_.prompt_tokens += chunk.usage.prompt_tokens;
        usage_.completion_tokens += chunk.usage.completion_tokens;
        usage_.cached_tokens += chunk.usage.cached_prompt_tokens;
        if (!chunk.error.is_ok() && error_.is_ok()) error_ = chunk.error;
        if (job_) job_->set_timing(chunk.timing);
      }
    }
    if (plan_.params.stream) {
      for (size_t g = 0; g < choices_.size(); ++g) flush(g);
    }
    bool all_done = true;
    for (bool d : stream_done_) all_done = all_done && d;
    if (all_done) finish();
  }

  void on_token(size_t sub, const serve::StreamToken& t) {
    size_t g = sub * static_cast<size_t>(plan_.params.n) + static_cast<size_t>(t.choice);
    if (g >= choices_.size()) return;
    ChoiceState& s = choices_[g];
    if (s.done) return;
    if (!got_token_) {
      got_token_ = true;
      ex_->record().ttft_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - ex_->start_time()).count();
      if (job_) job_->first_token();
    }
    if (t.is_stop_token) return;  // EOS ends the choice; it is not text
    ChoiceText::Delta d = s.text.push(t.token);
    if (plan_.params.num_logprobs >= 0) {
      LogprobEntry e;
      e.token = token_text(plan_.lease.tokenizer(), t.token);
      e.logprob = t.logprob;
      for (const auto& alt : t.top_logprobs) {
        e.top.push_back({token_text(plan_.lease.tokenizer(), alt.token), alt.logprob});
      }
      s.logprobs.push_back(std::move(e));
    }
    if (s.parser) {
      parse(g, t.token, d.text);
      if (s.done) return;  // its first tool call ended it (parallel_tool_calls: false)
    } else {
      s.pending += d.text;
    }
    if (d.stopped) {
      // The stop string is not part of the answer; the worker ends the sequence at its next step.
      streams_[sub]->finish_choice(t.choice, serve::FinishReason::kStop);
      s.stop_sequence = d.stop;
      if (s.parser) parse_rest(g, "");
      if (!s.done) close_choice(g, "stop");
    }
  }

  // Feeds a choice's parser. Special tokens reach it rendered, so that it sees its family's
  // markers; what it leaves as content drops them, as skip_special_tokens would.
  void parse(size_t g, int32_t token, const std::string& text) {
    ChoiceState& s = choices_[g];
    std::vector<text::OutputEvent> ev;
    s.parser->push(token, text, &ev);
    if (token >= 0 && plan_.lease.tokenizer().is_special(token)) {
      if (const std::string* special = plan_.lease.tokenizer().token_string(token); special && !special->empty()) {
        for (auto& e : ev) {
          if (e.kind != text::OutputEvent::Kind::kContent) continue;
          for (size_t at; (at = e.text.find(*special)) != std::string::npos;) e.text.erase(at, special->size());
        }
      }
    }
    absorb(g, ev);
  }

  void parse_rest(size_t g, const std::string& rest) {
    ChoiceState& s = choices_[g];
    std::vector<text::OutputEvent> ev;
    if (!rest.empty()) s.parser->push(-1, rest, &ev);
    s.parser->finish(&ev);
    absorb(g, ev);
  }

  void absorb(size_t g, std::vector<text::OutputEvent>& ev) {
    ChoiceState& s = choices_[g];
    const size_t max_calls = plan_.parallel_tool_calls ? SIZE_MAX : 1;
    s.events.add(ev, plan_.params.stream, max_calls);
    if (!plan_.parallel_tool_calls && s.events.ended_calls() >= 1 && !s.done) {
      // One call allowed: the answer ends with it, as soon as it is complete.
      const size_t n = static_cast<size_t>(plan_.params.n);
      streams_[g / n]->finish_choice(static_cast<int>(g % n), serve::FinishReason::kStop);
      close_choice(g, "stop");
    }
  }

  void end_choice(size_t g, std::string reason) {
    if (g >= choices_.size() || choices_[g].done) return;
    if (job_cancelled_) {  // no finish_reason: the stream ends with the cancellation error instead
      choices_[g].done = true;
      return;
    }
    ChoiceText::Delta rest = choices_[g].text.finish();
    if (choices_[g].parser) {
      parse_rest(g, rest.text);
      if (choices_[g].done) return;
    } else {
      choices_[g].pending += rest.text;
    }
    if (rest.stopped) {
      reason = "stop";
      choices_[g].stop_sequence = rest.stop;
    }
    if (reason != "stop" && reason != "length") reason = "stop";
    close_choice(g, reason);
  }

  void close_choice(size_t g, std::string reason) {
    ChoiceState& s = choices_[g];
    // OpenAI: an answer that ends by calling tools finishes with "tool_calls".
    if (reason == "stop" && s.parser && !s.events.parsed().tool_calls.empty()) reason = "tool_calls";
    s.done = true;
    s.finish_reason = reason;
    if (g == 0) ex_->record().finish_reason = reason;
    if (!plan_.params.stream) return;
    flush(g);
    ChoiceDelta d;
    d.index = static_cast<int>(g);
    d.finish_reason = reason;
    d.stop_sequence = s.stop_sequence;
    d.text_offset = s.emitted;
    send(writer_->delta(d));
  }

  // Streaming: sends what a choice has gathered since its last chunk as one chunk.
  void flush(size_t g) {
    ChoiceState& s = choices_[g];
    if (s.parser) {
      std::vector<ChoiceDelta> deltas = s.events.take_deltas(static_cast<int>(g));
      if (deltas.empty() && !s.logprobs.empty()) {
        deltas.emplace_back();
        deltas.back().index = static_cast<int>(g);
        deltas.back().text = "";
      }
      for (size_t i = 0; i < deltas.size(); ++i) {
        if (i == 0) {
          deltas[i].with_logprobs = plan_.params.num_logprobs >= 0;
          deltas[i].logprobs = std::move(s.logprobs);
        }
        send(writer_->delta(deltas[i]));
      }
      s.logprobs.clear();
      return;
    }
    if (s.pending.empty() && s.logprobs.empty()) return;
    ChoiceDelta d;
    d.index = static_cast<int>(g);
    d.text = s.pending;
    d.with_logprobs = plan_.params.num_logprobs >= 0;
    d.logprobs = std::move(s.logprobs);
    d.text_offset = s.emitted;
    send(writer_->delta(d));
    s.emitted += static_cast<int64_t>(text::utf8_code_points(s.pending));
    s.pending.clear();
    s.logprobs.clear();
  }

  void finish() {
    finished_ = true;
    auto& rec = ex_->record();
    rec.prompt_tokens = usage_.prompt_tokens;
    rec.completion_tokens = usage_.completion_tokens;
    rec.cached_tokens = usage_.cached_tokens;
    if (!error_.is_ok()) {
      if (job_cancelled_ && !ex_->client_gone()) {
        // Cancelled through the jobs API: the client is still there and is told so.
        ApiError e = error_with_status(409, str_cat("Request ", ex_->request_id(), " was cancelled (DELETE /v1/jobs/",
                                                    ex_->request_id(), ")."), "request_cancelled");
        e.type = "cancelled";
        if (plan_.params.stream) end_stream_with_error(e);
        else ex_->respond_error(e);
        return;
      }
      if (cancelled_ || ex_->client_gone()) {
        // The client went away (or the server is closing): nobody reads an answer.
        if (plan_.params.stream) ex_->end_stream();
        else ex_->respond_error(error_for(error_));
        return;
      }
      log_warn("request ", ex_->request_id(), " failed: ", error_.to_string());
      ApiError e = error_for(error_);
      if (plan_.params.stream) end_stream_with_error(e);
      else ex_->respond_error(e);
      return;
    }
    for (size_t g = 0; g < choices_.size(); ++g) end_choice(g, "stop");
    for (const auto& c : choices_) {
      if (c.parser) usage_.reasoning_tokens += c.parser->reasoning_tokens();
    }
    if (plan_.params.stream) {
      send(writer_->end(usage_));
      ex_->end_stream();
      return;
    }
    std::vector<ChoiceOutput> out;
    for (size_t g = 0; g < choices_.size(); ++g) {
      ChoiceOutput c;
      c.index = static_cast<int>(g);
      c.text = std::move(choices_[g].pending);
      if (choices_[g].parser) {
        text::ParsedOutput& parsed = choices_[g].events.parsed();
        c.text = std::move(parsed.content);
        c.reasoning = std::move(parsed.reasoning);
        for (auto& t : parsed.tool_calls) c.tool_calls.push_back({std::move(t.id), std::move(t.name), std::move(t.arguments)});
      }
      c.finish_reason = choices_[g].finish_reason;
      c.stop_sequence = choices_[g].stop_sequence;
      c.with_logprobs = plan_.params.num_logprobs >= 0;
      c.logprobs = std::move(choices_[g].logprobs);
      c.text_offset = echo_of(g) == nullptr ? 0 : static_cast<int64_t>(text::utf8_code_points(*echo_of(g)));
      out.push_back(std::move(c));
    }
    std::string body = plan_.api->response(plan_.meta, out, usage_);
    if (job_ && job_->stores_bodies()) job_->set_response_body(body);
    ex_->respond({200, "application/json", {}, std::move(body)});
  }

  const AppContext& ctx_;
  ExchangePtr ex_;
  GenerationPlan plan_;
  std::vector<ChoiceState> choices_;  // [prompts * n]
  std::vector<std::shared_ptr<serve::TokenStream>> streams_;  // one per prompt
  std::vector<bool> stream_done_;
  std::atomic<bool> wake_pending_{false};
  Usage usage_;
  Status error_;
  bool got_token_ = false;
  bool finished_ = false;
  bool cancelled_ = false;
  bool job_cancelled_ = false;
  std::shared_ptr<ActiveJob> job_;  // null when jobs are not recorded
  std::unique_ptr<StreamWriter> writer_;  // streaming: the API's event sequence
};

}  // namespace

void run_generation(const AppContext& ctx, const ExchangePtr& ex, GenerationPlan plan) {
  const auto& p = plan.params;
  const int64_t vocab = plan.lease.config().vocab_size;
  for (const auto& [id, bias] : p.logit_bias) {
    if (id < 0 || id >= vocab) {
      return ex->respond_error(invalid_param("logit_bias", str_cat("token id ", id, " is outside the vocabulary (",
                                                                   vocab, " tokens).")));
    }
  }
  for (int32_t id : p.stop_token_ids) {
    if (id >= vocab) {
      return ex->respond_error(invalid_param("stop_token_ids", str_cat("token id ", id, " is outside the vocabulary.")));
    }
  }
  auto stops = text::StopMatcher::create(p.stop);
  if (!stops.is_ok()) return ex->respond_error(invalid_param("stop", stops.status().message()));
  const int64_t max_len = plan.lease.max_model_len();
  std::vector<int64_t> max_tokens;
  int64_t prompt_total = 0;
  for (const auto& prompt : plan.prompts) {
    const int64_t n = static_cast<int64_t>(prompt.size());
    prompt_total += n;
    if (n == 0) return ex->respond_error(invalid_param(std::string(plan.api->prompt_param()), "the prompt is empty."));
    std::optional<int64_t> budget = completion_budget(n, max_len, p.max_tokens, plan.default_max_tokens);
    if (!budget) return ex->respond_error(plan.api->context_length_error(max_len, n, p.max_tokens));
    max_tokens.push_back(*budget);
  }
  ex->record().model = plan.lease.id();
  ex->record().prompt_tokens = prompt_total;
  ex->record().completion_tokens = 0;
  plan.meta.model = plan.lease.id();
  plan.meta.created = unix_time_seconds();
  plan.meta.system_fingerprint = ctx.system_fingerprint;
  plan.meta.prompt_tokens = prompt_total;
  plan.meta.store_bodies = plan.lease.store_bodies();
  std::shared_ptr<const serve::ConstraintFactory> constraint;
  std::optional<grammar::GrammarSpec> tool_spec;
  if (auto e = tool_grammar_spec(plan.tool_constraint, &tool_spec)) return ex->respond_error(*e);
  const bool lazy = tool_spec && tool_spec->tool_calls.lazy;
  // Under auto the response_format decides the answer's shape; strict tools then go unenforced.
  if (lazy && p.structured) tool_spec.reset();
  if (tool_spec && p.structured) {
    // One grammar per answer: a forced call already fixes its shape (docs/tool-calling-api.md).
    return ex->respond_error(invalid_param(p.structured->param, str_cat(p.structured->param,
                                                                        " cannot be combined with a tool_choice that "
                                                                        "forces a tool call ('required' or a named tool).")));
  }
  const grammar::GrammarSpec* spec = tool_spec ? &*tool_spec : p.structured ? &p.structured->spec : nullptr;
  const std::string spec_param = tool_spec ? "tools" : p.structured ? p.structured->param : "";
  if (spec) {
    // Compiled here, on the HTTP thread and through the server-wide cache (the same format
    // compiles once), never on the engine thread. The compilers bound their work (grammar/limits.h).
    auto compiled = ctx.grammars->get(*spec);
    if (!compiled.is_ok()) {
      ApiError e = invalid_param(spec_param, compiled.status().message());
      if (compiled.status().code() != StatusCode::kInvalidArgument) e = api_error_from_status(compiled.status(), spec_param);
      return ex->respond_error(e);
    }
    if (lazy && tool_spec) {
      constraint = serve::lazy_grammar_constraint(std::move(compiled).value(), plan.lease.token_vocabulary(),
                                                  *grammar::tool_call_trigger(tool_spec->tool_calls));
    } else {
      constraint = serve::grammar_constraint(std::move(compiled).value(), plan.lease.token_vocabulary());
    }
  }
  auto session = std::make_shared<Session>(ctx, ex, std::move(plan));
  session->start(max_tokens, *stops, std::move(constraint));
}

}  // namespace kiln::http
