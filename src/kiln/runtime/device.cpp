#include "kiln/runtime/device.h"

#include "kiln/core/str.h"

namespace kiln::runtime {

std::string device_string(Device d) {
  return d.kind == DeviceKind::kCpu ? std::string("cpu") : str_cat("cuda:", d.index);
}

}  // namespace kiln::runtime
