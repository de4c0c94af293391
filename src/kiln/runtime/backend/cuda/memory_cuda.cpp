#include "kiln/runtime/backend/cuda/memory_cuda.h"

#include <array>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include "kiln/runtime/backend/cuda/cuda_status.h"

namespace kiln::runtime::cuda {
namespace {

constexpr int kMaxDevices = 64;

struct Accounting {
  std::array<std::atomic<int64_t>, kMaxDevices> bytes{};
  std::mutex mu;
  std::unordered_map<void*, size_t> sizes;  // so that a free knows what it gives back
};

Accounting& accounting() {
  static Accounting* a = new Accounting();  // never destroyed: frees may run during exit
  return *a;
}

cudaStream_t stream_of(const DeviceContext& ctx) { return static_cast<cudaStream_t>(ctx.stream); }

}  // namespace

Result<void*> device_malloc(Device device, size_t bytes) {
  if (device.kind != DeviceKind::kCuda || device.index < 0 || device.index >= kMaxDevices) {
    return invalid_argument(str_cat("device_malloc: ", device_string(device), " is not a CUDA device"));
  }
  KILN_CUDA_RETURN_IF_ERROR(cudaSetDevice(device.index));
  void* p = nullptr;
  // A zero-byte tensor still gets a distinct, valid pointer so that it is not "absent".
  cudaError_t err = cudaMalloc(&p, bytes == 0 ? 256 : bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();
    size_t free_bytes = 0, total = 0;
    cudaMemGetInfo(&free_bytes, &total);
    return resource_exhausted(str_cat("out of memory on ", device_string(device), ": cannot allocate ",
                                      format_bytes(double(bytes)), " (", format_bytes(double(free_bytes)),
                                      " free of ", format_bytes(double(total)), ")"));
  }
  Accounting& a = accounting();
  {
    std::lock_guard<std::mutex> lock(a.mu);
    a.sizes[p] = bytes;
  }
  a.bytes[static_cast<size_t>(device.index)] += static_cast<int64_t>(bytes);
  return p;
}

void device_free(Device device, void* p) {
  if (p == nullptr) return;
  Accounting& a = accounting();
  size_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(a.mu);
    auto it = a.sizes.find(p);
    if (it != a.sizes.end()) {
      bytes = it->second;
      a.sizes.erase(it);
    }
  }
  if (device.index >= 0 && device.index < kMaxDevices) {
    a.bytes[static_cast<size_t>(device.index)] -= static_cast<int64_t>(bytes);
    cudaSetDevice(device.index);
  }
  cudaFree(p);
}

int64_t allocated_bytes(Device device) {
  if (device.index < 0 || device.index >= kMaxDevices) return 0;
  return accounting().bytes[static_cast<size_t>(device.index)].load();
}

Status copy_to_device(const DeviceContext& ctx, const void* host, void* dst, size_t bytes) {
  if (bytes == 0) return Status::ok();
  return cuda_status(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, stream_of(ctx)),
                     "copy_to_device");
}

Status copy_to_host(const DeviceContext& ctx, const void* src, void* host, size_t bytes) {
  if (bytes == 0) return Status::ok();
  return cuda_status(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, stream_of(ctx)),
                     "copy_to_host");
}

Status fill_zero(const DeviceContext& ctx, void* dst, size_t bytes) {
  if (bytes == 0) return Status::ok();
  return cuda_status(cudaMemsetAsync(dst, 0, bytes, stream_of(ctx)), "fill_zero");
}

Status synchronize(const DeviceContext& ctx) {
  return cuda_status(cudaStreamSynchronize(stream_of(ctx)), "synchronize");
}

}  // namespace kiln::runtime::cuda
