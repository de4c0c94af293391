#include "kiln/runtime/fp8_weights.h"

#include <cmath>
#include <cstring>

#include "kiln/core/str.h"
#include "kiln/model/fp8_quantize.h"
#include "kiln/runtime/weights.h"

namespace kiln::runtime {
namespace {

// The scale tensor of `module`: f32, f16 or bf16 with `count` values (the shape's singleton axes
// vary between writers: [out, 1] or [out]; [] or [1]).
Result<std::vector<float>> read_scales(const model::Checkpoint& ck, const std::string& name, int64_t count,
                                       const std::vector<int64_t>& expected) {
  auto it = ck.tensors().find(name);
  if (it == ck.tensors().end())
    return not_found(str_cat(ck.dir().string(), ": FP8 weight scale '", name, "' is missing"));
  const model::TensorInfo& t = it->second;
  if (t.dtype != DType::kF32 && t.dtype != DType::kBF16 && t.dtype != DType::kF16)
    return invalid_argument(str_cat(t.file.string(), ": scale '", name, "' has dtype ", dtype_name(t.dtype),
                                    ", expected F32, BF16 or F16"));
  if (t.numel() != count)
    return invalid_argument(str_cat(t.file.string(), ": scale '", name, "' has shape ", model::shape_to_string(t.shape),
                                    ", expected ", model::shape_to_string(expected)));
  std::vector<float> s(static_cast<size_t>(count));
  convert_to_f32(t.data, t.dtype, s.size(), s.data());
  for (float v : s) {
    if (!(v > 0.0f) || !std::isfinite(v))
      return invalid_argument(str_cat(t.file.string(), ": scale '", name, "' holds ", v, ", not a positive number"));
  }
  return s;
}

std::vector<float> dequantized(const Fp8HostMatrix& m) {
  std::vector<float> w(static_cast<size_t>(m.rows * m.cols));
  model::dequantize_fp8(m.config, m.codes, m.scales.data(), m.rows, m.cols, w.data());
  return w;
}

}  // namespace

void quantize_at_load(bool quantize, model::ModelConfig* config) {
  if (!quantize || config->quantization.quantized()) return;
  config->quantization = model::fp8_block_config();
  config->quantization.quantize_at_load = true;
}

bool fp8_linear(const model::QuantizationConfig& q, std::span<const std::string> modules) {
  if (!q.quantized()) return false;
  for (const std::string& m : modules) {
    if (!q.covers(m)) return false;
  }
  return !modules.empty();
}

Result<Fp8HostMatrix> read_fp8_matrix(const model::Checkpoint& ck, const model::QuantizationConfig& q,
                                      const std::string& module, int64_t rows, int64_t cols) {
  Fp8HostMatrix m;
  m.config = q;
  m.rows = rows;
  m.cols = cols;
  m.name = module + ".weight";
  if (q.quantize_at_load) {
    KILN_ASSIGN_OR_RETURN(const model::TensorInfo* t, ck.get(m.name, {rows, cols}));
    std::vector<float> w(static_cast<size_t>(rows * cols));
    convert_to_f32(t->data, t->dtype, w.size(), w.data());
    m.owned_codes.resize(w.size());
    m.scales.resize(static_cast<size_t>(model::fp8_scale_count(q, rows, cols)));
    model::quantize_fp8(q, w.data(), rows, cols, m.owned_codes.data(), m.scales.data());
    m.codes = m.owned_codes.data();
    return m;
  }
  auto it = ck.tensors().find(m.name);
  if (it == ck.tensors().end()) return not_found(str_cat(ck.dir().string(), ": tensor '", m.name, "' is missing"));
  const model::TensorInfo& t = it->second;
  if (t.dtype != DType::kF8E4M3)
    return invalid_argument(str_cat(t.file.string(), ": tensor '", m.name, "' has dtype ", dtype_name(t.dtype),
                                    ", but config.json's quantization_config makes it F8_E4M3"));
  if (t.shape != std::vector<int64_t>{rows, cols})
    return invalid_argument(str_cat(t.file.string(), ": tensor '", m.name, "' has shape ", model::shape_to_string(t.shape),
                                    ", expected ", model::shape_to_string({rows, cols})));
  m.codes = t.data;
  KILN_ASSIGN_OR_RETURN(m.scales, read_scales(ck, q.scale_name(module), model::fp8_scale_count(q, rows, cols),
                                              q.scale_shape(rows, cols)));
  return m;
}

Result<ops::LinearWeight> load_fp8_linear_weight(const DeviceContext& ctx, std::span<const Fp8HostMatrix> parts,
                                                 std::span<const HostMatrix> bias_parts) {
  if (parts.empty()) return invalid_argument("FP8 linear weight: no parts");
  const int64_t k = parts[0].cols;
  int64_t n = 0;
  for (const Fp8HostMatrix& p : parts) {
    if (p.cols != k)
      return invalid_argument(str_cat("weight ", p.name, ": ", p.cols, " columns, expected ", k, " like ", parts[0].name));
    n += p.rows;
  }
  // Group scales of every part, [K / 128, rows] each; a part without them keeps the stack plain.
  std::vector<std::vector<float>> groups(parts.size());
  bool device_fp8 = ctx.device.kind == DeviceKind::kCuda && k % 16 == 0;
  for (size_t i = 0; device_fp8 && i < parts.size(); ++i)
    device_fp8 = model::fp8_group_scales(parts[i].config, parts[i].scales.data(), parts[i].rows, k, &groups[i]);

  if (!device_fp8) {
    // The reference (CPU), or a layout the CUDA kernels do not take: dequantized f32 into the
    // backend's usual weight (f32 panels on CPU, bf16 on CUDA).
    std::vector<std::vector<float>> f32(parts.size());
    std::vector<HostMatrix> plain;
    for (size_t i = 0; i < parts.size(); ++i) {
      f32[i] = dequantized(parts[i]);
      plain.push_back({f32[i].data(), DType::kF32, parts[i].rows, k, parts[i].name});
    }
    return ops::load_linear_weight(ctx, plain, bias_parts);
  }

  // Bias (and its checks) as for a plain weight: a [1, N] bf16 row beside the FP8 matrix.
  ops::LinearWeight w;
  if (!bias_parts.empty()) {
    if (bias_parts.size() != parts.size())
      return invalid_argument(str_cat("linear weight ", parts[0].name, ": ", bias_parts.size(), " bias parts for ",
                                      parts.size(), " weight parts"));
    std::vector<float> bias;
    for (size_t i = 0; i < bias_parts.size(); ++i) {
      const HostMatrix& b = bias_parts[i];
      if (b.rows * b.cols != parts[i].rows)
        return invalid_argument(str_cat("linear bias ", b.name, ": ", b.rows * b.cols, " values for ", parts[i].rows,
                                        " outputs of ", parts[i].name));
      const size_t at = bias.size();
      bias.resize(at + static_cast<size_t>(b.rows * b.cols));
      convert_to_f32(b.data, b.dtype, static_cast<size_t>(b.rows * b.cols), bias.data() + at);
    }
    const HostMatrix row{bias.data(), DType::kF32, 1, n, bias_parts[0].name};
    KILN_ASSIGN_OR_RETURN(w.bias, upload_matrix(ctx, std::span<const HostMatrix>(&row, 1), compute_dtype(ctx.device)));
  }
  const int64_t kg = (k + 127) / 128;
  std::vector<uint8_t> codes(static_cast<size_t>(n * k));
  std::vector<float> scales(static_cast<size_t>(kg * n));
  int64_t row = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Fp8HostMatrix& p = parts[i];
    std::memcpy(codes.data() + row * k, p.codes, static_cast<size_t>(p.rows * k));
    for (int64_t g = 0; g < kg; ++g)
      std::memcpy(scales.data() + g * n + row, groups[i].data() + g * p.rows, static_cast<size_t>(p.rows) * sizeof(float));
    row += p.rows;
  }
  KILN_ASSIGN_OR_RETURN(w.weight, Buffer::allocate(ctx.device, DType::kF8E4M3, {n, k}));
  KILN_ASSIGN_OR_RETURN(w.scales, Buffer::allocate(ctx.device, DType::kF32, {kg, n}));
  KILN_RETURN_IF_ERROR(copy_to_device(ctx, codes.data(), w.weight.tensor()));
  KILN_RETURN_IF_ERROR(copy_to_device(ctx, scales.data(), w.scales.tensor()));
  KILN_RETURN_IF_ERROR(synchronize(ctx));  // the host vectors go out of scope
  w.out_features = n;
  w.in_features = k;
  return w;
}

int64_t fp8_linear_weight_bytes(int64_t n, int64_t k, bool bias) {
  return n * k + ((k + 127) / 128) * n * 4 + (bias ? n * 2 : 0);
}

}  // namespace kiln::runtime
