#include "kiln/text/detokenizer.h"

#include "kiln/core/str.h"
#include "kiln/text/decoder.h"
#include "kiln/text/normalizer.h"
#include "kiln/text/pre_tokenizer.h"
#include "kiln/text/utf8.h"

namespace kiln::text {

// One decoder step. In list mode a call to token() is one token; in fused mode (after a step that
// joins everything, like ByteLevel or Fuse) it is the next chunk of the single joined token.
struct IncrementalDetokenizer::Stage {
  virtual ~Stage() = default;
  virtual void token(std::string t) = 0;
  virtual void finish() {}
  void emit(std::string t) {
    if (next != nullptr) {
      next->token(std::move(t));
    } else if (join_with_space && emitted_any) {
      out->push_back(' ');
      out->append(t);
    } else {
      out->append(t);
    }
    emitted_any = true;
  }
  Stage* next = nullptr;
  std::string* out = nullptr;
  bool join_with_space = false;  // no decoder at all: HF joins the tokens with spaces
  bool emitted_any = false;
};

namespace {

using Stage = IncrementalDetokenizer::Stage;

struct PassStage : Stage {
  void token(std::string t) override { emit(std::move(t)); }
};

struct ByteLevelStage : Stage {
  Utf8LossyStream stream;
  void token(std::string t) override {
    std::string bytes;
    if (!byte_level_decode(t, bytes)) bytes = t;
    std::string text;
    stream.push(bytes, text);
    if (!text.empty()) emit(std::move(text));
  }
  void finish() override {
    std::string text;
    stream.finish(text);
    if (!text.empty()) emit(std::move(text));
  }
};

struct ByteFallbackStage : Stage {
  std::string run;
  size_t run_len = 0;
  void flush() {
    if (run_len == 0) return;
    if (is_valid_utf8(run)) {
      emit(std::move(run));
    } else {
      for (size_t i = 0; i < run_len; ++i) emit(std::string(kReplacementUtf8));
    }
    run.clear();
    run_len = 0;
  }
  void token(std::string t) override {
    const int b = byte_fallback_value(t);
    if (b >= 0) {
      run.push_back(static_cast<char>(b));
      ++run_len;
      return;
    }
    flush();
    emit(std::move(t));
  }
  void finish() override { flush(); }
};

struct ReplaceListStage : Stage {
  const DecoderStep* step;
  explicit ReplaceListStage(const DecoderStep* s) : step(s) {}
  void token(std::string t) override {
    std::vector<std::string> one{std::move(t)};
    Decoder::apply(*step, one);
    emit(std::move(one[0]));
  }
};

// Literal replace over one growing string: holds back a tail that may be the start of the pattern.
struct ReplaceFusedStage : Stage {
  std::string pattern, content, pending;
  ReplaceFusedStage(std::string p, std::string c) : pattern(std::move(p)), content(std::move(c)) {}
  void token(std::string t) override {
    pending.append(t);
    if (pattern.empty()) {
      emit(std::move(pending));
      pending.clear();
      return;
    }
    std::string done;
    size_t pos = 0;
    while (true) {
      const size_t hit = pending.find(pattern, pos);
      if (hit == std::string::npos) break;
      done.append(pending, pos, hit - pos).append(content);
      pos = hit + pattern.size();
    }
    size_t keep = 0;
    for (size_t k = std::min(pattern.size() - 1, pending.size() - pos); k > 0; --k) {
      if (pending.compare(pending.size() - k, k, pattern, 0, k) == 0) {
        keep = k;
        break;
      }
    }
    done.append(pending, pos, pending.size() - pos - keep);
    pending.erase(0, pending.size() - keep);
    if (!done.empty()) emit(std::move(done));
  }
  void finish() override {
    if (!pending.empty()) emit(std::move(pending));
    pending.clear();
  }
};

struct StripListStage : Stage {
  const DecoderStep* step;
  explicit StripListStage(const DecoderStep* s) : step(s) {}
  void token(std::string t) override {
    std::vector<std::string> one{std::move(t)};
    Decoder::apply(*step, one);
    emit(std::move(one[0]));
  }
};

// Strip over one growing string: drops up to `start` leading and `stop` trailing `c` characters.
struct StripFusedStage : Stage {
  char32_t c;
  size_t start, stop;
  size_t stripped_front = 0;
  bool front_done = false;
  std::string tail;  // trailing characters equal to c, at most `stop` of them
  size_t tail_chars = 0;
  StripFusedStage(char32_t ch, size_t a, size_t b) : c(ch), start(a), stop(b) {}
  void token(std::string t) override {
    std::string done;
    for (size_t i = 0; i < t.size();) {
      const size_t at = i;
      const char32_t cp = next_code_point(t, i);
      const std::string_view ch(t.data() + at, i - at);
      if (!front_done) {
        if (cp == c && stripped_front < start) {
          ++stripped_front;
          continue;
        }
        front_done = true;
      }
      if (stop == 0) {
        done.append(ch);
        continue;
      }
      if (cp == c) {
        tail.append(ch);
        if (++tail_chars > stop) {  // the oldest held one can no longer be at the end
          const size_t n = utf8_char_length(static_cast<unsigned char>(tail[0]));
          done.append(tail, 0, n);
          tail.erase(0, n);
          --tail_chars;
        }
      } else {
        done.append(tail);
        tail.clear();
        tail_chars = 0;
        done.append(ch);
      }
    }
    if (!done.empty()) emit(std::move(done));
  }
  // The held tail is exactly what Strip removes at the end.
  void finish() override {}
};

struct MetaspaceStage : Stage {
  std::string replacement;
  bool prepend;
  bool fused;
  size_t index = 0;
  MetaspaceStage(std::string r, bool p, bool f) : replacement(std::move(r)), prepend(p), fused(f) {}
  void token(std::string t) override {
    const bool first = fused || index == 0;
    ++index;
    emit(replace_all(t, replacement, first && prepend ? "" : " "));
  }
};

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special_tokens,
                                               std::span<const int32_t> context_ids)
    : tokenizer_(std::move(tokenizer)), skip_special_(skip_special_tokens) {
  bool fused = false;
  for (const DecoderStep& step : tokenizer_->decoder().steps()) {
    std::unique_ptr<Stage> s;
    switch (step.kind) {
      case DecoderStep::Kind::kByteLevel:
        if (fused) streaming_ = false;
        s = std::make_unique<ByteLevelStage>();
        fused = true;
        break;
      case DecoderStep::Kind::kFuse:
        s = std::make_unique<PassStage>();
        fused = true;
        break;
      case DecoderStep::Kind::kByteFallback:
        if (fused) streaming_ = false;
        s = std::make_unique<ByteFallbackStage>();
        break;
      case DecoderStep::Kind::kReplace:
        if (fused && step.regex) streaming_ = false;
        if (fused) {
          s = std::make_unique<ReplaceFusedStage>(step.pattern, step.content);
        } else {
          s = std::make_unique<ReplaceListStage>(&step);
        }
        break;
      case DecoderStep::Kind::kStrip:
        if (fused) {
          s = std::make_unique<StripFusedStage>(step.strip_char, step.start, step.stop);
        } else {
          s = std::make_unique<StripListStage>(&step);
        }
        break;
      case DecoderStep::Kind::kMetaspace:
        s = std::make_unique<MetaspaceStage>(step.replacement, step.prepend, fused);
        break;
    }
    stages_.push_back(std::move(s));
  }
  if (stages_.empty()) {
    stages_.push_back(std::make_unique<PassStage>());
    stages_.back()->join_with_space = true;
  }
  for (size_t i = 0; i + 1 < stages_.size(); ++i) stages_[i]->next = stages_[i + 1].get();
  stages_.back()->out = out_.get();
  if (!context_ids.empty()) {
    push(context_ids);
    out_->clear();
    if (!streaming_) context_text_size_ = tokenizer_->decode(held_ids_, skip_special_).size();
  }
}

IncrementalDetokenizer::~IncrementalDetokenizer() = default;
IncrementalDetokenizer::IncrementalDetokenizer(IncrementalDetokenizer&&) noexcept = default;
IncrementalDetokenizer& IncrementalDetokenizer::operator=(IncrementalDetokenizer&&) noexcept = default;

bool IncrementalDetokenizer::streaming() const { return streaming_; }

std::string IncrementalDetokenizer::push(int32_t id) { return push(std::span<const int32_t>(&id, 1)); }

std::string IncrementalDetokenizer::push(std::span<const int32_t> ids) {
  if (finished_) return "";
  if (!streaming_) {
    for (int32_t id : ids) held_ids_.push_back(id);
    return "";
  }
  for (int32_t id : ids) {
    const std::string* t = tokenizer_->token_string(id);
    if (t == nullptr) continue;
    if (skip_special_ && tokenizer_->is_special(id)) continue;
    stages_.front()->token(*t);
  }
  std::string delta;
  delta.swap(*out_);
  return delta;
}

std::string IncrementalDetokenizer::finish() {
  if (finished_) return "";
  finished_ = true;
  if (!streaming_) {
    std::string all = tokenizer_->decode(held_ids_, skip_special_);
    return all.size() >= context_text_size_ ? all.substr(context_text_size_) : all;
  }
  for (auto& s : stages_) s->finish();
  std::string delta;
  delta.swap(*out_);
  return delta;
}

}  // namespace kiln::text
