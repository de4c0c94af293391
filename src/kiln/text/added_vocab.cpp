#include "kiln/text/added_vocab.h"

#include <algorithm>

#include "kiln/text/unicode.h"
#include "kiln/text/utf8.h"

namespace kiln::text {

void AddedVocabulary::Trie::add(std::string_view key, int32_t value) {
  if (key.empty()) return;
  first_[static_cast<unsigned char>(key[0])] = true;
  size_t node = 0;
  for (unsigned char c : key) {
    auto& next = nodes_[node].next;
    auto it = std::lower_bound(next.begin(), next.end(), c, [](const auto& e, unsigned char b) { return e.first < b; });
    if (it != next.end() && it->first == c) {
      node = static_cast<size_t>(it->second);
    } else {
      const auto child = static_cast<int32_t>(nodes_.size());
      next.insert(it, {c, child});
      nodes_.emplace_back();
      node = static_cast<size_t>(child);
    }
  }
  // The first token with a given content wins, as in HF's added vocabulary.
  if (nodes_[node].value < 0) nodes_[node].value = value;
}

int32_t AddedVocabulary::Trie::longest_at(std::string_view s, size_t pos, size_t* len) const {
  int32_t best = -1;
  size_t node = 0;
  for (size_t i = pos; i < s.size(); ++i) {
    const auto& next = nodes_[node].next;
    const auto c = static_cast<unsigned char>(s[i]);
    auto it = std::lower_bound(next.begin(), next.end(), c, [](const auto& e, unsigned char b) { return e.first < b; });
    if (it == next.end() || it->first != c) break;
    node = static_cast<size_t>(it->second);
    if (nodes_[node].value >= 0) {
      best = nodes_[node].value;
      *len = i + 1 - pos;
    }
  }
  return best;
}

namespace {

char32_t last_char(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i;
  if (i > 0) --i;
  return next_code_point(s, i);
}

}  // namespace

std::vector<AddedSplit> AddedVocabulary::split(std::string_view s, bool normalized_set) const {
  const Trie& trie = normalized_set ? normalized_ : raw_;
  std::vector<AddedSplit> out;
  if (trie.empty() || s.empty()) {
    out.push_back({0, s.size(), -1});
    return out;
  }
  size_t start_offset = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    if (!trie.may_start(static_cast<unsigned char>(s[pos]))) {
      ++pos;
      continue;
    }
    size_t len = 0;
    const int32_t idx = trie.longest_at(s, pos, &len);
    if (idx < 0) {
      ++pos;
      continue;
    }
    const AddedToken& tok = tokens_[static_cast<size_t>(idx)];
    size_t start = pos, stop = pos + len;
    pos = stop;  // matching resumes after the match, whatever stripping does below
    if (tok.single_word) {
      const bool start_space = start == 0 || !is_word_char(last_char(s.substr(0, start)));
      size_t j = stop;
      const bool stop_space = stop == s.size() || !is_word_char(next_code_point(s, j));
      if (!start_space || !stop_space) continue;
    }
    if (tok.lstrip) {
      size_t b = start;
      while (b > 0) {
        size_t k = b - 1;
        while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
        size_t kk = k;
        if (!is_white_space(next_code_point(s, kk))) break;
        b = k;
      }
      start = std::max(b, start_offset);
    }
    if (tok.rstrip) {
      while (stop < s.size()) {
        size_t k = stop;
        if (!is_white_space(next_code_point(s, k))) break;
        stop = k;
      }
    }
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, tok.id});
    start_offset = stop;
  }
  if (start_offset != s.size()) out.push_back({start_offset, s.size(), -1});
  return out;
}

const AddedToken* AddedVocabulary::find_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const int32_t* AddedVocabulary::find_content(std::string_view content) const {
  auto it = by_content_.find(content);
  return it == by_content_.end() ? nullptr : &it->second;
}

bool AddedVocabulary::is_special_content(std::string_view content) const {
  return special_contents_.find(content) != special_contents_.end();
}

}  // namespace kiln::text
