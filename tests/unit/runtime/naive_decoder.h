// A naive reference of every decoder kiln runs, straight from the checkpoint's f32 tensors in
// double precision: one token at a time, every expert of a token computed densely, attention as
// plain loops with the causal mask and the layer's window. The engine tests compare kiln's fused,
// paged, permuted path against it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <filesystem>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "kiln/core/str.h"
#include "kiln/model/checkpoint.h"
#include "kiln/model/config.h"
#include "kiln/model/weights_layout.h"
#include "kiln/runtime/rope.h"

namespace kiln::runtime::testing {

class NaiveDecoder {
 public:
  explicit NaiveDecoder(const std::filesystem::path& dir) {
    auto c = model::load_model_config(dir);
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    c_ = *c;
    auto ck = model::Checkpoint::open(dir);
    EXPECT_TRUE(ck.is_ok()) << ck.status().to_string();
    if (ck.is_ok()) ck_ = std::move(*ck);
  }
  const model::ModelConfig& config() const { return c_; }
  void set_config(const model::ModelConfig& c) { c_ = c; }

  // Logits [tokens.size()][vocab] of the prompt.
  std::vector<std::vector<double>> logits(const std::vector<int32_t>& tokens) const {
    const int64_t n = static_cast<int64_t>(tokens.size()), h = c_.hidden_size, d = c_.head_dim;
    const int64_t heads = c_.num_heads, kvh = c_.num_kv_heads;
    const bool gemma = c_.is_gemma();
    std::vector<Vec> x(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) {
      x[static_cast<size_t>(t)] = row("model.embed_tokens.weight", tokens[static_cast<size_t>(t)], h);
      if (gemma)
        for (double& v : x[static_cast<size_t>(t)]) v *= static_cast<float>(std::sqrt(static_cast<double>(h)));
    }
    for (int64_t l = 0; l < c_.num_layers; ++l) {
      const std::string p = model::layer_prefix(l);
      const int64_t window = c_.layer_window(l);
      model::ModelConfig rc = c_;
      if (gemma && window > 0) {
        rc.rope_theta = c_.rope_local_theta;
        rc.rope_scaling = model::RopeScaling{};
      }
      std::vector<Vec> q(static_cast<size_t>(n)), k(q), v(q);
      for (int64_t t = 0; t < n; ++t) {
        const Vec hn = norm(x[static_cast<size_t>(t)], p + "input_layernorm.weight");
        q[static_cast<size_t>(t)] = matvec(p + "self_attn.q_proj.weight", hn, heads * d);
        k[static_cast<size_t>(t)] = matvec(p + "self_attn.k_proj.weight", hn, kvh * d);
        v[static_cast<size_t>(t)] = matvec(p + "self_attn.v_proj.weight", hn, kvh * d);
        const RopeFrequencies f = rope_frequencies(rc, t + 1);
        for (int64_t hd = 0; hd < heads; ++hd) head_rope(q[static_cast<size_t>(t)], hd, d, p + "self_attn.q_norm.weight", f, t);
        for (int64_t hd = 0; hd < kvh; ++hd) head_rope(k[static_cast<size_t>(t)], hd, d, p + "self_attn.k_norm.weight", f, t);
      }
      for (int64_t t = 0; t < n; ++t) {
        Vec attn(static_cast<size_t>(heads * d), 0.0);
        const int64_t first = window > 0 ? std::max<int64_t>(0, t - window + 1) : 0;
        for (int64_t hd = 0; hd < heads; ++hd) {
          const int64_t g = hd / (heads / kvh);
          std::vector<double> s;
          for (int64_t j = first; j <= t; ++j) {
            double dot = 0;
            for (int64_t i = 0; i < d; ++i) dot += q[static_cast<size_t>(t)][static_cast<size_t>(hd * d + i)] * k[static_cast<size_t>(j)][static_cast<size_t>(g * d + i)];
            s.push_back(dot * c_.attention_scale());
          }
          double m = -std::numeric_limits<double>::infinity();
          for (double e : s) m = std::max(m, e);
          double z = 0;
          for (double& e : s) z += (e = std::exp(e - m));
          for (int64_t j = first; j <= t; ++j)
            for (int64_t i = 0; i < d; ++i)
              attn[static_cast<size_t>(hd * d + i)] += s[static_cast<size_t>(j - first)] / z * v[static_cast<size_t>(j)][static_cast<size_t>(g * d + i)];
        }
        Vec o = matvec(p + "self_attn.o_proj.weight", attn, h);
        Vec& xt = x[static_cast<size_t>(t)];
        if (gemma) {
          add(xt, norm(o, p + "post_attention_layernorm.weight"));
          const Vec hn = norm(xt, p + "pre_feedforward_layernorm.weight");
          add(xt, norm(mlp(p + "mlp.", "gate_proj.weight", "up_proj.weight", "down_proj.weight", hn, true), p + "post_feedforward_layernorm.weight"));
        } else {
          add(xt, o);
          const Vec hn = norm(xt, p + "post_attention_layernorm.weight");
          add(xt, c_.layer_is_sparse(l) ? moe(l, hn) : mlp(p + "mlp.", "gate_proj.weight", "up_proj.weight", "down_proj.weight", hn, false));
        }
      }
    }
    std::vector<std::vector<double>> out;
    const std::string head = ck_->has("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight";
    for (int64_t t = 0; t < n; ++t) {
      Vec r = matvec(head, norm(x[static_cast<size_t>(t)], "model.norm.weight"), c_.vocab_size);
      if (c_.final_logit_softcapping) {
        const double cap = *c_.final_logit_softcapping;
        for (double& e : r) e = std::tanh(e / cap) * cap;
      }
      out.push_back(std::move(r));
    }
    return out;
  }

  // The top-k experts of a normalised hidden state and their weights, as transformers routes.
  std::vector<std::pair<int64_t, double>> route(int64_t layer, const std::vector<double>& hn) const {
    const model::MoeTensorNames names = model::moe_tensor_names(c_);
    const Vec logits = matvec(model::layer_prefix(layer) + names.router, hn, c_.num_experts);
    double m = -std::numeric_limits<double>::infinity();
    for (double e : logits) m = std::max(m, e);
    Vec prob(logits.size());
    double z = 0;
    for (size_t i = 0; i < prob.size(); ++i) z += (prob[i] = std::exp(logits[i] - m));
    for (double& pr : prob) pr /= z;
    std::vector<int64_t> order(prob.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return prob[static_cast<size_t>(a)] > prob[static_cast<size_t>(b)]; });
    std::vector<std::pair<int64_t, double>> out;
    double sum = 0;
    for (int64_t j = 0; j < c_.num_experts_per_tok; ++j) {
      out.emplace_back(order[static_cast<size_t>(j)], prob[static_cast<size_t>(order[static_cast<size_t>(j)])]);
      sum += out.back().second;
    }
    if (c_.norm_topk_prob)
      for (auto& e : out) e.second /= sum;
    return out;
  }

