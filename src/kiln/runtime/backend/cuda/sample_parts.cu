// The sampler's kernels over slices of each row's vocabulary (sample_select.cuh's Slice), run
// before sample.cu's one block per row: each slice's best token and draw weight, a top-k row's
// candidates, and a top-p row's radix selects.
#include "kiln/runtime/backend/cuda/sample_select.cuh"

namespace kiln::runtime::cuda {
namespace {

// Each slice's best token. better() is a total order, so the best of the parts is the token a
// single block would pick, and their best value is the row's max.
__global__ void __launch_bounds__(kThreads) argmax_parts_kernel(SampleLaunch a) {
  __shared__ Shared sh;
  const int64_t row = blockIdx.x, n = a.vocab;
  if (!sliced(a.params[row]) && !(a.topp != nullptr && sample_top_p_slices(a.params[row]))) return;  // uniform
  const Slice sl(a, static_cast<int>(blockIdx.y));
  const int64_t b = sl.begin, e = sl.end;
  const float* l = a.logits + row * n + b;
  const int id = e > b ? block_argmax(l, e - b, [](int64_t, float) { return true; }, sh) : -1;
  if (threadIdx.x == 0) {
    SamplePart& out = a.parts[row * a.num_parts + blockIdx.y];
    out.value = id >= 0 ? l[id] : -INFINITY;
    out.id = id >= 0 ? static_cast<int32_t>(b + id) : -1;
  }
}

// Each slice's total weight for an untruncated draw (after argmax_parts_kernel).
__global__ void __launch_bounds__(kThreads) mass_parts_kernel(SampleLaunch a) {
  __shared__ Shared sh;
  const int64_t row = blockIdx.x, n = a.vocab;
  const SampleRowParams p = a.params[row];
  if (!sample_untruncated_draw(p)) return;  // uniform over the block
  const float mx = parts_max(a, row);
  const Slice sl(a, static_cast<int>(blockIdx.y));
  const float* l = a.logits + row * n;
  u64 total = 0;
  if (mx > -INFINITY) {
    const DrawWeights dw(p, mx);
    for (int64_t i = sl.begin + threadIdx.x; i < sl.end; i += blockDim.x) {
      const float x = l[i];
      if (dw.kept(x)) total += dw.mass(x);
    }
  }
  total = block_sum_u64(total, sh);
  if (threadIdx.x == 0) a.parts[row * a.num_parts + blockIdx.y].mass = total;
}

// A top-k row's candidates from one slice (SampleTopKSlice): the slice's k-th best key by the same
// radix select a whole row uses, then every finite token at least that good, in id order. The
// row's k-th best key is at least every slice's, so the candidates hold every token the row keeps.
__global__ void __launch_bounds__(kThreads) topk_parts_kernel(SampleLaunch a) {
  __shared__ Shared sh;
  const int64_t row = blockIdx.x, n = a.vocab;
  const SampleRowParams p = a.params[row];
  if (!sample_top_k_candidates(p)) return;  // uniform over the block
  const Slice sl(a, static_cast<int>(blockIdx.y));
  const int64_t b = sl.begin, len = sl.end - sl.begin;
  const float* l = a.logits + row * n + b;
  const uint32_t k1 = top_k_key(l, len, p.top_k, sh);
  const auto kept = [=](float x) { return x > -INFINITY && order_key(x) >= k1; };
  const int64_t chunk = (len + blockDim.x - 1) / blockDim.x;
  const int64_t tb = min(len, static_cast<int64_t>(threadIdx.x) * chunk), te = min(len, tb + chunk);
  u64 local = 0;
  for (int64_t i = tb; i < te; ++i) local += kept(l[i]) ? 1 : 0;
  const u64 before = block_exclusive_scan(local, sh);
  const u64 total = block_sum_u64(local, sh);
  SampleTopKSlice& out = a.topk[row * a.num_parts + blockIdx.y];
  if (total > static_cast<u64>(kTopKSliceCandidates)) {
    if (threadIdx.x == 0) out.count = -1;
    return;
  }
  int at = static_cast<int>(before);
  for (int64_t i = tb; i < te; ++i) {
    const float x = l[i];
    if (!kept(x)) continue;
    out.values[at] = x;
    out.ids[at] = static_cast<int32_t>(b + i);
    ++at;
  }
  if (threadIdx.x == 0) out.count = static_cast<int32_t>(total);
}

// A top-p row's two radix selects (sample_top_p_slices) over its slices, one pass per launch
// (after argmax_parts_kernel): stage 0 finds the last token of top-p's set, stage 1 draws from the
// set. Each slice adds its histogram to the row's (SampleTopPState, zero before stage 0), and the
// last slice to finish makes the pass's choice exactly as select_better's one block would, so the
// token is the one-block token. After the fourth pass it scans the tokens of the chosen key in id
// order over the whole row (usually one token).
__global__ void __launch_bounds__(kThreads) topp_pass_kernel(SampleLaunch a, int stage, int pass) {
  __shared__ Shared sh;
  __shared__ int last;
  const int64_t row = blockIdx.x, n = a.vocab;
  const SampleRowParams p = a.params[row];
  if (!sample_top_p_slices(p)) return;  // uniform over the block
  const float mx = parts_max(a, row);
  if (!(mx > -INFINITY)) return;  // sample_kernel takes the raw argmax
  SampleTopPState& st = a.topp[row];
  const float* l = a.logits + row * n;
  const DrawWeights dw(p, mx);
  const TruncatedKept kept = stage == 0 ? TruncatedKept{dw, 0, 0, INT_MAX}
                                        : TruncatedKept{dw, 0, st.boundary_key, st.boundary_id};
  // Stage 0 selects among the finite tokens, before min-p; stage 1 among the kept ones.
  const auto pred = [=](int64_t i, float x) { return stage == 0 ? x > -INFINITY : kept(i, x); };
  const auto mass = [=](float x) -> u64 { return dw.mass(x); };
  const int shift = 24 - 8 * pass;
  const uint32_t mask = pass == 0 ? 0u : ~0u << (32 - 8 * pass);
  const uint32_t prefix = pass == 0 ? 0u : st.prefix;

  const Slice sl(a, static_cast<int>(blockIdx.y));
  radix_histogram(
      l + sl.begin, sl.end - sl.begin, [=](int64_t i, float x) { return pred(sl.begin + i, x); }, mass, prefix, mask,
      shift, sh);
  for (int bin = threadIdx.x; bin < 256; bin += blockDim.x) {
    if (sh.hist[bin] != 0) atomicAdd(reinterpret_cast<u64*>(&st.hist[bin]), sh.hist[bin]);
  }
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(&st.arrived, 1u) == static_cast<unsigned>(a.num_parts - 1);
  __syncthreads();
  if (!last) return;
  __threadfence();
  for (int bin = threadIdx.x; bin < 256; bin += blockDim.x) {
    sh.hist[bin] = __ldcg(reinterpret_cast<const u64*>(&st.hist[bin]));
    st.hist[bin] = 0;  // for the next pass
  }
  __syncthreads();
  if (threadIdx.x < 32) {
    u64 remaining = st.remaining;
    bool strict = st.strict != 0;
    if (pass == 0) {  // the pass's histogram holds every weight the select ranges over
      u64 total = 0;
      for (int bin = threadIdx.x; bin < 256; bin += 32) total += sh.hist[bin];
      total = warp_sum_u64(total);
      remaining = stage == 0 ? top_p_target(p, total) : draw_target(p, total);
      strict = stage == 1;
    }
    const RadixChoice c = choose_bin(sh.hist, prefix, shift, remaining, strict);
    if (threadIdx.x == 0) {
      st.prefix = c.prefix;
      st.remaining = c.remaining;
      st.strict = c.strict ? 1 : 0;
      st.arrived = 0;
      sh.sel_prefix = c.prefix;
      sh.sel_remaining = c.remaining;
      sh.sel_strict = c.strict ? 1 : 0;
    }
  }
  __syncthreads();
  if (pass < 3) return;
  const uint32_t key = sh.sel_prefix;
  const int id = ordered_scan(
      l, n, [=](int64_t i, float x) { return order_key(x) == key && pred(i, x); }, mass, sh.sel_remaining,
      sh.sel_strict != 0, sh);
  if (threadIdx.x == 0) {
    if (stage == 0) {
      st.boundary_key = key;
      st.boundary_id = id;
    } else {
      st.token = id;
    }
  }
}
}  // namespace

int sample_parts(int64_t m, bool draws) {
  constexpr int kMaxParts = 32;  // one per lane of best_part and draw_from_parts
  if (m < 1) return 0;
  // Argmax rows alone: up to 8 rows (H100, greedy decode of Llama-3.2-1B and Qwen3-0.6B: 1-2%
  // faster at one row, 2% at eight); at 64 rows the extra kernel cost about 1%.
  if (!draws) return m <= 8 ? kMaxParts : 0;
  // A draw takes one block about 120 us over a 128k vocabulary: slice rows until about 512
  // blocks share the work.
  if (m > 256) return 0;
  return static_cast<int>(std::clamp<int64_t>((512 + m - 1) / m, 2, kMaxParts));
}
Status launch_sample_parts(const SampleLaunch& a, Stream stream) {
  if (a.parts == nullptr || a.num_parts > 32) return invalid_argument("sample: parts need a buffer, 32 at most");
  const dim3 grid(static_cast<unsigned>(a.m), static_cast<unsigned>(a.num_parts));
  argmax_parts_kernel<<<grid, kThreads, 0, stream>>>(a);
  KILN_RETURN_IF_ERROR(launch_status("argmax_parts_kernel"));
  if (a.draw_parts) {
    mass_parts_kernel<<<grid, kThreads, 0, stream>>>(a);
    KILN_RETURN_IF_ERROR(launch_status("mass_parts_kernel"));
  }
  if (a.topk != nullptr) {
    topk_parts_kernel<<<grid, kThreads, 0, stream>>>(a);
    KILN_RETURN_IF_ERROR(launch_status("topk_parts_kernel"));
  }
  if (a.topp != nullptr) {
    for (int stage = 0; stage < 2; ++stage) {
      for (int pass = 0; pass < 4; ++pass) {
        topp_pass_kernel<<<grid, kThreads, 0, stream>>>(a, stage, pass);
        KILN_RETURN_IF_ERROR(launch_status("topp_pass_kernel"));
      }
    }
  }
  return Status::ok();
}

}  // namespace kiln::runtime::cuda
