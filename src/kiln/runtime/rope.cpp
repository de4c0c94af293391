#include "kiln/runtime/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "kiln/core/str.h"

namespace kiln::runtime {
namespace {

// transformers computes these in f32 from a Python-float base; kiln computes in double and rounds
// once, which agrees to the last bit or one ulp.
std::vector<float> default_inv_freq(double base, int64_t dim) {
  std::vector<float> inv(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i)
    inv[static_cast<size_t>(i)] = static_cast<float>(1.0 / std::pow(base, static_cast<double>(2 * i) / static_cast<double>(dim)));
  return inv;
}

}  // namespace

RopeFrequencies rope_frequencies(const model::ModelConfig& c, int64_t seq_len) {
  const int64_t dim = c.head_dim;
  const model::RopeScaling& s = c.rope_scaling;
  RopeFrequencies f;
  switch (s.type) {
    case model::RopeScalingType::kNone:
      f.inv_freq = default_inv_freq(c.rope_theta, dim);
      break;
    case model::RopeScalingType::kLinear:
      f.inv_freq = default_inv_freq(c.rope_theta, dim);
      for (float& v : f.inv_freq) v = static_cast<float>(static_cast<double>(v) / s.factor);
      break;
    case model::RopeScalingType::kDynamic: {
      const double max_pos = static_cast<double>(c.max_position_embeddings);
      const double len = std::max(static_cast<double>(seq_len), max_pos);
      const double base = c.rope_theta * std::pow(s.factor * len / max_pos - (s.factor - 1.0),
                                                  static_cast<double>(dim) / static_cast<double>(dim - 2));
      f.inv_freq = default_inv_freq(base, dim);
      break;
    }
    case model::RopeScalingType::kLlama3: {
      f.inv_freq = default_inv_freq(c.rope_theta, dim);
      const double old_len = static_cast<double>(s.original_max_position_embeddings);
      const double low_wavelen = old_len / s.low_freq_factor, high_wavelen = old_len / s.high_freq_factor;
      for (float& v : f.inv_freq) {
        const double inv = v;
        const double wavelen = 2.0 * std::numbers::pi / inv;
        double out = wavelen > low_wavelen ? inv / s.factor : inv;
        if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
          const double smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
          out = (1.0 - smooth) * out / s.factor + smooth * out;
        }
        v = static_cast<float>(out);
      }
      break;
    }
    case model::RopeScalingType::kYarn: {
      // As transformers: with original_max_position_embeddings given, the factor is the ratio of
      // the context lengths; the correction range uses the original length.
      double factor = s.factor;
      double original = static_cast<double>(c.max_position_embeddings);
      if (s.original_max_position_embeddings > 0) {
        original = static_cast<double>(s.original_max_position_embeddings);
        factor = static_cast<double>(c.max_position_embeddings) / original;
      }
      f.attention_scaling = static_cast<float>(
          s.attention_factor.has_value() ? *s.attention_factor : (factor <= 1.0 ? 1.0 : 0.1 * std::log(factor) + 1.0));
      const double d = static_cast<double>(dim);
      auto correction_dim = [&](double rotations) {
        return d * std::log(original / (rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(c.rope_theta));
      };
      const double low = std::max(std::floor(correction_dim(s.beta_fast)), 0.0);
      double high = std::min(std::ceil(correction_dim(s.beta_slow)), d - 1.0);
      if (low == high) high += 0.001;
      f.inv_freq.resize(static_cast<size_t>(dim / 2));
      for (int64_t i = 0; i < dim / 2; ++i) {
        const float pos_freq = static_cast<float>(std::pow(c.rope_theta, static_cast<double>(2 * i) / d));
        const float extrapolation = 1.0f / pos_freq;
        const float interpolation = static_cast<float>(1.0 / (factor * static_cast<double>(pos_freq)));
        const float ramp = static_cast<float>(std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0));
        const float extrapolation_factor = 1.0f - ramp;
        f.inv_freq[static_cast<size_t>(i)] =
            interpolation * (1.0f - extrapolation_factor) + extrapolation * extrapolation_factor;
      }
      break;
    }
  }
  return f;
}

Result<std::vector<float>> rope_table(const model::ModelConfig& c, int64_t max_positions) {
  const int64_t dim = c.head_dim;
  if (dim <= 0 || dim % 2 != 0) return invalid_argument(str_cat("rope: head_dim ", dim, " must be positive and even"));
  if (max_positions <= 0) return invalid_argument(str_cat("rope: max_positions ", max_positions, " must be positive"));
  if (!(c.rope_theta > 0.0)) return invalid_argument(str_cat("rope: rope_theta ", c.rope_theta, " must be positive"));
  const model::RopeScaling& s = c.rope_scaling;
  if (s.type != model::RopeScalingType::kNone && !(s.factor > 0.0))
    return invalid_argument(str_cat("rope_scaling: factor ", s.factor, " must be positive"));
  if (s.type == model::RopeScalingType::kLlama3 &&
      (s.original_max_position_embeddings <= 0 || !(s.high_freq_factor > s.low_freq_factor)))
    return invalid_argument("rope_scaling: llama3 needs original_max_position_embeddings > 0 and "
                            "high_freq_factor > low_freq_factor");
  if (s.type == model::RopeScalingType::kDynamic && (c.max_position_embeddings <= 0 || dim <= 2))
    return invalid_argument("rope_scaling: dynamic needs max_position_embeddings > 0 and head_dim > 2");
  const int64_t half = dim / 2;
  std::vector<float> table(static_cast<size_t>(max_positions * dim));
  RopeFrequencies f = rope_frequencies(c, 0);
  for (int64_t p = 0; p < max_positions; ++p) {
    if (s.type == model::RopeScalingType::kDynamic && p + 1 > c.max_position_embeddings) f = rope_frequencies(c, p + 1);
    float* row = table.data() + p * dim;
    for (int64_t i = 0; i < half; ++i) {
      const float angle = f.inv_freq[static_cast<size_t>(i)] * static_cast<float>(p);  // f32, as transformers
      row[i] = static_cast<float>(std::cos(static_cast<double>(angle))) * f.attention_scaling;
      row[half + i] = static_cast<float>(std::sin(static_cast<double>(angle))) * f.attention_scaling;
    }
  }
  return table;
}

}  // namespace kiln::runtime
