// Header-only (the consumer binary globs only *_test.cpp). A double-precision forward pass for every decoder the
// description (ir/config.h) states, written with plain loops from the Hugging Face modelling files' definitions
// (modeling_llama/phi/phi3/qwen3/gemma2/gemma3/smollm3/granite/olmo2/gpt2) and sharing no code with src/: the
// yardstick the ONNX Runtime family tests compare against. Slow (O(T²) per layer) and only for tiny models.
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

using Rows = std::vector<std::vector<double>>;  // [T][n]

namespace decoder_reference_detail {

inline std::vector<double> values(const Model& m, const std::string& name) {
  const std::vector<float> f = m.tensor(name).to_f32();
  return {f.begin(), f.end()};
}

inline std::vector<double> matvec(const std::vector<double>& w, const std::vector<double>& x,
                                  const std::vector<double>* bias) {
  const size_t in = x.size(), out = w.size() / in;
  std::vector<double> y(out);
  for (size_t o = 0; o < out; ++o) {
    double s = bias ? (*bias)[o] : 0.0;
    for (size_t i = 0; i < in; ++i) s += w[o * in + i] * x[i];
    y[o] = s;
  }
  return y;
}

inline double gelu_tanh(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
}

// RMSNorm or LayerNorm of x[offset, offset + n) in place; Gemma's norms scale by (1 + w).
inline void norm(const Config& c, std::vector<double>& x, size_t offset, size_t n, const std::vector<double>& w,
                 const std::vector<double>* b) {
  double mean = 0;
  if (c.norm_kind == NormKind::LayerNorm) {
    for (size_t i = 0; i < n; ++i) mean += x[offset + i];
    mean /= static_cast<double>(n);
  }
  double var = 0;
  for (size_t i = 0; i < n; ++i) var += (x[offset + i] - mean) * (x[offset + i] - mean);
  var /= static_cast<double>(n);
  const double inv = 1 / std::sqrt(var + c.norm_eps);
  for (size_t i = 0; i < n; ++i) {
    const double scale = c.norm_unit_offset ? 1 + w[i] : w[i];
    x[offset + i] = (x[offset + i] - mean) * inv * scale + (b ? (*b)[i] : 0.0);
  }
}

// HF rope_init functions over the rotary dims: default, linear, llama3, longrope (short or long divisors).
inline std::vector<double> inverse_frequencies(const Config& c, int64_t layer, bool long_factors) {
  const int64_t rot = c.rotary_dim > 0 ? c.rotary_dim : c.head_dim;
  const bool sliding = c.sliding_window > 0 && (c.layer_sliding.empty() || c.layer_sliding[layer] != 0);
  const bool local_base = c.rope_local_theta > 0 && sliding;
  const double base = local_base ? c.rope_local_theta : c.rope_theta;
  const RopeScaling& s = c.rope_scaling;
  std::vector<double> inv;
  for (int64_t i = 0; 2 * i < rot; ++i) {
    double f = 1.0 / std::pow(base, static_cast<double>(2 * i) / static_cast<double>(rot));
    if (!local_base) {
      if (s.type == RopeScalingType::Linear) f /= s.factor;
      if (s.type == RopeScalingType::LongRope) f /= (long_factors ? s.long_factor : s.short_factor)[i];
      if (s.type == RopeScalingType::Llama3) {
        const double wavelen = 2 * std::numbers::pi / f, old = static_cast<double>(s.original_max_position);
        if (wavelen > old / s.low_freq_factor) {
          f /= s.factor;
        } else if (wavelen >= old / s.high_freq_factor) {
          const double smooth = (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
          f = (1 - smooth) * f / s.factor + smooth * f;
        }
      }
    }
    inv.push_back(f);
  }
  return inv;
}

}  // namespace decoder_reference_detail

// Logits [T][vocab] of `tokens` at positions 0..T−1 in one call (only the last row when last_only, the others
// left empty). LongRoPE picks its long factors when the call's largest position reaches original_max_position
// (Hugging Face's Phi-3 rule).
inline Rows decoder_reference_logits(const Model& m, const std::vector<int32_t>& tokens, bool last_only = false) {
  namespace d = decoder_reference_detail;
  const Config& c = m.config;
  const size_t T = tokens.size();
  const int64_t H = c.hidden_size, hd = c.head_dim;
  const int64_t rot = c.rotary_dim > 0 ? c.rotary_dim : c.head_dim, half = rot / 2;
  const bool long_factors = c.rope_scaling.type == RopeScalingType::LongRope &&
                            static_cast<int64_t>(T) > c.rope_scaling.original_max_position;
  const double magnitude = c.rope_scaling.type == RopeScalingType::LongRope ? c.rope_scaling.attention_factor : 1.0;
  const double scale = c.attn_scale > 0 ? c.attn_scale : 1 / std::sqrt(static_cast<double>(hd));
  const auto opt = [&](bool present, const std::string& name) { return present ? d::values(m, name) : std::vector<double>{}; };
  const auto ptr = [](const std::vector<double>& v) { return v.empty() ? nullptr : &v; };

  const auto emb = d::values(m, names::kEmbedTokens);
  const auto pos_emb = opt(c.position_kind == PositionKind::Learned, names::kPositionEmbedding);
  Rows x(T, std::vector<double>(static_cast<size_t>(H)));
  for (size_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < H; ++i) {
      x[t][i] = emb[static_cast<size_t>(tokens[t] * H + i)] * c.embedding_scale;
      if (!pos_emb.empty()) x[t][i] += pos_emb[t * H + i];
    }

  for (int64_t l = 0; l < c.num_layers; ++l) {
    const int64_t nh = c.layer_num_heads.empty() ? c.num_heads : c.layer_num_heads[l];
    const int64_t nkv = c.layer_num_kv_heads.empty() ? c.num_kv_heads : c.layer_num_kv_heads[l];
    const bool pre = c.norm_placement != NormPlacement::Post, post = c.norm_placement != NormPlacement::Pre;
    const bool parallel = c.residual_layout == ResidualLayout::Parallel;
    const bool sliding = c.sliding_window > 0 && (c.layer_sliding.empty() || c.layer_sliding[l] != 0);
    const bool rope = c.position_kind == PositionKind::Rope && (c.layer_no_rope.empty() || c.layer_no_rope[l] == 0);
    const bool gate = c.mlp_kind != MlpKind::GeluTanh;
    const auto attn_norm = opt(pre, names::attn_norm(l)), attn_norm_b = opt(pre && c.norm_bias, names::attn_norm_bias(l));
    const auto ffn_norm = opt(pre && !parallel, names::ffn_norm(l));
    const auto ffn_norm_b = opt(pre && !parallel && c.norm_bias, names::ffn_norm_bias(l));
    const auto attn_post = opt(post, names::attn_post_norm(l)), ffn_post = opt(post, names::ffn_post_norm(l));
    const auto wq = d::values(m, names::q_proj(l)), wk = d::values(m, names::k_proj(l));
    const auto wv = d::values(m, names::v_proj(l)), wo = d::values(m, names::o_proj(l));
    const auto bq = opt(c.attention_bias, names::q_bias(l)), bk = opt(c.attention_bias, names::k_bias(l));
    const auto bv = opt(c.attention_bias, names::v_bias(l)), bo = opt(c.attention_out_bias, names::o_bias(l));
    const auto qn = opt(c.qk_norm != QkNormKind::None, names::q_norm(l));
    const auto kn = opt(c.qk_norm != QkNormKind::None, names::k_norm(l));
    const auto wg = opt(gate, names::gate_proj(l)), wu = d::values(m, names::up_proj(l));
    const auto wd = d::values(m, names::down_proj(l));
    const auto bg = opt(gate && c.mlp_bias, names::gate_bias(l)), bu = opt(c.mlp_bias, names::up_bias(l));
    const auto bd = opt(c.mlp_bias, names::down_bias(l));
    const auto inv = d::inverse_frequencies(c, l, long_factors);

    auto rotate = [&](std::vector<double>& v, int64_t heads, double p) {
      if (!rope) return;
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < half; ++i) {
          const double cs = std::cos(p * inv[i]) * magnitude, sn = std::sin(p * inv[i]) * magnitude;
          const double a = v[h * hd + i], b = v[h * hd + i + half];
          v[h * hd + i] = a * cs - b * sn;
          v[h * hd + i + half] = b * cs + a * sn;
        }
    };
    auto qk = [&](std::vector<double>& v, int64_t heads, const std::vector<double>& w) {
      if (c.qk_norm == QkNormKind::Whole) {
        Config rms = c;
        rms.norm_kind = NormKind::RmsNorm;
        d::norm(rms, v, 0, v.size(), w, nullptr);
      } else if (c.qk_norm == QkNormKind::PerHead) {
        Config rms = c;
        rms.norm_kind = NormKind::RmsNorm;
        for (int64_t h = 0; h < heads; ++h) d::norm(rms, v, static_cast<size_t>(h * hd), static_cast<size_t>(hd), w, nullptr);
      }
    };
    auto mlp = [&](const std::vector<double>& h) {
      const auto up = d::matvec(wu, h, ptr(bu));
      std::vector<double> act(up.size());
      if (!gate) {
        for (size_t i = 0; i < up.size(); ++i) act[i] = d::gelu_tanh(up[i]);
      } else {
        const auto g = d::matvec(wg, h, ptr(bg));
        for (size_t i = 0; i < up.size(); ++i)
          act[i] = (c.mlp_kind == MlpKind::SwiGlu ? g[i] / (1 + std::exp(-g[i])) : d::gelu_tanh(g[i])) * up[i];
      }
      auto y = d::matvec(wd, act, ptr(bd));
      if (post) d::norm(c, y, 0, y.size(), ffn_post, nullptr);
      return y;
    };

    Rows hs(T), q(T), k(T), v(T);
    for (size_t t = 0; t < T; ++t) {
      hs[t] = x[t];
      if (pre) d::norm(c, hs[t], 0, static_cast<size_t>(H), attn_norm, ptr(attn_norm_b));
      q[t] = d::matvec(wq, hs[t], ptr(bq));
      k[t] = d::matvec(wk, hs[t], ptr(bk));
      v[t] = d::matvec(wv, hs[t], ptr(bv));
      qk(q[t], nh, qn);
      qk(k[t], nkv, kn);
      rotate(q[t], nh, static_cast<double>(t));
      rotate(k[t], nkv, static_cast<double>(t));
    }
    for (size_t t = 0; t < T; ++t) {
      std::vector<double> att(static_cast<size_t>(nh * hd), 0.0);
      for (int64_t h = 0; h < nh; ++h) {
        const int64_t g = h / (nh / nkv);
        const size_t first = sliding && t + 1 > static_cast<size_t>(c.sliding_window) ? t + 1 - c.sliding_window : 0;
        std::vector<double> p(t + 1, 0.0);
        double best = -1e300;
        for (size_t j = first; j <= t; ++j) {
          double s = 0;
          for (int64_t e = 0; e < hd; ++e) s += q[t][h * hd + e] * k[j][g * hd + e];
          s *= scale;
          if (c.attn_softcap > 0) s = c.attn_softcap * std::tanh(s / c.attn_softcap);
          best = std::max(best, p[j] = s);
        }
        double total = 0;
        for (size_t j = first; j <= t; ++j) total += (p[j] = std::exp(p[j] - best));
        for (size_t j = first; j <= t; ++j)
          for (int64_t e = 0; e < hd; ++e) att[h * hd + e] += p[j] / total * v[j][g * hd + e];
      }
      auto a = d::matvec(wo, att, ptr(bo));
      if (post) d::norm(c, a, 0, a.size(), attn_post, nullptr);
      if (parallel) {
        const auto f = mlp(hs[t]);
        for (int64_t i = 0; i < H; ++i) x[t][i] += c.residual_scale * (a[i] + f[i]);
        continue;
      }
      for (int64_t i = 0; i < H; ++i) x[t][i] += c.residual_scale * a[i];
      std::vector<double> h2 = x[t];
      if (pre) d::norm(c, h2, 0, static_cast<size_t>(H), ffn_norm, ptr(ffn_norm_b));
      const auto f = mlp(h2);
      for (int64_t i = 0; i < H; ++i) x[t][i] += c.residual_scale * f[i];
    }
  }
  const auto final_norm = d::values(m, names::kFinalNorm);
  const auto final_b = opt(c.norm_bias, names::kFinalNormBias);
  const auto head = d::values(m, m.has(names::kLmHead) ? names::kLmHead : names::kEmbedTokens);
  const auto head_b = opt(c.lm_head_bias, names::kLmHeadBias);
  Rows logits(T);
  for (size_t t = last_only ? T - 1 : 0; t < T; ++t) {
    d::norm(c, x[t], 0, static_cast<size_t>(H), final_norm, ptr(final_b));
    logits[t] = d::matvec(head, x[t], ptr(head_b));
    for (double& z : logits[t]) {
      z *= c.logit_scale;
      if (c.final_logit_softcap > 0) z = c.final_logit_softcap * std::tanh(z / c.final_logit_softcap);
    }
  }
  return logits;
}

// Greedy continuation by full recompute (each step re-runs the whole sequence, as Hugging Face without a cache).
inline std::vector<int32_t> decoder_reference_greedy(const Model& m, std::vector<int32_t> ids, size_t n) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < n; ++i) {
    const auto last = decoder_reference_logits(m, ids, true).back();
    const auto best = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    out.push_back(best);
    ids.push_back(best);
  }
  return out;
}

}  // namespace slmopt::testing
