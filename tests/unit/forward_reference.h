// An independent double-precision forward pass for every decoder the IR describes, written with plain loops
// straight from the Hugging Face modelling code of each family and sharing no code with src/exec: the yardstick
// the exec tests compare ModelRunner against, and the ONNX Runtime family tests (consumers/) compare ORT against.
// Slow (O(T²) per layer, no vectorisation) and only for tiny models.
//
// The definitions it follows (HF transformers, modeling_<family>.py):
// - RMSNorm: x / sqrt(mean(x²) + eps) · w; Gemma's: · (1 + w) (also its q/k norms). LayerNorm (GPT-2, Phi-2):
//   (x − mean) / sqrt(var + eps) · w + b, biased variance.
// - Norm placement: Pre (Llama), Sandwich (Gemma-2/3: x + post_norm(f(pre_norm(x)))), Post (OLMo-2:
//   x + post_norm(f(x))); Parallel residual (Phi-2): x + attn(ln(x)) + mlp(ln(x)).
// - q/k norms: Qwen3/Gemma-3 per head over head_dim, OLMo-2 over the whole projection; before RoPE.
// - RoPE: rotate_half on the first rotary_dim values of each head; inv_freq = theta^(−2i/rotary_dim) with
//   linear / llama3 / longrope scaling (longrope: 1 / (ext_i · theta^(2i/d)), long factors when the window's
//   length exceeds original_max_position, cos and sin × attention_factor); Gemma-3 local layers: their own base,
//   no scaling; NoPE layers (SmolLM3): none.
// - Scores: q·k × scale (default 1/sqrt(head_dim)); Gemma-2 soft-cap cap·tanh(s / cap) before the mask; sliding
//   window: query t sees keys j with t − window < j ≤ t.
// - MLP: SwiGLU silu(g)·u, GeGLU gelu_tanh(g)·u, GELU (no gate) gelu_tanh(u); gelu_tanh(x) =
//   0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))).
// - Embeddings × embedding_scale (+ learned position rows); residual branches × residual_scale (Granite);
//   logits (+ lm_head bias) × logit_scale, then final soft-cap (Gemma-2).
#pragma once

#include <algorithm>
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

// Hugging Face's default / linear / llama3 / longrope inverse frequencies over `dims` rotated values, in double.
inline std::vector<double> reference_inverse_frequencies(const Config& c, double theta, bool scaled, int64_t dims,
                                                         bool long_factors) {
  std::vector<double> inv;
  const RopeScaling& s = c.rope_scaling;
  for (int64_t i = 0; 2 * i < dims; ++i) {
    double base = 1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(dims));
    if (scaled && s.type == RopeScalingType::Linear) base = base / s.factor;
    if (scaled && s.type == RopeScalingType::Llama3) {
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
    if (scaled && s.type == RopeScalingType::LongRope) {
      const double ext = (long_factors ? s.long_factor : s.short_factor)[static_cast<size_t>(i)];
      base = 1.0 / (ext * std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(dims)));
    }
    inv.push_back(base);
  }
  return inv;
}

