#include "kiln/text/bpe.h"

#include <algorithm>
#include <cstdio>

#include "kiln/core/str.h"
#include "kiln/text/utf8.h"

namespace kiln::text {

size_t StringHash::operator()(std::string_view s) const noexcept {
  // FNV-1a mixed with the length: short tokens dominate, and this beats std::hash on them.
  uint64_t h = 0xcbf29ce484222325ULL ^ s.size();
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return static_cast<size_t>(h ^ (h >> 29));
}

void BpeModel::MergeMap::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
}

void BpeModel::MergeMap::insert_or_assign(uint64_t key, MergeValue v) {
  size_t i = hash(key) & mask_;
  while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask_;
  slots_[i].key = key;
  slots_[i].value = v;
}

Result<std::unique_ptr<BpeModel>> BpeModel::create(Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                                                   BpeOptions options) {
  std::unique_ptr<BpeModel> m(new BpeModel());
  m->vocab_ = std::move(vocab);
  m->opt_ = std::move(options);
  int32_t max_id = -1;
  for (const auto& [tok, id] : m->vocab_) {
    if (id < 0) return invalid_argument(str_cat("model.vocab: token '", tok, "' has a negative id ", id));
    max_id = std::max(max_id, id);
  }
  if (max_id > (1 << 30)) return invalid_argument(str_cat("model.vocab: id ", max_id, " is too large"));
  m->id_to_token_.assign(static_cast<size_t>(max_id + 1), nullptr);
  for (const auto& [tok, id] : m->vocab_) {
    m->id_to_token_[static_cast<size_t>(id)] = &tok;
    size_t chars = 0;
    for (unsigned char c : tok) chars += (c & 0xC0) != 0x80;
    m->max_token_chars_ = std::max(m->max_token_chars_, chars);
  }

  const size_t prefix_len = m->opt_.continuing_subword_prefix.size();
  m->merges_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = m->vocab_.find(a);
    auto ib = m->vocab_.find(b);
    if (ia == m->vocab_.end()) return invalid_argument(str_cat("model.merges[", rank, "]: '", a, "' is not in the vocabulary"));
    if (ib == m->vocab_.end()) return invalid_argument(str_cat("model.merges[", rank, "]: '", b, "' is not in the vocabulary"));
    if (b.size() < prefix_len)
      return invalid_argument(str_cat("model.merges[", rank, "]: '", b, "' is shorter than continuing_subword_prefix"));
    joined.assign(a).append(std::string_view(b).substr(prefix_len));
    auto inew = m->vocab_.find(joined);
    if (inew == m->vocab_.end())
      return invalid_argument(str_cat("model.merges[", rank, "]: the merged token '", joined, "' is not in the vocabulary"));
    // A repeated pair keeps its last rank, as a HashMap collected in order does.
    m->merges_.insert_or_assign((static_cast<uint64_t>(static_cast<uint32_t>(ia->second)) << 32) |
                                    static_cast<uint32_t>(ib->second),
                                MergeValue{static_cast<uint32_t>(rank), inew->second});
  }
  if (m->opt_.unk_token) {
    auto it = m->vocab_.find(*m->opt_.unk_token);
    if (it == m->vocab_.end())
      return invalid_argument(str_cat("model.unk_token '", *m->opt_.unk_token, "' is not in the vocabulary"));
    m->unk_id_ = it->second;
  }
  m->all_bytes_ = true;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    auto it = m->vocab_.find(std::string_view(name));
    m->byte_ids_[static_cast<size_t>(b)] = it == m->vocab_.end() ? -1 : it->second;
    if (it == m->vocab_.end()) m->all_bytes_ = false;
  }
  if (m->opt_.continuing_subword_prefix.empty() && m->opt_.end_of_word_suffix.empty()) {
    m->bmp_ids_.assign(0x10000, -1);
    std::string ch;
    for (const auto& [tok, id] : m->vocab_) {
      size_t i = 0;
      if (tok.empty() || utf8_sequence_length(tok, 0) != tok.size()) continue;
      const char32_t cp = next_code_point(tok, i);
      if (cp < 0x10000) m->bmp_ids_[cp] = id;
    }
    m->longest_from_.assign(0x10000, 0);
    for (const auto& [tok, id] : m->vocab_) {
      if (tok.empty()) continue;
      size_t i = 0;
      const char32_t cp = next_code_point(tok, i);
      if (cp >= 0x10000) continue;
      size_t chars = 0;
      for (unsigned char c : tok) chars += (c & 0xC0) != 0x80;
      uint8_t& l = m->longest_from_[cp];
      l = static_cast<uint8_t>(std::min<size_t>(255, std::max<size_t>(l, chars)));
    }
  }
  return m;
}

size_t BpeModel::min_ids(std::string_view word, size_t stop_above) const {
  size_t n = 0;
  for (unsigned char c : word) n += (c & 0xC0) != 0x80;
  // After k spans every position up to `hi` is reachable (shorter spans are allowed, so the
  // reachable positions form an interval); each round reads the characters it added, once.
  size_t ids = 0, hi = 0, far = 0, p = 0, byte = 0;
  while (hi < n) {
    for (; p <= hi && p < n; ++p) {
      const char32_t cp = next_code_point(word, byte);
      size_t l = max_token_chars_;
      if (!longest_from_.empty() && cp < 0x10000 && longest_from_[cp] != 255) l = longest_from_[cp];
      far = std::max(far, p + std::max<size_t>(l, 1));  // byte fallback and unk cover one character
    }
    if (++ids > stop_above) break;
    hi = far;
  }
  return ids;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) return nullptr;
  return id_to_token_[static_cast<size_t>(id)];
}