 private:
  using Vec = std::vector<double>;

  const float* data(const std::string& name) const {
    auto it = ck_->tensors().find(name);
    EXPECT_TRUE(it != ck_->tensors().end()) << name;
    EXPECT_EQ(it->second.dtype, DType::kF32) << name;
    return reinterpret_cast<const float*>(it->second.data);
  }
  Vec row(const std::string& name, int64_t r, int64_t cols) const {
    const float* w = data(name) + r * cols;
    return Vec(w, w + cols);
  }
  Vec matvec(const std::string& name, const Vec& x, int64_t rows) const {
    const float* w = data(name);
    const auto cols = static_cast<int64_t>(x.size());
    Vec y(static_cast<size_t>(rows), 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < cols; ++i) y[static_cast<size_t>(r)] += static_cast<double>(w[r * cols + i]) * x[static_cast<size_t>(i)];
    return y;
  }
  Vec norm(const Vec& x, const std::string& weight) const {
    double ss = 0;
    for (double e : x) ss += e * e;
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + c_.rms_norm_eps);
    const float* w = data(weight);
    Vec y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * ((c_.is_gemma() ? 1.0 : 0.0) + w[i]);
    return y;
  }
  static void add(Vec& x, const Vec& y) {
    for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
  }
  // Head `hd` of q or k: its q/k norm (if any), then RoPE (rotate-half) at position t.
  void head_rope(Vec& x, int64_t hd, int64_t d, const std::string& norm_weight, const RopeFrequencies& f, int64_t t) const {
    Vec head(x.begin() + hd * d, x.begin() + (hd + 1) * d);
    if (c_.qk_norm) head = norm(head, norm_weight);
    for (int64_t i = 0; i < d / 2; ++i) {
      const double a = static_cast<double>(t) * f.inv_freq[static_cast<size_t>(i)];
      const double cs = std::cos(a) * f.attention_scaling, sn = std::sin(a) * f.attention_scaling;
      const double x0 = head[static_cast<size_t>(i)], x1 = head[static_cast<size_t>(i + d / 2)];
      x[static_cast<size_t>(hd * d + i)] = x0 * cs - x1 * sn;
      x[static_cast<size_t>(hd * d + i + d / 2)] = x1 * cs + x0 * sn;
    }
  }
  Vec mlp(const std::string& p, const char* gate, const char* up, const char* down, const Vec& x, bool gelu,
          int64_t width = 0) const {
    const int64_t inter = width > 0 ? width : c_.intermediate_size;
    const Vec g = matvec(p + gate, x, inter), u = matvec(p + up, x, inter);
    Vec a(static_cast<size_t>(inter));
    for (size_t i = 0; i < a.size(); ++i) {
      const double z = g[i];
      const double act = gelu ? 0.5 * z * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (z + 0.044715 * z * z * z)))
                              : z / (1 + std::exp(-z));
      a[i] = act * u[i];
    }
    return matvec(p + down, a, c_.hidden_size);
  }
  Vec moe(int64_t layer, const Vec& hn) const {
    const model::MoeTensorNames names = model::moe_tensor_names(c_);
    Vec y(hn.size(), 0.0);
    for (const auto& [e, w] : route(layer, hn)) {
      const Vec o = mlp(names.expert_prefix(layer, e), names.gate.c_str(), names.up.c_str(), names.down.c_str(), hn, false,
                        c_.moe_intermediate_size);
      for (size_t i = 0; i < y.size(); ++i) y[i] += w * o[i];
    }
    return y;
  }

  model::ModelConfig c_;
  std::unique_ptr<model::Checkpoint> ck_;
};

}  // namespace kiln::runtime::testing