// The global layers' frequencies (what the llama tests have always compared).
inline std::vector<double> reference_inverse_frequencies(const Config& c) {
  return reference_inverse_frequencies(c, c.rope_theta, true, c.rotary_dim > 0 ? c.rotary_dim : c.head_dim, false);
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

inline std::vector<double> reference_layer_norm(const std::vector<double>& x, const std::vector<double>& w,
                                                const std::vector<double>* b, double eps) {
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(x.size());
  for (double v : x) var += (v - mean) * (v - mean);
  var /= static_cast<double>(x.size());
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - mean) / std::sqrt(var + eps) * w[i] + (b ? (*b)[i] : 0.0);
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

inline double reference_gelu_tanh(double x) {
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
}

namespace detail {

// A norm as the description places it: weight (and bias) by name; (1 + w) on unit-offset models.
struct RefNorm {
  std::vector<double> w, b;
  bool present = false;
};

inline RefNorm load_norm(const Model& m, const std::string& weight, const std::string& bias, bool with_bias) {
  RefNorm n;
  n.present = true;
  n.w = tensor_as_double(m, weight);
  if (m.config.norm_unit_offset)
    for (double& v : n.w) v += 1.0;
  if (with_bias) n.b = tensor_as_double(m, bias);
  return n;
}

inline std::vector<double> apply_norm(const Config& c, const RefNorm& n, const std::vector<double>& x) {
  if (c.norm_kind == NormKind::LayerNorm) return reference_layer_norm(x, n.w, n.b.empty() ? nullptr : &n.b, c.norm_eps);
  return reference_rms_norm(x, n.w, c.norm_eps);
}

inline std::vector<double> optional_bias(const Model& m, bool present, const std::string& name) {
  return present ? tensor_as_double(m, name) : std::vector<double>{};
}

}  // namespace detail

// Logits [T][vocab] of the window `tokens` at positions 0..T-1 (only the last row when last_only, the others left
// empty).
inline DoubleRows reference_logits(const Model& m, const std::vector<int32_t>& tokens, bool last_only = false) {
  using detail::RefNorm;
  const Config& c = m.config;
  const size_t T = tokens.size();
  const int64_t H = c.hidden_size, hd = c.head_dim;
  const int64_t rd = c.rotary_dim > 0 ? c.rotary_dim : hd, half = rd / 2;
  const bool pre = c.norm_placement != NormPlacement::Post;
  const bool post = c.norm_placement != NormPlacement::Pre;
  const bool ln_bias = c.norm_bias;
  const std::vector<double> emb = tensor_as_double(m, names::kEmbedTokens);

  DoubleRows x(T, std::vector<double>(static_cast<size_t>(H)));
  std::vector<double> pos_table;
  if (c.position_kind == PositionKind::Learned) pos_table = tensor_as_double(m, names::kPositionEmbedding);
  for (size_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < H; ++i) {
      x[t][i] = emb[static_cast<size_t>(tokens[t] * H + i)] * c.embedding_scale;
      if (!pos_table.empty()) x[t][i] += pos_table[static_cast<size_t>(static_cast<int64_t>(t) * H + i)];
    }

  // LongRope picks its factor set by the window length (Hugging Face: max(position_ids) + 1).
  const bool long_factors = c.rope_scaling.type == RopeScalingType::LongRope &&
                            static_cast<int64_t>(T) > c.rope_scaling.original_max_position;

  auto mix = [](const std::vector<double>& w, const std::vector<double>& v, const std::vector<double>& b) {
    return reference_matvec(w, v, b.empty() ? nullptr : &b);
  };
  auto rms_over = [&](std::vector<double>& v, int64_t offset, int64_t n, const std::vector<double>& w) {
    double ms = 0;
    for (int64_t i = 0; i < n; ++i) ms += v[offset + i] * v[offset + i];
    ms /= static_cast<double>(n);
    const double inv = 1.0 / std::sqrt(ms + c.norm_eps);
    for (int64_t i = 0; i < n; ++i) v[offset + i] = v[offset + i] * inv * w[i];
  };

  for (int64_t l = 0; l < c.num_layers; ++l) {
    const int64_t nh = c.heads(l), nkv = c.kv_heads(l);
    const bool sliding = c.sliding_window > 0 && (c.layer_sliding.empty() || c.layer_sliding[l] != 0);
    const bool local_base = sliding && c.rope_local_theta > 0;
    const bool rope = c.position_kind == PositionKind::Rope && (c.layer_no_rope.empty() || c.layer_no_rope[l] == 0);
    const double theta = local_base ? c.rope_local_theta : c.rope_theta;
    const bool scaled = !local_base && c.rope_scaling.type != RopeScalingType::None;
    const std::vector<double> inv_freq = reference_inverse_frequencies(c, theta, scaled, rd, long_factors);
    const double rope_magnitude =
        scaled && c.rope_scaling.type == RopeScalingType::LongRope ? c.rope_scaling.attention_factor : 1.0;
    const double scale = c.attn_scale > 0 ? c.attn_scale : 1.0 / std::sqrt(static_cast<double>(hd));

    RefNorm attn_norm, ffn_norm, attn_post, ffn_post, q_norm, k_norm;
    if (pre) attn_norm = detail::load_norm(m, names::attn_norm(l), names::attn_norm_bias(l), ln_bias);
    if (pre && c.residual_layout == ResidualLayout::Sequential)
      ffn_norm = detail::load_norm(m, names::ffn_norm(l), names::ffn_norm_bias(l), ln_bias);
    if (post) {
      attn_post = detail::load_norm(m, names::attn_post_norm(l), "", false);
      ffn_post = detail::load_norm(m, names::ffn_post_norm(l), "", false);
    }
    if (c.qk_norm != QkNormKind::None) {
      q_norm = detail::load_norm(m, names::q_norm(l), "", false);
      k_norm = detail::load_norm(m, names::k_norm(l), "", false);
    }
    const auto wq = tensor_as_double(m, names::q_proj(l)), wk = tensor_as_double(m, names::k_proj(l));
    const auto wv = tensor_as_double(m, names::v_proj(l)), wo = tensor_as_double(m, names::o_proj(l));
    const bool gated = c.mlp_kind != MlpKind::GeluTanh;
    const auto wg = gated ? tensor_as_double(m, names::gate_proj(l)) : std::vector<double>{};
    const auto wu = tensor_as_double(m, names::up_proj(l)), wd = tensor_as_double(m, names::down_proj(l));
    const auto bq = detail::optional_bias(m, c.attention_bias, names::q_bias(l));
    const auto bk = detail::optional_bias(m, c.attention_bias, names::k_bias(l));
    const auto bv = detail::optional_bias(m, c.attention_bias, names::v_bias(l));
    const auto bo = detail::optional_bias(m, c.attention_out_bias, names::o_bias(l));
    const auto bg = detail::optional_bias(m, c.mlp_bias && gated, names::gate_bias(l));
    const auto bu = detail::optional_bias(m, c.mlp_bias, names::up_bias(l));
    const auto bd = detail::optional_bias(m, c.mlp_bias, names::down_bias(l));

    auto rotate = [&](std::vector<double>& v, int64_t n_heads, double position) {
      for (int64_t h = 0; h < n_heads; ++h)
        for (int64_t i = 0; i < half; ++i) {
          const double angle = position * inv_freq[static_cast<size_t>(i)];
          const double cs = std::cos(angle) * rope_magnitude, sn = std::sin(angle) * rope_magnitude;
          const double a = v[h * hd + i], b = v[h * hd + i + half];
          v[h * hd + i] = a * cs - b * sn;
          v[h * hd + i + half] = b * cs + a * sn;
        }
    };
    auto mlp = [&](const std::vector<double>& in) {
      std::vector<double> act;
      if (gated) {
        act = mix(wg, in, bg);
        const auto up = mix(wu, in, bu);
        for (size_t i = 0; i < act.size(); ++i)
          act[i] = (c.mlp_kind == MlpKind::SwiGlu ? act[i] / (1.0 + std::exp(-act[i])) : reference_gelu_tanh(act[i])) *
                   up[i];
      } else {
        act = mix(wu, in, bu);
        for (double& a : act) a = reference_gelu_tanh(a);
      }
      return mix(wd, act, bd);
    };

    // Attention inputs for every position first (keys and values of earlier positions are needed).
    DoubleRows attn_in(T), q(T), k(T), v(T);
    for (size_t t = 0; t < T; ++t) {
      attn_in[t] = pre ? detail::apply_norm(c, attn_norm, x[t]) : x[t];
      q[t] = mix(wq, attn_in[t], bq);
      k[t] = mix(wk, attn_in[t], bk);
      v[t] = mix(wv, attn_in[t], bv);
      if (c.qk_norm == QkNormKind::PerHead) {
        for (int64_t h = 0; h < nh; ++h) rms_over(q[t], h * hd, hd, q_norm.w);
        for (int64_t h = 0; h < nkv; ++h) rms_over(k[t], h * hd, hd, k_norm.w);
      } else if (c.qk_norm == QkNormKind::Whole) {
        rms_over(q[t], 0, nh * hd, q_norm.w);
        rms_over(k[t], 0, nkv * hd, k_norm.w);
      }
      if (rope) {
        rotate(q[t], nh, static_cast<double>(t));
        rotate(k[t], nkv, static_cast<double>(t));
      }
    }
    for (size_t t = 0; t < T; ++t) {
      std::vector<double> attended(static_cast<size_t>(nh * hd), 0.0);
      const size_t first = sliding && static_cast<int64_t>(t) >= c.sliding_window
                               ? t - static_cast<size_t>(c.sliding_window) + 1
                               : 0;
      for (int64_t h = 0; h < nh; ++h) {
        const int64_t g = h / (nh / nkv);
        std::vector<double> p(t + 1, 0.0);
        double max_score = -1e300;
        for (size_t j = first; j <= t; ++j) {
          double s = 0;
          for (int64_t d = 0; d < hd; ++d) s += q[t][h * hd + d] * k[j][g * hd + d];
          s *= scale;
          if (c.attn_softcap > 0) s = c.attn_softcap * std::tanh(s / c.attn_softcap);
          p[j] = s;
          max_score = std::max(max_score, s);
        }
        double total = 0;
        for (size_t j = first; j <= t; ++j) total += (p[j] = std::exp(p[j] - max_score));
        for (size_t j = first; j <= t; ++j)
          for (int64_t d = 0; d < hd; ++d) attended[h * hd + d] += p[j] / total * v[j][g * hd + d];
      }
      auto a = mix(wo, attended, bo);
      if (c.residual_layout == ResidualLayout::Parallel) {
        auto f = mlp(attn_in[t]);
        if (post) {
          a = detail::apply_norm(c, attn_post, a);
          f = detail::apply_norm(c, ffn_post, f);
        }
        for (int64_t i = 0; i < H; ++i) x[t][i] += c.residual_scale * (a[i] + f[i]);
        continue;
      }
      if (post) a = detail::apply_norm(c, attn_post, a);
      for (int64_t i = 0; i < H; ++i) x[t][i] += c.residual_scale * a[i];
      auto f = mlp(pre ? detail::apply_norm(c, ffn_norm, x[t]) : x[t]);
      if (post) f = detail::apply_norm(c, ffn_post, f);
      for (int64_t i = 0; i < H; ++i) x[t][i] += c.residual_scale * f[i];
    }
  }
  const RefNorm final_norm = detail::load_norm(m, names::kFinalNorm, names::kFinalNormBias, ln_bias);
  const auto head = tensor_as_double(m, c.tie_word_embeddings ? names::kEmbedTokens : names::kLmHead);
  const auto head_bias = detail::optional_bias(m, c.lm_head_bias, names::kLmHeadBias);
  DoubleRows logits(T);
  for (size_t t = last_only ? T - 1 : 0; t < T; ++t) {
    logits[t] = mix(head, detail::apply_norm(c, final_norm, x[t]), head_bias);
    for (double& z : logits[t]) {
      z *= c.logit_scale;
      if (c.final_logit_softcap > 0) z = c.final_logit_softcap * std::tanh(z / c.final_logit_softcap);
    }
  }
  return logits;
}

// Greedy continuation by full recompute (each step re-runs the whole sequence, as Hugging Face without a cache).
inline std::vector<int32_t> reference_greedy(const Model& m, std::vector<int32_t> ids, size_t n) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < n; ++i) {
    const std::vector<double> last = reference_logits(m, ids, true).back();
    const auto best = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    out.push_back(best);
    ids.push_back(best);
  }
  return out;
}

}  // namespace slmopt::testing
