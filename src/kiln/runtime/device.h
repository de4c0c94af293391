// Where tensors live and ops run.
#pragma once

#include <string>

namespace kiln::runtime {

enum class DeviceKind { kCpu, kCuda };

struct Device {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;

  bool operator==(const Device&) const = default;
  static Device cpu() { return {}; }
  static Device cuda(int index = 0) { return {DeviceKind::kCuda, index}; }
};

std::string device_string(Device d);  // "cpu", "cuda:0"

// CUDA devices this kiln can use: 0 when it was built without the CUDA backend, or there is no
// driver or device (never an error).
int cuda_device_count();

}  // namespace kiln::runtime
