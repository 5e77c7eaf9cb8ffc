// An independent double-precision forward pass for the llama family, written with plain loops straight from
// the Hugging Face modelling code's definitions and sharing no code with src/exec: the yardstick the exec
// tests compare ModelRunner against. Slow (O(T²) per layer, no vectorisation) and only for tiny models.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "slmopt/ir/model.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt::testing {

using DoubleRows = std::vector<std::vector<double>>;  // [T][n]

inline std::vector<double> tensor_as_double(const Model& model, const std::string& name) {
  const std::vector<float> f = model.tensor(name).to_f32();
  return {f.begin(), f.end()};
}

// Hugging Face's default / linear / llama3 inverse frequencies, in double.
inline std::vector<double> reference_inverse_frequencies(const Config& c) {
  std::vector<double> inv;
  for (int64_t i = 0; 2 * i < c.head_dim; ++i) {
    double base = 1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / static_cast<double>(c.head_dim));
    const RopeScaling& s = c.rope_scaling;
    if (s.type == RopeScalingType::Linear) base = base / s.factor;
    if (s.type == RopeScalingType::Llama3) {
      const double wavelen = 2.0 * std::numbers::pi / base;
      const double high_freq_wavelen = static_cast<double>(s.original_max_position) / s.high_freq_factor;
      const double low_freq_wavelen = static_cast<double>(s.original_max_position) / s.low_freq_factor;
      if (wavelen < high_freq_wavelen) {
        // high frequency: unchanged
      } else if (wavelen > low_freq_wavelen) {
        base = base / s.factor;
      } else {
        const double smooth =
            (static_cast<double>(s.original_max_position) / wavelen - s.low_freq_factor) /
            (s.high_freq_factor - s.low_freq_factor);
        base = (1.0 - smooth) * (base / s.factor) + smooth * base;
      }
    }
    inv.push_back(base);
  }
  return inv;
}

inline std::vector<double> reference_rms_norm(const std::vector<double>& x, const std::vector<double>& w,
                                              double eps) {
  double mean_square = 0;
  for (double v : x) mean_square += v * v;
  mean_square /= static_cast<double>(x.size());
  const double inv = 1.0 / std::sqrt(mean_square + eps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
  return y;
}

// W [out, in] row-major times x, plus bias when given.
inline std::vector<double> reference_matvec(const std::vector<double>& w, const std::vector<double>& x,
                                            const std::vector<double>* bias) {
  const size_t in = x.size(), out = w.size() / in;
  std::vector<double> y(out, 0.0);
  for (size_t o = 0; o < out; ++o) {
    double s = bias ? (*bias)[o] : 0.0;
    for (size_t i = 0; i < in; ++i) s += w[o * in + i] * x[i];
    y[o] = s;
  }
  return y;
}

// Logits [T][vocab] of the window `tokens` at positions 0..T-1.
inline DoubleRows reference_logits(const Model& m, const std::vector<int32_t>& tokens) {
  const Config& c = m.config;
  const size_t T = tokens.size();
  const int64_t H = c.hidden_size, hd = c.head_dim, half = hd / 2;
  const std::vector<double> inv_freq = reference_inverse_frequencies(c);
  const std::vector<double> emb = tensor_as_double(m, names::kEmbedTokens);

  DoubleRows x(T, std::vector<double>(static_cast<size_t>(H)));
  for (size_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < H; ++i) x[t][i] = emb[static_cast<size_t>(tokens[t] * H + i)];

  auto rotate = [&](std::vector<double>& v, int64_t n_heads, double position) {
    for (int64_t h = 0; h < n_heads; ++h)
      for (int64_t i = 0; i < half; ++i) {
        const double angle = position * inv_freq[static_cast<size_t>(i)];
        const double a = v[h * hd + i], b = v[h * hd + i + half];
        v[h * hd + i] = a * std::cos(angle) - b * std::sin(angle);
        v[h * hd + i + half] = b * std::cos(angle) + a * std::sin(angle);
      }
  };

  for (int64_t l = 0; l < c.num_layers; ++l) {
    const int64_t nh = c.heads(l), nkv = c.kv_heads(l);
    const auto attn_norm = tensor_as_double(m, names::attn_norm(l));
    const auto ffn_norm = tensor_as_double(m, names::ffn_norm(l));
    const auto wq = tensor_as_double(m, names::q_proj(l)), wk = tensor_as_double(m, names::k_proj(l));
    const auto wv = tensor_as_double(m, names::v_proj(l)), wo = tensor_as_double(m, names::o_proj(l));
    const auto wg = tensor_as_double(m, names::gate_proj(l)), wu = tensor_as_double(m, names::up_proj(l));
    const auto wd = tensor_as_double(m, names::down_proj(l));
    std::vector<double> bq, bk, bv, bo;
    if (c.attention_bias) {
      bq = tensor_as_double(m, names::q_bias(l));
      bk = tensor_as_double(m, names::k_bias(l));
      bv = tensor_as_double(m, names::v_bias(l));
    }
    if (c.attention_out_bias) bo = tensor_as_double(m, names::o_bias(l));

    DoubleRows q(T), k(T), v(T);
    for (size_t t = 0; t < T; ++t) {
      const auto n = reference_rms_norm(x[t], attn_norm, c.norm_eps);
      q[t] = reference_matvec(wq, n, c.attention_bias ? &bq : nullptr);
      k[t] = reference_matvec(wk, n, c.attention_bias ? &bk : nullptr);
      v[t] = reference_matvec(wv, n, c.attention_bias ? &bv : nullptr);
      rotate(q[t], nh, static_cast<double>(t));
      rotate(k[t], nkv, static_cast<double>(t));
    }
    for (size_t t = 0; t < T; ++t) {
      std::vector<double> attended(static_cast<size_t>(nh * hd), 0.0);
      for (int64_t h = 0; h < nh; ++h) {
        const int64_t g = h / (nh / nkv);
        std::vector<double> p(t + 1);
        double max_score = -1e300;
        for (size_t j = 0; j <= t; ++j) {
          double s = 0;
          for (int64_t d = 0; d < hd; ++d) s += q[t][h * hd + d] * k[j][g * hd + d];
          p[j] = s / std::sqrt(static_cast<double>(hd));
          max_score = std::max(max_score, p[j]);
        }
        double total = 0;
        for (double& e : p) total += (e = std::exp(e - max_score));
        for (size_t j = 0; j <= t; ++j)
          for (int64_t d = 0; d < hd; ++d) attended[h * hd + d] += p[j] / total * v[j][g * hd + d];
      }
      const auto o = reference_matvec(wo, attended, c.attention_out_bias ? &bo : nullptr);
      for (int64_t i = 0; i < H; ++i) x[t][i] += o[i];

      const auto n = reference_rms_norm(x[t], ffn_norm, c.norm_eps);
      auto gate = reference_matvec(wg, n, nullptr);
      const auto up = reference_matvec(wu, n, nullptr);
      for (size_t i = 0; i < gate.size(); ++i) gate[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
      const auto down = reference_matvec(wd, gate, nullptr);
      for (int64_t i = 0; i < H; ++i) x[t][i] += down[i];
    }
  }
  const auto final_norm = tensor_as_double(m, names::kFinalNorm);
  const auto head = tensor_as_double(m, c.tie_word_embeddings ? names::kEmbedTokens : names::kLmHead);
  DoubleRows logits(T);
  for (size_t t = 0; t < T; ++t) logits[t] = reference_matvec(head, reference_rms_norm(x[t], final_norm, c.norm_eps), nullptr);
  return logits;
}

}  // namespace slmopt::testing
