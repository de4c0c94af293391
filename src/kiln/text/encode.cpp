// Tokenizer::encode's pipeline: added tokens, normalizer, pre-tokenizer, model, post-processor;
// with a limit it stops as soon as the ids cannot fit, without reading the rest of the text.
#include "kiln/core/str.h"
#include "kiln/text/tokenizer_impl.h"
#include "kiln/text/utf8.h"

namespace kiln::text {
namespace {

// Pieces at the end of a window that are searched again with the next window: the matches near a
// window's end may have been decided by that end (a run of letters or whitespace cut short,
// `\s+(?!\S)` or `\s*[\r\n]+` seeing the end of the text). Two suffice for the pre-tokenizers of
// the models kiln knows (the tests cut every fixture string in windows of a few bytes); one more
// is margin.
constexpr size_t kWindowTailPieces = 3;

// Words longer than this get the tighter bound of BpeModel::min_ids before their merges.
constexpr size_t kLongWordBytes = 32;

size_t first_invalid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = utf8_sequence_length(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

size_t count_chars(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

class Encoder {
 public:
  Encoder(const Tokenizer::Impl& m, std::string_view text, bool add_special_tokens, std::optional<size_t> max_tokens,
          size_t window_bytes)
      : m_(m), max_(max_tokens), window_bytes_(window_bytes == 0 ? 1 : window_bytes) {
    if (add_special_tokens && max_)
      reserved_ = m.post_processor.prefix_ids().size() + m.post_processor.suffix_ids().size();
    // Every character of the text then lands in a piece, and each id covers at most
    // max_token_chars() of a piece's characters (ByteLevel makes one character of each byte).
    bounded_ = m.pre_tokenizer.keeps_all_text() && !m.model->may_fuse_unknown();
    if (max_) window_regex_ = m.pre_tokenizer.windowable_split();
    ids_.reserve(std::min(text.size() / 3 + 4, max_ ? *max_ + 1 : SIZE_MAX));
  }

  Status add_id(int32_t id) {
    ids_.push_back(id);
    return over() ? refuse() : Status::ok();
  }

  // One segment of normalized text between added tokens.
  Status add_part(std::string_view part, bool at_origin) {
    if (cannot_fit(part)) return refuse();
    if (m_.pre_tokenizer.empty()) return add_word(part);
    pieces_.clear();
    if (window_regex_ == nullptr || part.size() <= window_bytes_) {
      KILN_RETURN_IF_ERROR(m_.pre_tokenizer.run(part, at_origin, pieces_));
      return add_pieces();
    }
    return add_part_in_windows(part, at_origin);
  }

  Result<std::vector<int32_t>> finish(bool add_special_tokens) {
    m_.post_processor.process(ids_, add_special_tokens);
    if (max_ && ids_.size() > *max_) return refuse();
    return std::move(ids_);
  }

 private:
  bool over() const { return max_ && ids_.size() + reserved_ > *max_; }
  // True when `text` alone has more characters than the ids left can cover.
  bool cannot_fit(std::string_view text) const {
    if (!max_ || !bounded_) return false;
    const size_t per_id = m_.model->max_token_chars();
    return ids_.size() + reserved_ + (count_chars(text) + per_id - 1) / per_id > *max_;
  }
  Status refuse() const { return too_long(str_cat("the text has more than ", *max_, " tokens")); }

  Status add_word(std::string_view word) {
    if (cannot_fit(word)) return refuse();
    // Merging a long word costs microseconds per character, and a word is merged whole: bound it
    // first by the longest tokens its characters can start.
    if (max_ && bounded_ && word.size() > kLongWordBytes) {
      const size_t left = *max_ - std::min(*max_, ids_.size() + reserved_);
      if (m_.model->min_ids(word, left) > left) return refuse();
    }
    KILN_RETURN_IF_ERROR(m_.model->tokenize(word, ids_));
    return over() ? refuse() : Status::ok();
  }

  Status add_pieces() {
    for (const Piece& p : pieces_) KILN_RETURN_IF_ERROR(add_word(p.text));
    return Status::ok();
  }

  // The first pre-tokenizer step over a window of the part at a time; pieces that the window's end
  // may have decided are searched again at the start of the next window, so the pieces are those
  // of a search over the whole part.
  Status add_part_in_windows(std::string_view part, bool at_origin) {
    size_t pos = 0;
    size_t window = window_bytes_;
    while (pos < part.size()) {
      size_t end = part.size() - pos <= window ? part.size() : pos + window;
      while (end < part.size() && (static_cast<unsigned char>(part[end]) & 0xC0) == 0x80) ++end;
      const std::string_view sub = part.substr(pos, end - pos);
      matches_.clear();
      ranges_.clear();
      KILN_RETURN_IF_ERROR(window_regex_->find_all(sub, matches_));
      split_by_matches(sub.size(), matches_, SplitBehavior::kIsolated, false, ranges_);
      size_t keep = ranges_.size();
      if (end < part.size()) {
        if (ranges_.size() <= kWindowTailPieces) {  // one long run: look further
          window *= 2;
          continue;
        }
        keep -= kWindowTailPieces;
      }
      pieces_.clear();
      for (size_t i = 0; i < keep; ++i) {
        const auto [a, b] = ranges_[i];
        if (a == b) continue;
        KILN_RETURN_IF_ERROR(
            m_.pre_tokenizer.run_after_first(Piece{std::string(sub.substr(a, b - a)), at_origin && pos + a == 0}, pieces_));
      }
      KILN_RETURN_IF_ERROR(add_pieces());
      pos += keep < ranges_.size() ? ranges_[keep].first : sub.size();
      window = window_bytes_;
    }
    return Status::ok();
  }

  const Tokenizer::Impl& m_;
  std::optional<size_t> max_;
  size_t window_bytes_;
  size_t reserved_ = 0;
  bool bounded_ = false;
  const Regex* window_regex_ = nullptr;
  std::vector<int32_t> ids_;
  std::vector<Piece> pieces_;
  std::vector<std::pair<size_t, size_t>> matches_, ranges_;
};

}  // namespace

Result<std::vector<int32_t>> encode_text(const Tokenizer::Impl& m, std::string_view text, bool add_special_tokens,
                                         std::optional<size_t> max_tokens, size_t window_bytes) {
  if (const size_t bad = first_invalid_utf8(text); bad != std::string_view::npos)
    return invalid_argument(str_cat("text is not valid UTF-8 (byte offset ", bad, ")"));
  Encoder enc(m, text, add_special_tokens, max_tokens, window_bytes);
  for (const AddedSplit& raw : m.added.split(text, false)) {
    if (raw.id >= 0) {
      KILN_RETURN_IF_ERROR(enc.add_id(raw.id));
      continue;
    }
    if (raw.start == raw.end) continue;
    const std::string_view segment = text.substr(raw.start, raw.end - raw.start);
    std::string normalized_storage;
    std::string_view normalized = segment;
    if (!m.normalizer.empty()) {
      KILN_ASSIGN_OR_RETURN(normalized_storage, m.normalizer.apply(segment));
      normalized = normalized_storage;
    }
    for (const AddedSplit& ns : m.added.split(normalized, true)) {
      if (ns.id >= 0) {
        KILN_RETURN_IF_ERROR(enc.add_id(ns.id));
        continue;
      }
      if (ns.start == ns.end) continue;
      const bool at_origin = raw.start == 0 && ns.start == 0;
      KILN_RETURN_IF_ERROR(enc.add_part(normalized.substr(ns.start, ns.end - ns.start), at_origin));
    }
  }
  return enc.finish(add_special_tokens);
}

}  // namespace kiln::text
