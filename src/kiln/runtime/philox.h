// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
// counter-based generator, so the random numbers of a sampled token are a pure function of
// (seed, position) and never of the batch or of what ran before. The same header compiles in
// CUDA device code, so the GPU sampler draws the same numbers.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define KILN_HOST_DEVICE __host__ __device__
#else
#define KILN_HOST_DEVICE
#endif

namespace kiln::runtime {

struct Philox4x32 {
  uint32_t v[4];
};

KILN_HOST_DEVICE inline void philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}

// Ten rounds of Philox4x32 over `counter` with `key`.
KILN_HOST_DEVICE inline Philox4x32 philox4x32_10(Philox4x32 counter, uint32_t key0, uint32_t key1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(kMul0, counter.v[0], &hi0, &lo0);
    philox_mulhilo(kMul1, counter.v[2], &hi1, &lo1);
    Philox4x32 next;
    next.v[0] = hi1 ^ counter.v[1] ^ key0;
    next.v[1] = lo1;
    next.v[2] = hi0 ^ counter.v[3] ^ key1;
    next.v[3] = lo0;
    counter = next;
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return counter;
}

// A uniform float in [0, 1) from the top 24 bits of a 32-bit word (exact in f32).
KILN_HOST_DEVICE inline float philox_uniform(uint32_t bits) {
  return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
}

// The four 32-bit words of sequence stream `seed` at token `position`; `draw` selects further
// blocks when one sampling needs more than four words.
KILN_HOST_DEVICE inline Philox4x32 philox_at(uint64_t seed, int64_t position, uint32_t draw = 0) {
  Philox4x32 counter;
  counter.v[0] = static_cast<uint32_t>(static_cast<uint64_t>(position));
  counter.v[1] = static_cast<uint32_t>(static_cast<uint64_t>(position) >> 32);
  counter.v[2] = draw;
  counter.v[3] = 0x6b696c6eu;  // "kiln": keeps this use's stream apart from any other
  return philox4x32_10(counter, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

}  // namespace kiln::runtime
