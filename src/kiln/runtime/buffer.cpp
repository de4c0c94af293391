#include "kiln/runtime/buffer.h"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

#include <sys/mman.h>

#include "kiln/core/str.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/memory_cuda.h")
#include "kiln/runtime/backend/cuda/memory_cuda.h"
#define KILN_HAVE_CUDA_MEMORY 1
#endif

namespace kiln::runtime {
namespace {
[[maybe_unused]] Status no_cuda(const char* what) {
  return unimplemented(str_cat(what, ": this kiln was built without the CUDA backend"));
}
}  // namespace

Result<Buffer> Buffer::allocate(Device device, DType dtype, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return invalid_argument(str_cat("buffer: negative dimension ", d));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / 16 / d)
      return resource_exhausted("buffer: size overflows");
    n *= d;
  }
  const size_t bytes = static_cast<size_t>(n) * dtype_size(dtype);
  void* p = nullptr;
  if (device.kind == DeviceKind::kCpu) {
    // Round up: aligned_alloc wants a multiple of the alignment; never ask for 0 bytes. Large
    // buffers (weights, the KV cache) sit on 2 MiB boundaries and ask for transparent huge pages:
    // filling them at load then takes one page fault per 2 MiB instead of one per 4 KiB, which
    // was a third of a bf16 checkpoint's load time (docs/cpu-dtypes.md).
    constexpr size_t kHuge = size_t{2} << 20;
    const size_t align = bytes >= kHuge ? kHuge : 64;
    const size_t rounded = (std::max<size_t>(bytes, 1) + align - 1) / align * align;
    p = std::aligned_alloc(align, rounded);
    if (p == nullptr) return resource_exhausted(str_cat("buffer: cannot allocate ", format_bytes(double(bytes)), " on cpu"));
    if (align == kHuge) (void)::madvise(p, rounded, MADV_HUGEPAGE);  // a hint: fine if refused
  } else {
#ifdef KILN_HAVE_CUDA_MEMORY
    KILN_ASSIGN_OR_RETURN(p, cuda::device_malloc(device, bytes));
#else
    return no_cuda("buffer");
#endif
  }
  Buffer b;
  b.tensor_ = Tensor(p, dtype, device, std::span<const int64_t>(shape.data(), shape.size()));
  return b;
}

Buffer::~Buffer() { release(); }

Status Buffer::reshape(std::initializer_list<int64_t> shape) {
  const Tensor t = tensor_.reshape(shape);
  if (t.numel() != tensor_.numel())
    return invalid_argument(str_cat("buffer: cannot reshape ", tensor_.shape_string(), " to ", t.shape_string()));
  tensor_ = t;
  return Status::ok();
}

Buffer::Buffer(Buffer&& other) noexcept : tensor_(std::exchange(other.tensor_, Tensor())) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    tensor_ = std::exchange(other.tensor_, Tensor());
  }
  return *this;
}

void Buffer::release() {
  if (tensor_.empty()) return;
  if (tensor_.device().kind == DeviceKind::kCpu) {
    std::free(tensor_.raw());
  } else {
#ifdef KILN_HAVE_CUDA_MEMORY
    cuda::device_free(tensor_.device(), tensor_.raw());
#endif
  }
  tensor_ = Tensor();
}

Status copy_to_device(const DeviceContext& ctx, const void* host, const Tensor& dst) {
  if (!(dst.device() == ctx.device)) return invalid_argument("copy_to_device: tensor is not on the context's device");
  if (ctx.device.kind == DeviceKind::kCpu) {
    if (dst.nbytes() > 0) std::memcpy(dst.raw(), host, static_cast<size_t>(dst.nbytes()));
    return Status::ok();
  }
#ifdef KILN_HAVE_CUDA_MEMORY
  return cuda::copy_to_device(ctx, host, dst.raw(), static_cast<size_t>(dst.nbytes()));
#else
  return no_cuda("copy_to_device");
#endif
}

Status copy_to_host(const DeviceContext& ctx, const Tensor& src, void* host) {
  if (!(src.device() == ctx.device)) return invalid_argument("copy_to_host: tensor is not on the context's device");
  if (ctx.device.kind == DeviceKind::kCpu) {
    if (src.nbytes() > 0) std::memcpy(host, src.raw(), static_cast<size_t>(src.nbytes()));
    return Status::ok();
  }
#ifdef KILN_HAVE_CUDA_MEMORY
  return cuda::copy_to_host(ctx, src.raw(), host, static_cast<size_t>(src.nbytes()));
#else
  return no_cuda("copy_to_host");
#endif
}

Status fill_zero(const DeviceContext& ctx, const Tensor& dst) {
  if (!(dst.device() == ctx.device)) return invalid_argument("fill_zero: tensor is not on the context's device");
  if (ctx.device.kind == DeviceKind::kCpu) {
    if (dst.nbytes() > 0) std::memset(dst.raw(), 0, static_cast<size_t>(dst.nbytes()));
    return Status::ok();
  }
#ifdef KILN_HAVE_CUDA_MEMORY
  return cuda::fill_zero(ctx, dst.raw(), static_cast<size_t>(dst.nbytes()));
#else
  return no_cuda("fill_zero");
#endif
}

Status synchronize(const DeviceContext& ctx) {
  if (ctx.device.kind == DeviceKind::kCpu) return Status::ok();
#ifdef KILN_HAVE_CUDA_MEMORY
  return cuda::synchronize(ctx);
#else
  return no_cuda("synchronize");
#endif
}

}  // namespace kiln::runtime