int32_t BpeModel::char_id(std::string_view ch, bool first, bool last) const {
  if (!bmp_ids_.empty()) {
    size_t i = 0;
    const char32_t cp = next_code_point(ch, i);
    if (cp < 0x10000) return bmp_ids_[cp];
    auto it = vocab_.find(ch);
    return it == vocab_.end() ? -1 : it->second;
  }
  std::string s;
  if (!first) s.append(opt_.continuing_subword_prefix);
  s.append(ch);
  if (last) s.append(opt_.end_of_word_suffix);
  auto it = vocab_.find(s);
  return it == vocab_.end() ? -1 : it->second;
}

Status BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return Status::ok();
  if (opt_.ignore_merges) {
    auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return Status::ok();
    }
  }
  if (word.size() >= kCacheMaxWord) return merge_word(word, out);
  CacheShard& shard = cache_[StringHash{}(word) % kCacheShards];
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.map.find(word);
    if (it != shard.map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return Status::ok();
    }
  }
  const size_t before = out.size();
  KILN_RETURN_IF_ERROR(merge_word(word, out));
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.map.size() >= kCacheShardCapacity) shard.map.clear();
  shard.map.emplace(std::string(word), std::vector<int32_t>(out.begin() + static_cast<long>(before), out.end()));
  return Status::ok();
}

namespace {

struct Symbol {
  int32_t c;
  int32_t prev;
  int32_t next;
  int32_t len;  // bytes; 0 once merged into its left neighbour
};

struct Merge {
  uint32_t rank;
  int32_t pos;
  int32_t new_id;
};

// Lowest rank first, then leftmost: the order in which HF's BinaryHeap pops merges.
struct MergeAfter {
  bool operator()(const Merge& a, const Merge& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

}  // namespace

Status BpeModel::merge_word(std::string_view w, std::vector<int32_t>& out) const {
  std::vector<Symbol> symbols;
  symbols.reserve(w.size());
  auto add = [&symbols](int32_t id, size_t len) {
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back(Symbol{id, n - 1, n + 1, static_cast<int32_t>(len)});
  };
  int32_t unk = -1;  // pending unknown token id (-1: none) and its byte length
  size_t unk_len = 0;
  for (size_t i = 0; i < w.size();) {
    const size_t n = std::min(utf8_char_length(static_cast<unsigned char>(w[i])), w.size() - i);
    const std::string_view ch = w.substr(i, n);
    const bool first = i == 0;
    i += n;
    const bool last = i >= w.size();
    const int32_t id = char_id(ch, first, last);
    if (id >= 0) {
      if (unk >= 0) {
        add(unk, unk_len);
        unk = -1;
      }
      add(id, n);
      continue;
    }
    if (opt_.byte_fallback) {
      // The bytes of the whole symbol (prefix and suffix included) must all exist.
      std::string s;
      if (!first) s.append(opt_.continuing_subword_prefix);
      s.append(ch);
      if (last) s.append(opt_.end_of_word_suffix);
      bool ok = true;
      for (unsigned char b : s) ok = ok && byte_ids_[b] >= 0;
      if (ok) {
        // As in HF, a pending unknown token is not flushed before the bytes.
        for (unsigned char b : s) add(byte_ids_[b], 1);
        continue;
      }
    }
    if (unk_id_) {
      if (unk >= 0 && opt_.fuse_unk) {
        unk_len += n;
      } else {
        if (unk >= 0) add(unk, unk_len);
        unk = *unk_id_;
        unk_len = n;
      }
    }
  }
  if (unk >= 0) add(unk, unk_len);
  if (symbols.empty()) return Status::ok();
  symbols.back().next = -1;

  std::vector<Merge> heap;
  heap.reserve(symbols.size());
  auto pair_key = [](int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const MergeValue* m = merges_.find(pair_key(symbols[i].c, symbols[i + 1].c)))
      heap.push_back(Merge{m->rank, static_cast<int32_t>(i), m->new_id});
  }
  std::make_heap(heap.begin(), heap.end(), MergeAfter{});
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), MergeAfter{});
    const Merge top = heap.back();
    heap.pop_back();
    Symbol& cur = symbols[static_cast<size_t>(top.pos)];
    if (cur.len == 0 || cur.next == -1) continue;
    const int32_t next_pos = cur.next;
    const Symbol right = symbols[static_cast<size_t>(next_pos)];
    const MergeValue* still = merges_.find(pair_key(cur.c, right.c));
    if (still == nullptr || still->new_id != top.new_id) continue;  // stale entry
    cur.c = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    symbols[static_cast<size_t>(next_pos)].len = 0;
    if (right.next >= 0 && static_cast<size_t>(right.next) < symbols.size())
      symbols[static_cast<size_t>(right.next)].prev = top.pos;
    if (cur.prev >= 0) {
      const Symbol& prev = symbols[static_cast<size_t>(cur.prev)];
      if (const MergeValue* m = merges_.find(pair_key(prev.c, cur.c))) {
        heap.push_back(Merge{m->rank, cur.prev, m->new_id});
        std::push_heap(heap.begin(), heap.end(), MergeAfter{});
      }
    }
    if (cur.next >= 0) {
      const Symbol& nx = symbols[static_cast<size_t>(cur.next)];
      if (const MergeValue* m = merges_.find(pair_key(cur.c, nx.c))) {
        heap.push_back(Merge{m->rank, top.pos, m->new_id});
        std::push_heap(heap.begin(), heap.end(), MergeAfter{});
      }
    }
  }
  for (const Symbol& s : symbols)
    if (s.len != 0) out.push_back(s.c);
  return Status::ok();
}

}  // namespace kiln::text
