#include "kiln/runtime/kv_block_manager.h"

#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <random>

namespace kiln::runtime {
namespace {

KvBlockManager make(int32_t num_blocks, int32_t block_size = 4, bool cache = true, uint64_t salt = 7) {
  KvBlockManagerOptions o;
  o.num_blocks = num_blocks;
  o.block_size = block_size;
  o.enable_prefix_cache = cache;
  o.cache_salt = salt;
  auto m = KvBlockManager::create(o);
  EXPECT_TRUE(m.is_ok()) << m.status().to_string();
  return std::move(m).value();
}

std::vector<int32_t> iota_tokens(int32_t n, int32_t start = 100) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

// Caches the full blocks of `tokens` held in `blocks`, as the scheduler does after a step.
void cache_all(KvBlockManager& m, const std::vector<int32_t>& blocks, const std::vector<int32_t>& tokens) {
  std::vector<uint64_t> hashes;
  m.extend_block_hashes(tokens, &hashes);
  const size_t bs = static_cast<size_t>(m.block_size());
  for (size_t i = 0; i < hashes.size() && i < blocks.size(); ++i) {
    m.cache_full_block(blocks[i], hashes[i], std::span<const int32_t>(tokens).subspan(i * bs, bs));
  }
}

TEST(KvBlockManager, RejectsBadOptions) {
  KvBlockManagerOptions o;
  o.num_blocks = 0;
  auto a = KvBlockManager::create(o);
  ASSERT_FALSE(a.is_ok());
  EXPECT_NE(a.status().message().find("num_blocks"), std::string::npos);
  o.num_blocks = 4;
  o.block_size = 0;
  auto b = KvBlockManager::create(o);
  ASSERT_FALSE(b.is_ok());
  EXPECT_NE(b.status().message().find("block_size"), std::string::npos);
}

TEST(KvBlockManager, AllocatesAndReleasesWithRefCounts) {
  KvBlockManager m = make(6);
  std::vector<int32_t> a;
  ASSERT_TRUE(m.allocate(4, &a).is_ok());
  EXPECT_EQ(a, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(m.num_used(), 4);
  EXPECT_EQ(m.num_free(), 2);
  std::vector<int32_t> b;
  Status s = m.allocate(3, &b);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(m.num_free(), 2);  // a failed allocation changes nothing
  m.acquire(std::span<const int32_t>(a).first(2));
  EXPECT_EQ(m.ref_count(0), 2);
  EXPECT_EQ(m.ref_count(3), 1);
  m.release(a);
  EXPECT_EQ(m.ref_count(0), 1);
  EXPECT_EQ(m.num_used(), 2);
  EXPECT_EQ(m.num_free(), 4);
  m.release(std::span<const int32_t>(a).first(2));
  EXPECT_EQ(m.num_used(), 0);
  EXPECT_EQ(m.num_free(), 6);
  EXPECT_TRUE(m.check_invariants().is_ok());
}

TEST(KvBlockManager, HashesChainOverParentTokensAndSalt) {
  KvBlockManager m = make(4, 4, true, 1);
  KvBlockManager other_revision = make(4, 4, true, 2);
  const std::vector<int32_t> t = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<uint64_t> h;
  m.extend_block_hashes(t, &h);
  ASSERT_EQ(h.size(), 2u);  // the 9th token is in a partial block, which is never hashed
  EXPECT_EQ(h[0], m.block_hash(m.root_hash(), std::span<const int32_t>(t).first(4)));
  EXPECT_EQ(h[1], m.block_hash(h[0], std::span<const int32_t>(t).subspan(4, 4)));
  // Same block tokens after a different first block: a different hash.
  const std::vector<int32_t> u = {9, 2, 3, 4, 5, 6, 7, 8};
  std::vector<uint64_t> hu;
  m.extend_block_hashes(u, &hu);
  EXPECT_NE(hu[0], h[0]);
  EXPECT_NE(hu[1], h[1]);
  std::vector<uint64_t> ho;
  other_revision.extend_block_hashes(t, &ho);
  EXPECT_NE(ho[0], h[0]);
  // Extending is incremental: known hashes are kept, new full blocks appended.
  std::vector<int32_t> longer = t;
  for (int i = 0; i < 3; ++i) longer.push_back(50 + i);
  m.extend_block_hashes(longer, &h);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[2], m.block_hash(h[1], std::span<const int32_t>(longer).subspan(8, 4)));
}

TEST(KvBlockManager, ReusesCachedPrefixAfterRelease) {
  KvBlockManager m = make(8);
  const std::vector<int32_t> prompt = iota_tokens(10);  // 2 full blocks + 2 tokens
  std::vector<int32_t> a;
  ASSERT_TRUE(m.allocate(3, &a).is_ok());
  cache_all(m, a, prompt);
  m.release(a);
  EXPECT_EQ(m.num_cached(), 2);
  EXPECT_EQ(m.num_free(), 6);
  EXPECT_EQ(m.num_used(), 0);
  EXPECT_TRUE(m.check_invariants().is_ok());

  // A second request sharing the first 9 tokens hits the first two blocks.
  std::vector<int32_t> second = iota_tokens(9);
  second.push_back(7);
  second.push_back(8);
  std::vector<uint64_t> h;
  m.extend_block_hashes(second, &h);
  std::vector<int32_t> hit = m.find_cached_prefix(h, second, 10);
  EXPECT_EQ(hit, (std::vector<int32_t>{a[0], a[1]}));
  EXPECT_EQ(m.find_cached_prefix(h, second, 1).size(), 1u);  // capped
  // Two hits leave the LRU list when taken: 6 free blocks remain for new ones, not 8.
  EXPECT_TRUE(m.can_allocate(hit, 6));
  EXPECT_FALSE(m.can_allocate(hit, 7));
  m.acquire(hit);
  EXPECT_EQ(m.num_cached(), 0);
  EXPECT_EQ(m.num_used(), 2);
  EXPECT_EQ(m.ref_count(a[0]), 1);
  EXPECT_TRUE(m.is_cached(a[0]));
  EXPECT_TRUE(m.check_invariants().is_ok());
  // A prompt that differs in its first block hits nothing.
  std::vector<int32_t> other = second;
  other[0] = 999;
  std::vector<uint64_t> ho;
  m.extend_block_hashes(other, &ho);
  EXPECT_TRUE(m.find_cached_prefix(ho, other, 10).empty());
}

TEST(KvBlockManager, EvictsLeastRecentlyReleasedOnlyWhenFreeListIsEmpty) {
  KvBlockManager m = make(4, 2);
  const std::vector<int32_t> p1 = {1, 2, 3, 4};  // 2 full blocks
  const std::vector<int32_t> p2 = {5, 6};        // 1 full block
  std::vector<int32_t> a, b;
  ASSERT_TRUE(m.allocate(2, &a).is_ok());
  ASSERT_TRUE(m.allocate(1, &b).is_ok());
  cache_all(m, a, p1);
  cache_all(m, b, p2);
  m.release(a);  // released last block first: LRU order a[1], a[0]
  m.release(b);  // then b[0]
  EXPECT_EQ(m.num_cached(), 3);
  EXPECT_EQ(m.num_free(), 1);

  std::vector<int32_t> c;
  ASSERT_TRUE(m.allocate(1, &c).is_ok());
  EXPECT_EQ(c[0], 3);  // the never-used block first: nothing evicted
  EXPECT_EQ(m.num_evictions(), 0);
  EXPECT_EQ(m.num_cached(), 3);
  ASSERT_TRUE(m.allocate(1, &c).is_ok());
  EXPECT_EQ(c[1], a[1]);  // then the LRU head: the tail block of the first prompt
  EXPECT_EQ(m.num_evictions(), 1);
  EXPECT_FALSE(m.is_cached(a[1]));
  // The first prompt's head block is still there; its second block is gone.
  std::vector<uint64_t> h;
  m.extend_block_hashes(p1, &h);
  EXPECT_EQ(m.find_cached_prefix(h, p1, 2), (std::vector<int32_t>{a[0]}));
  EXPECT_TRUE(m.check_invariants().is_ok());
}

TEST(KvBlockManager, TakingACachedBlockBackRefreshesItsRecency) {
  KvBlockManager m = make(2, 2);
  const std::vector<int32_t> p = {1, 2};
  const std::vector<int32_t> q = {3, 4};
  std::vector<int32_t> a, b;
  ASSERT_TRUE(m.allocate(1, &a).is_ok());
  ASSERT_TRUE(m.allocate(1, &b).is_ok());
  cache_all(m, a, p);
  cache_all(m, b, q);
  m.release(a);
  m.release(b);
  // p was released first, so it is older; using it again makes q the older one.
  std::vector<uint64_t> h;
  m.extend_block_hashes(p, &h);
  auto hit = m.find_cached_prefix(h, p, 1);
  ASSERT_EQ(hit.size(), 1u);
  m.acquire(hit);
  m.release(hit);
  std::vector<int32_t> c;
  ASSERT_TRUE(m.allocate(1, &c).is_ok());
  EXPECT_EQ(c[0], b[0]);
  EXPECT_TRUE(m.check_invariants().is_ok());
}

TEST(KvBlockManager, FirstCopyOfAHashStaysTheSharedOne) {
  KvBlockManager m = make(4);
  const std::vector<int32_t> p = iota_tokens(4);
  std::vector<int32_t> a, b;
  ASSERT_TRUE(m.allocate(1, &a).is_ok());
  ASSERT_TRUE(m.allocate(1, &b).is_ok());
  cache_all(m, a, p);
  cache_all(m, b, p);  // two requests computed the same block in one step
  EXPECT_TRUE(m.is_cached(a[0]));
  EXPECT_FALSE(m.is_cached(b[0]));
  m.release(b);
  EXPECT_EQ(m.num_free(), 3);  // the duplicate goes back to the free list
  m.release(a);
  EXPECT_EQ(m.num_cached(), 1);
  EXPECT_TRUE(m.check_invariants().is_ok());
}

TEST(KvBlockManager, NoPrefixCacheKeepsNothing) {
  KvBlockManager m = make(4, 4, false);
  const std::vector<int32_t> p = iota_tokens(8);
  std::vector<int32_t> a;
  ASSERT_TRUE(m.allocate(2, &a).is_ok());
  cache_all(m, a, p);
  EXPECT_FALSE(m.is_cached(a[0]));
  m.release(a);
  EXPECT_EQ(m.num_free(), 4);
  EXPECT_EQ(m.num_cached(), 0);
  std::vector<uint64_t> h;
  m.extend_block_hashes(p, &h);
  EXPECT_TRUE(m.find_cached_prefix(h, p, 2).empty());
}

// Random operations checked against a plain model of who holds what.
TEST(KvBlockManager, RandomOperationsKeepEveryInvariant) {
  std::mt19937 rng(1234);
  KvBlockManager m = make(24, 4);
  std::vector<std::vector<int32_t>> holders;       // each entry: one sequence's blocks
  std::vector<std::vector<int32_t>> holder_tokens;
  for (int iter = 0; iter < 3000; ++iter) {
    const int op = static_cast<int>(rng() % 3);
    if (op == 0 || holders.empty()) {
      // A new sequence: prompt from a small alphabet of prefixes, so hits happen.
      std::vector<int32_t> tokens;
      const int32_t len = 1 + static_cast<int32_t>(rng() % 20);
      const int32_t family = static_cast<int32_t>(rng() % 3);
      for (int32_t i = 0; i < len; ++i) tokens.push_back(i < 8 ? family * 10 + i : static_cast<int32_t>(rng() % 50));
      std::vector<uint64_t> h;
      m.extend_block_hashes(tokens, &h);
      auto hit = m.find_cached_prefix(h, tokens, (len - 1) / 4);
      const int32_t need = (len + 3) / 4 - static_cast<int32_t>(hit.size());
      if (!m.can_allocate(hit, need)) {
        std::vector<int32_t> probe;
        m.acquire(hit);
        EXPECT_FALSE(m.allocate(need, &probe).is_ok());
        m.release(hit);
        continue;
      }
      m.acquire(hit);
      std::vector<int32_t> blocks = hit;
      ASSERT_TRUE(m.allocate(need, &blocks).is_ok());
      for (size_t i = 0; i < hit.size(); ++i) {
        ASSERT_TRUE(m.is_cached(hit[i]));
      }
      cache_all(m, blocks, tokens);
      holders.push_back(blocks);
      holder_tokens.push_back(tokens);
    } else {
      const size_t i = rng() % holders.size();
      m.release(holders[i]);
      holders.erase(holders.begin() + static_cast<ptrdiff_t>(i));
      holder_tokens.erase(holder_tokens.begin() + static_cast<ptrdiff_t>(i));
    }
    ASSERT_TRUE(m.check_invariants().is_ok()) << m.check_invariants().message();
    std::map<int32_t, int32_t> refs;
    for (const auto& h : holders) {
      for (int32_t b : h) ++refs[b];
    }
    EXPECT_EQ(m.num_used(), static_cast<int32_t>(refs.size()));
    for (int32_t b = 0; b < m.num_blocks(); ++b) ASSERT_EQ(m.ref_count(b), refs[b]) << "block " << b;
    EXPECT_EQ(m.num_used() + m.num_free() + m.num_cached(), m.num_blocks());
  }
}

}  // namespace
}  // namespace kiln::runtime
