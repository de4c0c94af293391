#include "kiln/runtime/models/load_weights.h"

#include <span>

namespace kiln::runtime::models {

Result<HostMatrix> host_tensor(const model::Checkpoint& ck, const std::string& name, std::vector<int64_t> shape) {
  KILN_ASSIGN_OR_RETURN(const model::TensorInfo* t, ck.get(name, shape));
  HostMatrix m;
  m.data = t->data;
  m.dtype = t->dtype;
  m.rows = shape.size() == 2 ? shape[0] : 1;
  m.cols = shape.back();
  m.name = name;
  return m;
}

Result<Buffer> load_vector(const DeviceContext& ctx, const model::Checkpoint& ck, const std::string& name, int64_t n,
                           float offset) {
  KILN_ASSIGN_OR_RETURN(HostMatrix m, host_tensor(ck, name, {n}));
  std::vector<float> shifted;
  if (offset != 0.0f) {
    // In f32, as transformers adds it, before any narrowing to the compute dtype.
    shifted.resize(static_cast<size_t>(n));
    convert_to_f32(m.data, m.dtype, static_cast<size_t>(n), shifted.data());
    for (float& v : shifted) v += offset;
    m.data = shifted.data();
    m.dtype = DType::kF32;
  }
  KILN_ASSIGN_OR_RETURN(Buffer b, upload_matrix(ctx, std::span<const HostMatrix>(&m, 1), compute_dtype(ctx.device)));
  KILN_RETURN_IF_ERROR(b.reshape({n}));
  return b;
}

Result<ops::LinearWeight> load_linear(const DeviceContext& ctx, const model::Checkpoint& ck, const std::string& prefix,
                                      const std::vector<std::pair<std::string, int64_t>>& parts, int64_t in_features,
                                      bool bias) {
  std::vector<HostMatrix> w, b;
  for (const auto& [name, rows] : parts) {
    KILN_ASSIGN_OR_RETURN(HostMatrix m, host_tensor(ck, prefix + name + ".weight", {rows, in_features}));
    w.push_back(std::move(m));
    if (bias) {
      KILN_ASSIGN_OR_RETURN(HostMatrix bm, host_tensor(ck, prefix + name + ".bias", {rows}));
      b.push_back(std::move(bm));
    }
  }
  return ops::load_linear_weight(ctx, w, b);
}

}  // namespace kiln::runtime::models
