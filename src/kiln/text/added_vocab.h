// Added tokens (tokenizer.json "added_tokens"): matched in the raw text (normalized == false) or in
// the normalized text (normalized == true) before pre-tokenization, leftmost-longest, with the
// lstrip / rstrip / single_word options of Hugging Face `tokenizers`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "kiln/text/bpe.h"

namespace kiln::text {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = true;
};

// One piece of a segmented input: [start, end) and the added token id, or -1 for plain text.
struct AddedSplit {
  size_t start;
  size_t end;
  int32_t id;
};

class AddedVocabulary {
 public:
  // A leftmost-longest matcher over a set of byte strings.
  class Trie {
   public:
    void add(std::string_view key, int32_t value);
    // Longest key starting at s[pos]: returns its value and sets *len, or -1.
    int32_t longest_at(std::string_view s, size_t pos, size_t* len) const;
    bool empty() const { return nodes_.size() <= 1; }
    bool may_start(unsigned char c) const { return first_[c]; }

   private:
    struct Node {
      std::vector<std::pair<unsigned char, int32_t>> next;  // sorted by byte
      int32_t value = -1;
    };
    std::vector<Node> nodes_{1};
    bool first_[256] = {};
  };

  // `normalize` maps a normalized token's content to the form it is matched in.
  template <typename NormalizeFn>
  void build(std::vector<AddedToken> tokens, NormalizeFn normalize) {
    tokens_ = std::move(tokens);
    for (size_t i = 0; i < tokens_.size(); ++i) {
      const AddedToken& t = tokens_[i];
      by_id_[t.id] = i;
      by_content_[t.content] = t.id;
      if (t.special) special_contents_.insert(t.content);
      if (t.normalized) {
        normalized_.add(normalize(t.content), static_cast<int32_t>(i));
      } else {
        raw_.add(t.content, static_cast<int32_t>(i));
      }
    }
  }

  // Splits `s` on the tokens of the raw (normalized == false) or the normalized set.
  std::vector<AddedSplit> split(std::string_view s, bool normalized_set) const;

  const AddedToken* find_id(int32_t id) const;
  const int32_t* find_content(std::string_view content) const;
  bool is_special_content(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> by_content_;
  std::unordered_set<std::string, StringHash, std::equal_to<>> special_contents_;
  Trie raw_, normalized_;
};

}  // namespace kiln::text
