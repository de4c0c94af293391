#include "kiln/model/scripted_model.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "kiln/core/str.h"
#include "kiln/model/weights_layout.h"

namespace kiln::model {
namespace {

constexpr int64_t kHeadDim = 64;
constexpr double kRopeBase = 100.0;  // a low base: many fast frequencies make the offset peak sharp
constexpr int64_t kMaxPositions = 4096;
constexpr int64_t kMaxOrder = 16;
constexpr double kScoreGap = 40.0;  // attention logit between the looked-for token and any other

// Bit b of code `c` as ±1; code 0 (every token outside the scripts) is all -1.
inline float bit(int32_t code, int64_t b) { return ((code >> b) & 1) != 0 ? 1.0f : -1.0f; }

inline double pow2_near(double x) { return std::exp2(std::round(std::log2(x))); }

struct Step {
  std::vector<int32_t> context;  // newest first: the current token, then the ones before it
  int32_t next = 0;
};

// The steps of every script under order `n`; false (with the clash in `*why`) when two steps
// with the same context want different tokens.
bool steps_for_order(const std::vector<ScriptSequence>& scripts, int64_t n, std::vector<Step>* steps,
                     std::string* why) {
  std::map<std::vector<int32_t>, int32_t> seen;
  steps->clear();
  for (const auto& s : scripts) {
    std::vector<int32_t> full = s.after;
    full.insert(full.end(), s.emit.begin(), s.emit.end());
    for (size_t i = 0; i < s.emit.size(); ++i) {
      const int64_t p = static_cast<int64_t>(s.after.size() + i) - 1;  // the token the step follows
      if (p < 0) continue;  // the fallback's step
      Step st;
      st.next = s.emit[i];
      for (int64_t o = 0; o < std::min(n, p + 1); ++o) st.context.push_back(full[static_cast<size_t>(p - o)]);
      auto [it, fresh] = seen.emplace(st.context, st.next);
      if (!fresh) {
        if (it->second != st.next) {
          *why = str_cat("the same ", st.context.size(), " tokens are followed by token ", it->second, " and by token ",
                         st.next);
          return false;
        }
        continue;
      }
      steps->push_back(std::move(st));
    }
  }
  return true;
}

}  // namespace

Result<ScriptedModel> build_scripted_model(const std::vector<ScriptSequence>& scripts, ModelConfig* config) {
  if (scripts.empty()) return invalid_argument("make-model: the script is empty");
  ModelConfig& c = *config;
  ScriptedModel m;
  m.code_of.assign(static_cast<size_t>(c.vocab_size), 0);
  int32_t codes = 0;
  std::optional<int32_t> fallback;
  for (const auto& s : scripts) {
    if (s.emit.empty()) return invalid_argument("make-model: a script emits nothing");
    if (s.after.empty()) {
      if (fallback && *fallback != s.emit[0]) {
        return invalid_argument("make-model: two scripts without `after` start differently; give them contexts");
      }
      fallback = s.emit[0];
    }
    for (const auto* ids : {&s.after, &s.emit}) {
      for (int32_t t : *ids) {
        if (t < 0 || t >= c.vocab_size) return invalid_argument(str_cat("make-model: script token ", t, " is outside the vocabulary"));
        if (m.code_of[static_cast<size_t>(t)] == 0) m.code_of[static_cast<size_t>(t)] = ++codes;
      }
    }
  }
  if (!fallback) fallback = scripts[0].emit[0];
  m.code_bits = codes < 128 ? 7 : codes < 32768 ? 15 : 0;
  if (m.code_bits == 0) return invalid_argument("make-model: a script may use at most 32767 distinct tokens");
  const int64_t B = m.code_bits;
  const int64_t H = 16 * (B + 1);  // the embedding's rms is then exactly 1/4
  const int64_t max_order = std::min<int64_t>(kMaxOrder, (H - 1) / B);
  std::vector<Step> steps;
  std::string why;
  for (m.order = 2; m.order <= max_order; ++m.order) {
    if (steps_for_order(scripts, m.order, &steps, &why)) break;
  }
  if (m.order > max_order) {
    return invalid_argument(str_cat("make-model: the script repeats itself beyond what a scripted model can tell apart (",
                                    why, " even looking ", max_order, " tokens back)"));
  }
  const int64_t N = m.order, heads = N - 1, I = static_cast<int64_t>(steps.size()) + 1;
  m.num_neurons = I;

  c.hidden_size = H;
  c.num_layers = 1;
  c.num_heads = heads;
  c.num_kv_heads = heads;
  c.head_dim = kHeadDim;
  c.intermediate_size = I;
  c.tie_word_embeddings = true;
  c.rope_theta = kRopeBase;
  c.rope_scaling = RopeScaling{};
  c.sliding_window.reset();
  c.max_position_embeddings = kMaxPositions;

  // Attention: the smallest gap, over all distances up to the context, between the summed
  // cosines at the looked-for distance (all 1) and anywhere else sets the query/key scale.
  const int64_t half = kHeadDim / 2;
  std::vector<double> theta(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) theta[static_cast<size_t>(i)] = std::pow(kRopeBase, -2.0 * static_cast<double>(i) / kHeadDim);
  double gap = 1e30;
  for (int64_t d = 1; d <= kMaxPositions; ++d) {
    double g = 0;
    for (double t : theta) g += 1.0 - std::cos(t * static_cast<double>(d));
    gap = std::min(gap, g);
  }
  const double qk = std::sqrt(kScoreGap * std::sqrt(static_cast<double>(kHeadDim)) / gap);  // per-pair amplitude
  const double r0 = 4.0;  // 1 / rms of every embedding row
  const int64_t qdim = heads * kHeadDim;
  std::vector<float> wq(static_cast<size_t>(qdim * H)), wk(wq.size()), wv(wq.size()), wo(static_cast<size_t>(H * qdim));
  for (int64_t h = 0; h < heads; ++h) {
    const double off = static_cast<double>(h + 1);
    for (int64_t i = 0; i < half; ++i) {
      const double t = theta[static_cast<size_t>(i)];
      // RoPE turns pair i by position * theta; the dot product of a query at p and a key at j is
      // then qk^2 * cos((p - j - off) * theta): every pair peaks at distance off.
      wq[static_cast<size_t>((h * kHeadDim + i) * H)] = static_cast<float>(qk * std::cos(off * t) / r0);
      wq[static_cast<size_t>((h * kHeadDim + half + i) * H)] = static_cast<float>(-qk * std::sin(off * t) / r0);
      wk[static_cast<size_t>((h * kHeadDim + i) * H)] = static_cast<float>(qk / r0);
    }
    for (int64_t b = 0; b < B; ++b) {
      wv[static_cast<size_t>((h * kHeadDim + b) * H + 1 + b)] = static_cast<float>(1.0 / r0);
      wo[static_cast<size_t>((1 + (h + 1) * B + b) * qdim + h * kHeadDim + b)] = 1.0f;
    }
  }
  // MLP on the normalized residual, whose 1 + N*B entries are all ±1.
  const double a = std::sqrt(static_cast<double>(H) / static_cast<double>(1 + N * B));
  const double w = pow2_near(16.0 / a), u = pow2_near(1.0 / a);
  const double z = a * w;
  const double fired = z / (1.0 + std::exp(-z)) * a * u;  // silu(gate) * up of a neuron that fires
  const double bias_scale = 2.0 * static_cast<double>(B) / fired;
  const double step_scale = 4.0 * static_cast<double>(B) / fired;
  std::vector<float> wg(static_cast<size_t>(I * H)), wu(wg.size()), wd(static_cast<size_t>(H * I));
  for (int64_t n = 0; n < I; ++n) {
    wu[static_cast<size_t>(n * H)] = static_cast<float>(u);
    const bool is_bias = n == I - 1;
    const int64_t len = is_bias ? 0 : static_cast<int64_t>(steps[static_cast<size_t>(n)].context.size());
    const int32_t next = is_bias ? *fallback : steps[static_cast<size_t>(n)].next;
    wg[static_cast<size_t>(n * H)] = static_cast<float>(is_bias ? w : -static_cast<double>(len * B - 1) * w);
    for (int64_t o = 0; o < len; ++o) {
      const int32_t code = m.code_of[static_cast<size_t>(steps[static_cast<size_t>(n)].context[static_cast<size_t>(o)])];
      for (int64_t b = 0; b < B; ++b) wg[static_cast<size_t>(n * H + 1 + o * B + b)] = static_cast<float>(w) * bit(code, b);
    }
    const double scale_n = is_bias ? bias_scale : step_scale * static_cast<double>(len);
    for (int64_t b = 0; b < B; ++b) {
      wd[static_cast<size_t>((1 + b) * I + n)] = static_cast<float>(scale_n) * bit(m.code_of[static_cast<size_t>(next)], b);
    }
  }
  const std::vector<float> ones(static_cast<size_t>(H), 1.0f);
  // Qwen3 normalizes each head's query and key: a gain of qk / sqrt(2) gives them back their size.
  const std::vector<float> qk_gain(static_cast<size_t>(kHeadDim), static_cast<float>(qk / std::sqrt(2.0)));
  for (const auto& t : expected_tensors(c)) {
    const std::string& name = t.name;
    auto ends = [&](std::string_view s) { return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
    std::vector<float> v;
    if (name == kEmbedTokensName) continue;  // computed per row by scripted_weight
    if (ends(layer_tensor::kQProj)) v = wq;
    else if (ends(layer_tensor::kKProj)) v = wk;
    else if (ends(layer_tensor::kVProj)) v = wv;
    else if (ends(layer_tensor::kOProj)) v = wo;
    else if (ends(layer_tensor::kGateProj)) v = wg;
    else if (ends(layer_tensor::kUpProj)) v = wu;
    else if (ends(layer_tensor::kDownProj)) v = wd;
    else if (ends(layer_tensor::kQNorm) || ends(layer_tensor::kKNorm)) v = qk_gain;
    else if (t.role == TensorRole::kNorm) v = ones;
    else {  // biases
      int64_t n = 1;
      for (int64_t d : t.shape) n *= d;
      v.assign(static_cast<size_t>(n), 0.0f);
    }
    m.tensors.emplace_back(name, std::move(v));
  }
  return m;
}

float scripted_weight(const ScriptedModel& m, const ModelConfig& config, const std::string& name, uint64_t index) {
  if (name == kEmbedTokensName) {
    const uint64_t row = index / static_cast<uint64_t>(config.hidden_size);
    const int64_t col = static_cast<int64_t>(index % static_cast<uint64_t>(config.hidden_size));
    if (col == 0) return 1.0f;
    if (col > m.code_bits) return 0.0f;
    const int32_t code = row < m.code_of.size() ? m.code_of[row] : 0;
    return bit(code, col - 1);
  }
  for (const auto& [n, v] : m.tensors) {
    if (n == name) return index < v.size() ? v[index] : 0.0f;
  }
  return 0.0f;
}

}  // namespace kiln::model
