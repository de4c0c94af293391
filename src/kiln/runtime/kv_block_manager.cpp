#include "kiln/runtime/kv_block_manager.h"

#include <algorithm>

#include "kiln/core/str.h"

namespace kiln::runtime {
namespace {

uint64_t mix64(uint64_t x) {
  // splitmix64's finaliser: every input bit reaches every output bit.
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

Result<KvBlockManager> KvBlockManager::create(const KvBlockManagerOptions& options) {
  if (options.num_blocks <= 0) {
    return invalid_argument(str_cat("KV cache: num_blocks must be positive, got ", options.num_blocks));
  }
  if (options.block_size <= 0) {
    return invalid_argument(str_cat("KV cache: block_size must be positive, got ", options.block_size));
  }
  KvBlockManager m;
  m.block_size_ = options.block_size;
  m.enable_prefix_cache_ = options.enable_prefix_cache;
  m.root_hash_ = mix64(options.cache_salt ^ mix64(static_cast<uint64_t>(options.block_size)));
  m.blocks_.resize(static_cast<size_t>(options.num_blocks));
  m.free_.reserve(static_cast<size_t>(options.num_blocks));
  // Block 0 is handed out first: plans are easier to read in tests and logs.
  for (int32_t b = options.num_blocks - 1; b >= 0; --b) m.free_.push_back(b);
  return m;
}

uint64_t KvBlockManager::block_hash(uint64_t parent, std::span<const int32_t> block_tokens) const {
  uint64_t h = mix64(parent ^ 0x6a09e667f3bcc908ull);
  for (int32_t t : block_tokens) h = mix64(h ^ static_cast<uint32_t>(t));
  return mix64(h ^ static_cast<uint64_t>(block_tokens.size()));
}

void KvBlockManager::extend_block_hashes(std::span<const int32_t> tokens,
                                         std::vector<uint64_t>* hashes) const {
  const size_t full = tokens.size() / static_cast<size_t>(block_size_);
  const size_t bs = static_cast<size_t>(block_size_);
  for (size_t i = hashes->size(); i < full; ++i) {
    const uint64_t parent = i == 0 ? root_hash_ : (*hashes)[i - 1];
    hashes->push_back(block_hash(parent, tokens.subspan(i * bs, bs)));
  }
}

std::vector<int32_t> KvBlockManager::find_cached_prefix(std::span<const uint64_t> hashes,
                                                        std::span<const int32_t> tokens,
                                                        int32_t max_blocks) const {
  std::vector<int32_t> hit;
  if (!enable_prefix_cache_) return hit;
  const size_t bs = static_cast<size_t>(block_size_);
  const size_t limit = std::min(hashes.size(), static_cast<size_t>(std::max(max_blocks, 0)));
  for (size_t i = 0; i < limit && (i + 1) * bs <= tokens.size(); ++i) {
    auto it = by_hash_.find(hashes[i]);
    if (it == by_hash_.end()) break;
    const Block& blk = blocks_[static_cast<size_t>(it->second)];
    std::span<const int32_t> want = tokens.subspan(i * bs, bs);
    if (!std::equal(want.begin(), want.end(), blk.tokens.begin(), blk.tokens.end())) break;
    hit.push_back(it->second);
  }
  return hit;
}

bool KvBlockManager::can_allocate(std::span<const int32_t> hits, int32_t num_new) const {
  int32_t leaving_lru = 0;
  for (int32_t b : hits) {
    if (blocks_[static_cast<size_t>(b)].ref_count == 0) ++leaving_lru;
  }
  return num_new <= num_available() - leaving_lru;
}

void KvBlockManager::acquire(std::span<const int32_t> blocks) {
  for (int32_t b : blocks) {
    Block& blk = blocks_[static_cast<size_t>(b)];
    if (blk.ref_count == 0 && blk.in_lru) lru_remove(b);
    ++blk.ref_count;
  }
}

int32_t KvBlockManager::take_block() {
  if (!free_.empty()) {
    const int32_t b = free_.back();
    free_.pop_back();
    return b;
  }
  const int32_t b = lru_head_;
  lru_remove(b);
  Block& blk = blocks_[static_cast<size_t>(b)];
  by_hash_.erase(blk.hash);
  blk.has_hash = false;
  blk.hash = 0;
  blk.tokens.clear();
  ++num_evictions_;
  return b;
}

Status KvBlockManager::allocate(int32_t n, std::vector<int32_t>* out) {
  if (n < 0 || n > num_available()) {
    return resource_exhausted(str_cat("KV cache: ", n, " blocks wanted, ", num_available(),
                                      " available of ", num_blocks()));
  }
  for (int32_t i = 0; i < n; ++i) {
    const int32_t b = take_block();
    blocks_[static_cast<size_t>(b)].ref_count = 1;
    out->push_back(b);
  }
  return Status::ok();
}

void KvBlockManager::release(std::span<const int32_t> blocks) {
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
    Block& blk = blocks_[static_cast<size_t>(*it)];
    if (blk.ref_count <= 0) continue;  // never underflow; check_invariants reports misuse
    if (--blk.ref_count > 0) continue;
    if (blk.has_hash) {
      lru_push_back(*it);
    } else {
      free_.push_back(*it);
    }
  }
}

void KvBlockManager::cache_full_block(int32_t block, uint64_t hash, std::span<const int32_t> tokens) {
  if (!enable_prefix_cache_) return;
  Block& blk = blocks_[static_cast<size_t>(block)];
  if (blk.has_hash || by_hash_.count(hash) != 0) return;
  blk.has_hash = true;
  blk.hash = hash;
  blk.tokens.assign(tokens.begin(), tokens.end());
  by_hash_.emplace(hash, block);
  // A block cached while unreferenced would be invisible to eviction; callers cache only blocks
  // they hold, but keep the states exact regardless.
  if (blk.ref_count == 0) {
    free_.erase(std::find(free_.begin(), free_.end(), block));
    lru_push_back(block);
  }
}

void KvBlockManager::lru_push_back(int32_t b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  blk.in_lru = true;
  blk.lru_prev = lru_tail_;
  blk.lru_next = -1;
  if (lru_tail_ >= 0) {
    blocks_[static_cast<size_t>(lru_tail_)].lru_next = b;
  } else {
    lru_head_ = b;
  }
  lru_tail_ = b;
  ++lru_size_;
}

void KvBlockManager::lru_remove(int32_t b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  if (blk.lru_prev >= 0) {
    blocks_[static_cast<size_t>(blk.lru_prev)].lru_next = blk.lru_next;
  } else {
    lru_head_ = blk.lru_next;
  }
  if (blk.lru_next >= 0) {
    blocks_[static_cast<size_t>(blk.lru_next)].lru_prev = blk.lru_prev;
  } else {
    lru_tail_ = blk.lru_prev;
  }
  blk.lru_prev = blk.lru_next = -1;
  blk.in_lru = false;
  --lru_size_;
}

Status KvBlockManager::check_invariants() const {
  const int32_t n = num_blocks();
  std::vector<int> seen(static_cast<size_t>(n), 0);
  for (int32_t b : free_) {
    if (b < 0 || b >= n) return internal_error(str_cat("KV cache: free list holds block ", b));
    const Block& blk = blocks_[static_cast<size_t>(b)];
    if (seen[static_cast<size_t>(b)]++ != 0) return internal_error(str_cat("KV cache: block ", b, " twice in the free list"));
    if (blk.ref_count != 0 || blk.has_hash || blk.in_lru) {
      return internal_error(str_cat("KV cache: free block ", b, " has ref_count ", blk.ref_count,
                                    blk.has_hash ? " and a hash" : ""));
    }
  }
  int32_t walked = 0;
  int32_t prev = -1;
  for (int32_t b = lru_head_; b >= 0; b = blocks_[static_cast<size_t>(b)].lru_next) {
    const Block& blk = blocks_[static_cast<size_t>(b)];
    if (++walked > n) return internal_error("KV cache: the LRU list has a cycle");
    if (seen[static_cast<size_t>(b)]++ != 0) return internal_error(str_cat("KV cache: block ", b, " in two lists"));
    if (blk.lru_prev != prev || !blk.in_lru) return internal_error(str_cat("KV cache: LRU links broken at block ", b));
    if (blk.ref_count != 0 || !blk.has_hash) {
      return internal_error(str_cat("KV cache: LRU block ", b, " has ref_count ", blk.ref_count,
                                    blk.has_hash ? "" : " and no hash"));
    }
    prev = b;
  }
  if (prev != lru_tail_ || walked != lru_size_) return internal_error("KV cache: LRU tail or size wrong");
  int32_t used = 0;
  for (int32_t b = 0; b < n; ++b) {
    const Block& blk = blocks_[static_cast<size_t>(b)];
    if (blk.ref_count < 0) return internal_error(str_cat("KV cache: block ", b, " has negative ref_count"));
    if (blk.ref_count > 0) {
      ++used;
      if (seen[static_cast<size_t>(b)] != 0) return internal_error(str_cat("KV cache: used block ", b, " is also listed free"));
    } else if (seen[static_cast<size_t>(b)] != 1) {
      return internal_error(str_cat("KV cache: unreferenced block ", b, " is in no list"));
    }
    if (blk.has_hash) {
      auto it = by_hash_.find(blk.hash);
      if (it == by_hash_.end() || it->second != b) {
        return internal_error(str_cat("KV cache: cached block ", b, " missing from the hash map"));
      }
    }
  }
  for (const auto& [hash, b] : by_hash_) {
    if (!blocks_[static_cast<size_t>(b)].has_hash || blocks_[static_cast<size_t>(b)].hash != hash) {
      return internal_error(str_cat("KV cache: hash map points at block ", b, " which does not hold it"));
    }
  }
  if (used + num_free() + num_cached() != n) {
    return internal_error(str_cat("KV cache: used ", used, " + free ", num_free(), " + cached ",
                                  num_cached(), " != total ", n));
  }
  return Status::ok();
}

}  // namespace kiln::runtime
