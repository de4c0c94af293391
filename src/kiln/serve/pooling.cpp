#include "kiln/serve/pooling.h"

#include <cmath>

#include "kiln/core/str.h"

namespace kiln::serve {

void normalize_l2(std::span<float> v) {
  double sum = 0.0;
  for (float x : v) sum += static_cast<double>(x) * static_cast<double>(x);
  if (!(sum > 0.0)) return;
  const double inv = 1.0 / std::sqrt(sum);
  for (float& x : v) x = static_cast<float>(static_cast<double>(x) * inv);
}

Result<std::vector<float>> finish_embedding(std::vector<float> pooled, std::optional<int64_t> dimensions,
                                            bool normalize) {
  if (dimensions) {
    if (*dimensions < 1 || *dimensions > static_cast<int64_t>(pooled.size())) {
      return invalid_argument(str_cat("dimensions: must be between 1 and the model's ", pooled.size(),
                                      " dimensions, got ", *dimensions))
          .with_param("dimensions");
    }
    pooled.resize(static_cast<size_t>(*dimensions));
  }
  if (normalize) normalize_l2(pooled);
  return pooled;
}

Result<double> yes_probability(std::span<const float> logits, int32_t yes_id, int32_t no_id) {
  const auto n = static_cast<int64_t>(logits.size());
  if (yes_id < 0 || yes_id >= n || no_id < 0 || no_id >= n) {
    return internal_error(str_cat("reranker token ids ", yes_id, "/", no_id, " are outside the ", n, " logits"));
  }
  const double d = static_cast<double>(logits[static_cast<size_t>(yes_id)]) -
                   static_cast<double>(logits[static_cast<size_t>(no_id)]);
  return d >= 0.0 ? 1.0 / (1.0 + std::exp(-d)) : std::exp(d) / (1.0 + std::exp(d));
}

}  // namespace kiln::serve
