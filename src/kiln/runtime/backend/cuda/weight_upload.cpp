#include "kiln/runtime/backend/cuda/weight_upload.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "kiln/core/dtype.h"
#include "kiln/runtime/backend/cuda/cuda_status.h"
#include "kiln/runtime/backend/cuda/device.h"

namespace kiln::runtime::cuda {

namespace {

constexpr size_t kChunkElems = size_t{8} << 20;  // 16 MiB of bf16 per staging buffer

// A model load uploads hundreds of tensors: the pinned buffers are allocated once per loading
// thread and device, not per tensor (pinning costs milliseconds).
struct Staging {
  int device = -1;
  PinnedBuffer buffer[2];
  cudaEvent_t done[2] = {nullptr, nullptr};
  bool pending[2] = {false, false};
  Staging() = default;
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  ~Staging() {
    for (cudaEvent_t e : done) {
      if (e != nullptr) cudaEventDestroy(e);
    }
  }
};

Result<Staging*> staging_for(int device) {
  thread_local std::unique_ptr<Staging> cached;
  if (cached != nullptr && cached->device == device) return cached.get();
  cached.reset();
  auto s = std::make_unique<Staging>();
  s->device = device;
  for (int i = 0; i < 2; ++i) {
    KILN_ASSIGN_OR_RETURN(s->buffer[i], PinnedBuffer::alloc(kChunkElems * 2));
    KILN_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&s->done[i], cudaEventDisableTiming));
  }
  cached = std::move(s);
  return cached.get();
}

void to_bf16(const uint8_t* from, DType type, size_t n, uint16_t* to) {
  if (type == DType::kBF16) {
    std::memcpy(to, from, n * 2);
  } else if (type == DType::kF32) {
    for (size_t i = 0; i < n; ++i) {
      float f;
      std::memcpy(&f, from + 4 * i, 4);
      to[i] = f32_to_bf16(f);
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, from + 2 * i, 2);
      to[i] = f32_to_bf16(f16_to_f32(h));
    }
  }
}

Status copy_parts(Staging& s, cudaStream_t stream, std::span<const HostMatrix> parts, uint16_t* out) {
  int next = 0;
  for (const HostMatrix& p : parts) {
    const size_t count = static_cast<size_t>(p.rows * p.cols);
    const size_t esize = dtype_size(p.dtype);
    const auto* in = static_cast<const uint8_t*>(p.data);
    for (size_t done = 0; done < count;) {
      const size_t n = std::min(kChunkElems, count - done);
      const int b = next;
      next ^= 1;
      if (s.pending[b]) {
        s.pending[b] = false;
        KILN_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(s.done[b]));
      }
      uint16_t* stage = s.buffer[b].as<uint16_t>();
      to_bf16(in + done * esize, p.dtype, n, stage);
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out, stage, n * 2, cudaMemcpyHostToDevice, stream));
      KILN_CUDA_RETURN_IF_ERROR(cudaEventRecord(s.done[b], stream));
      s.pending[b] = true;
      out += n;
      done += n;
    }
  }
  return Status::ok();
}

}  // namespace

Status upload_bf16_parts(const DeviceContext& ctx, std::span<const HostMatrix> parts, void* dst) {
  KILN_CUDA_RETURN_IF_ERROR(cudaSetDevice(ctx.device.index));
  KILN_ASSIGN_OR_RETURN(Staging * s, staging_for(ctx.device.index));
  const Status copied = copy_parts(*s, static_cast<cudaStream_t>(ctx.stream), parts, static_cast<uint16_t*>(dst));
  // Both buffers are free again before returning, also after an error: the next call refills them.
  Status drained = Status::ok();
  for (int b = 0; b < 2; ++b) {
    if (!s->pending[b]) continue;
    s->pending[b] = false;
    const Status st = cuda_status(cudaEventSynchronize(s->done[b]), "weight upload");
    if (drained.is_ok()) drained = st;
  }
  return copied.is_ok() ? drained : copied;
}

}  // namespace kiln::runtime::cuda
