// Host-side bookkeeping of the paged KV cache's blocks (DESIGN.md §3): reference counts, a free
// list and the prefix cache. The scheduler owns one per model; the engine only ever sees the
// block ids it hands out, inside a StepPlan.
//
// Every block is in exactly one of three states:
//   used    ref_count > 0 (held by one or more sequences; may also be in the prefix cache),
//   cached  ref_count == 0 and it holds a cached full block: kept in an LRU list so that a later
//           request with the same prefix can take it back,
//   free    ref_count == 0 and holds nothing worth keeping.
// New blocks come from the free list first; only when it is empty is the least recently released
// cached block evicted (its hash dropped) and handed out (vLLM v1's design).
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::runtime {

struct KvBlockManagerOptions {
  int32_t num_blocks = 0;
  int32_t block_size = 16;
  bool enable_prefix_cache = true;
  // Mixed into every block hash so that two model revisions never share cached KV.
  uint64_t cache_salt = 0;
};

class KvBlockManager {
 public:
  static Result<KvBlockManager> create(const KvBlockManagerOptions& options);

  int32_t num_blocks() const { return static_cast<int32_t>(blocks_.size()); }
  int32_t block_size() const { return block_size_; }
  bool prefix_cache_enabled() const { return enable_prefix_cache_; }

  // --- Block hashes. A full block's hash chains over its parent's hash, its token ids and the
  // salt, so equal hashes mean equal whole prefixes (up to 64-bit collisions, which lookups guard
  // against by also comparing the block's tokens).
  uint64_t root_hash() const { return root_hash_; }
  uint64_t block_hash(uint64_t parent, std::span<const int32_t> block_tokens) const;
  // Appends to `hashes` the hash of every full block of `tokens` that `hashes` does not cover yet.
  void extend_block_hashes(std::span<const int32_t> tokens, std::vector<uint64_t>* hashes) const;

  // The longest run of cached blocks for the first blocks of `tokens` (hashes from
  // extend_block_hashes), at most `max_blocks` long. Looks only; takes no reference.
  std::vector<int32_t> find_cached_prefix(std::span<const uint64_t> hashes,
                                          std::span<const int32_t> tokens,
                                          int32_t max_blocks) const;

  // --- Allocation.
  // Blocks a new allocation can get: free plus cached-but-unreferenced.
  int32_t num_available() const { return num_free() + num_cached(); }
  // Whether `num_new` fresh blocks can be had once `hits` (from find_cached_prefix) are acquired:
  // an unreferenced hit leaves the LRU list when acquired, so it stops counting as available.
  bool can_allocate(std::span<const int32_t> hits, int32_t num_new) const;
  // Takes one reference on each block (a cached block leaves the LRU list).
  void acquire(std::span<const int32_t> blocks);
  // Appends `n` fresh blocks (reference count 1) to `out`; fails and changes nothing when fewer
  // than `n` are available.
  Status allocate(int32_t n, std::vector<int32_t>* out);
  // Drops one reference on each block, last block first, so that of a released sequence the tail
  // blocks are evicted before its head (they are the least likely to be shared).
  void release(std::span<const int32_t> blocks);
  // Records that `block` now holds the full block with `hash` and `tokens`, so that later
  // requests can share it. No effect when caching is off, when the block is already cached, or
  // when another block already holds that hash (the first one stays the shared copy).
  void cache_full_block(int32_t block, uint64_t hash, std::span<const int32_t> tokens);

  // --- Accounting.
  int32_t num_free() const { return static_cast<int32_t>(free_.size()); }
  int32_t num_cached() const { return lru_size_; }
  int32_t num_used() const { return num_blocks() - num_free() - num_cached(); }
  int32_t ref_count(int32_t block) const { return blocks_[static_cast<size_t>(block)].ref_count; }
  bool is_cached(int32_t block) const { return blocks_[static_cast<size_t>(block)].has_hash; }
  int64_t num_evictions() const { return num_evictions_; }
  // Checks the bookkeeping: every block in exactly one state, the LRU list and hash map agree.
  Status check_invariants() const;

 private:
  struct Block {
    int32_t ref_count = 0;
    bool has_hash = false;
    uint64_t hash = 0;
    std::vector<int32_t> tokens;  // the cached block's token ids, to verify hash hits
    int32_t lru_prev = -1, lru_next = -1;
    bool in_lru = false;
  };

  KvBlockManager() = default;
  void lru_push_back(int32_t b);
  void lru_remove(int32_t b);
  int32_t take_block();  // from the free list, else the LRU head (evicted); caller checked room

  int32_t block_size_ = 16;
  bool enable_prefix_cache_ = true;
  uint64_t root_hash_ = 0;
  std::vector<Block> blocks_;
  std::vector<int32_t> free_;  // a stack; back() is handed out next
  int32_t lru_head_ = -1, lru_tail_ = -1, lru_size_ = 0;
  std::unordered_map<uint64_t, int32_t> by_hash_;
  int64_t num_evictions_ = 0;
};

}  // namespace kiln::runtime
