#include "kiln/runtime/backend/cuda/scratch.h"

#include <array>
#include <map>
#include <mutex>
#include <utility>

#include "kiln/runtime/backend/cuda/cuda_status.h"
#include "kiln/runtime/backend/cuda/memory_cuda.h"

namespace kiln::runtime::cuda {
namespace {

constexpr size_t kSlots = static_cast<size_t>(ScratchSlot::kCount);

struct DeviceSlot {
  Device device;
  void* p = nullptr;
  size_t bytes = 0;
};

struct ThreadScratch {
  std::map<std::pair<int, size_t>, DeviceSlot> device;  // (device index, slot)
  std::array<void*, kSlots> pinned{};
  std::array<size_t, kSlots> pinned_bytes{};
  ~ThreadScratch() {
    for (auto& [key, s] : device) device_free(s.device, s.p);
    for (void* p : pinned) {
      if (p != nullptr) cudaFreeHost(p);
    }
  }
};

thread_local ThreadScratch t_scratch;
thread_local uint64_t t_generation = 0;

size_t grown(size_t bytes) { return std::max<size_t>(bytes + bytes / 4, 1u << 16); }

}  // namespace

Result<void*> device_scratch(Device device, ScratchSlot slot, size_t bytes) {
  DeviceSlot& s = t_scratch.device[{device.index, static_cast<size_t>(slot)}];
  if (s.p != nullptr && s.bytes >= bytes) return s.p;
  if (s.p != nullptr) {
    // A replaced buffer may still be read by work already on the stream.
    KILN_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
    device_free(s.device, s.p);
    s.p = nullptr;
    s.bytes = 0;
    ++t_generation;
  }
  const size_t want = grown(bytes);
  KILN_ASSIGN_OR_RETURN(s.p, device_malloc(device, want));
  s.device = device;
  s.bytes = want;
  return s.p;
}

Result<void*> pinned_scratch(ScratchSlot slot, size_t bytes) {
  const auto i = static_cast<size_t>(slot);
  if (t_scratch.pinned[i] != nullptr && t_scratch.pinned_bytes[i] >= bytes) return t_scratch.pinned[i];
  if (t_scratch.pinned[i] != nullptr) {
    KILN_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
    cudaFreeHost(t_scratch.pinned[i]);
    t_scratch.pinned[i] = nullptr;
    t_scratch.pinned_bytes[i] = 0;
  }
  const size_t want = grown(bytes);
  void* p = nullptr;
  KILN_CUDA_RETURN_IF_ERROR(cudaHostAlloc(&p, want, cudaHostAllocDefault));
  t_scratch.pinned[i] = p;
  t_scratch.pinned_bytes[i] = want;
  return p;
}

uint64_t scratch_generation() { return t_generation; }

int sm_count(Device device) {
  static std::mutex mu;
  static std::map<int, int> counts;
  std::lock_guard<std::mutex> lock(mu);
  auto it = counts.find(device.index);
  if (it != counts.end()) return it->second;
  int n = 0;
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device.index) != cudaSuccess) {
    cudaGetLastError();
    n = 1;
  }
  counts[device.index] = n;
  return n;
}

}  // namespace kiln::runtime::cuda
