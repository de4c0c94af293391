// The BPE model of tokenizer.json ("model": {"type": "BPE"}): byte-level vocabularies (GPT-2 style)
// and SentencePiece-style ones with byte fallback and unknown-token fusing.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::text {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept;
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel {
 public:
  // `merges` are pairs of vocabulary entries, highest priority first.
  static Result<std::unique_ptr<BpeModel>> create(Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                                                  BpeOptions options);

  // Appends the ids of one pre-tokenized word. Thread-safe.
  Status tokenize(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;
  // Number of entries in the vocabulary (HF's get_vocab_size for the model).
  size_t size() const { return vocab_.size(); }
  const Vocab& vocab() const { return vocab_; }
  // A lower bound on the ids of a word of N characters is ceil(N / max_token_chars()): each id
  // covers at most that many of its characters (a byte-fallback id covers part of one). It does not
  // hold when unknown characters fuse into one id of any length (may_fuse_unknown()).
  size_t max_token_chars() const { return max_token_chars_; }
  // A lower bound on the ids of `word`, tighter than the one above for long words: an id at a
  // character covers at most the longest token that starts with that character, and covering the
  // word with such spans takes at least this many. Counts no further than `stop_above` + 1.
  // Meaningful only when !may_fuse_unknown().
  size_t min_ids(std::string_view word, size_t stop_above) const;
  bool may_fuse_unknown() const { return unk_id_.has_value() && opt_.fuse_unk && !(opt_.byte_fallback && all_bytes_); }

 private:
  struct MergeValue {
    uint32_t rank;
    int32_t new_id;
  };
  // Open addressing over (left id, right id) pairs; built once, read-only afterwards.
  class MergeMap {
   public:
    void reserve(size_t n);
    void insert_or_assign(uint64_t key, MergeValue v);
    const MergeValue* find(uint64_t key) const {
      size_t i = hash(key) & mask_;
      while (true) {
        const Slot& s = slots_[i];
        if (s.key == key) return &s.value;
        if (s.key == kEmpty) return nullptr;
        i = (i + 1) & mask_;
      }
    }

   private:
    static constexpr uint64_t kEmpty = ~0ULL;
    struct Slot {
      uint64_t key = kEmpty;
      MergeValue value{};
    };
    static size_t hash(uint64_t k) {
      k ^= k >> 33;
      k *= 0xff51afd7ed558ccdULL;
      k ^= k >> 33;
      return static_cast<size_t>(k);
    }
    std::vector<Slot> slots_;
    size_t mask_ = 0;
  };
  struct CacheShard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };

  BpeModel() = default;
  Status merge_word(std::string_view word, std::vector<int32_t>& out) const;
  int32_t char_id(std::string_view ch, bool first, bool last) const;

  Vocab vocab_;
  std::vector<const std::string*> id_to_token_;
  MergeMap merges_;
  BpeOptions opt_;
  std::optional<int32_t> unk_id_;
  std::array<int32_t, 256> byte_ids_{};  // "<0xAB>" tokens, -1 when absent
  bool all_bytes_ = false;
  size_t max_token_chars_ = 1;
  // Per BMP character, the most characters of a token starting with it (0: none); empty when a
  // subword prefix or suffix makes tokens differ from the text they cover.
  std::vector<uint8_t> longest_from_;
  std::vector<int32_t> bmp_ids_;  // single-character ids for the BMP when no prefix/suffix applies
  static constexpr size_t kCacheShards = 16;
  static constexpr size_t kCacheShardCapacity = 8192;
  static constexpr size_t kCacheMaxWord = 256;
  mutable std::array<CacheShard, kCacheShards> cache_;
};

}  // namespace kiln::text
