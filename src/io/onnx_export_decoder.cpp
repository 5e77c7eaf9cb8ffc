// The decoder graph, built from the description alone (ir/config.h; never from Family):
//
//   x = Gather(embed_tokens, input_ids) · embedding_scale (+ Gather(embed_positions, position_ids))
//   per layer l, with norm(·) = RMSNorm or LayerNorm(+bias), weights 1 + w under norm_unit_offset:
//     h  = attn_norm(x)                        (Pre / Sandwich; Post feeds x itself)
//     q, k, v = h·Wᵀ (+b); q/k norm (per head or whole); RoPE on the first rotary_dims values of each head
//       (per-layer base and scaling, none on NoPE layers); present = Concat(past, k/v)
//     a  = o_proj(softmax(softcap(q·Kᵀ · scale) + mask) · V)     mask: causal, padding, sliding window
//     a  = attn_post_norm(a)                    (Sandwich / Post)
//     Sequential: x += residual_scale · a; m = mlp(ffn_norm(x)) [→ ffn_post_norm]; x += residual_scale · m
//     Parallel:   x += residual_scale · (a + mlp(h))
//   logits = final_softcap(logit_scale · (final_norm(x) · headᵀ (+ lm_head.bias)))
//
// With fused_ops the attention core is com.microsoft GroupQueryAttention and RMSNorm is
// SimplifiedLayerNormalization (onnx_export_fused.cpp); everything else is shared.
#include <cmath>
#include <numbers>

#include "onnx_export_graph.h"
#include "slmopt/core/error.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt::onnx_export_detail {
namespace {

// [B, S, n·hd] → [B, n, S, hd]
std::string to_heads(ExportContext& ctx, const std::string& x, int64_t n, int64_t head_dim, const std::string& name) {
  auto& g = ctx.graph;
  const std::string r = g.node("Reshape", name + "/Reshape", {x, g.const_i64({0, 0, n, head_dim})});
  return g.node("Transpose", name + "/Transpose", {r}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
}

// x [B, n, S, hd] → the first `rot` values of each head become x·cos + rotate_half(x)·sin, rotate_half(x) =
// concat(−x2, x1); the remaining hd − rot values pass through (partial rotary).
std::string apply_rope(ExportContext& ctx, const std::string& x, const RopeCaches& rope, int64_t head_dim,
                       int64_t rot, const std::string& name) {
  auto& g = ctx.graph;
  std::string part = x, rest;
  if (rot < head_dim) {
    const auto parts =
        g.node_n("Split", name + "/SplitRotary", {x, g.const_i64({rot, head_dim - rot})}, 2, {{"axis", int64_t{-1}}});
    part = parts[0];
    rest = parts[1];
  }
  const auto halves =
      g.node_n("Split", name + "/Split", {part, g.const_i64({rot / 2, rot / 2})}, 2, {{"axis", int64_t{-1}}});
  const std::string neg = g.node("Neg", name + "/Neg", {halves[1]});
  const std::string rotated = g.node("Concat", name + "/RotateHalf", {neg, halves[0]}, {{"axis", int64_t{-1}}});
  const std::string a = g.node("Mul", name + "/MulCos", {part, rope.cos});
  const std::string b = g.node("Mul", name + "/MulSin", {rotated, rope.sin});
  const std::string out = g.node("Add", name + "/Add", {a, b});
  if (rest.empty()) return out;
  return g.node("Concat", name + "/ConcatPass", {out, rest}, {{"axis", int64_t{-1}}});
}

// 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))) in standard ops (opset 17 has no tanh Gelu).
std::string gelu_tanh(ExportContext& ctx, const std::string& x, const std::string& name) {
  auto& g = ctx.graph;
  const std::string x3 = g.node("Mul", name + "/Cube", {g.node("Mul", name + "/Square", {x, x}), x});
  const std::string inner =
      g.node("Add", name + "/Inner", {x, g.node("Mul", name + "/MulCoef", {x3, g.const_f32(0.044715f)})});
  const float k = static_cast<float>(std::sqrt(2.0 / std::numbers::pi));
  const std::string t = g.node("Tanh", name + "/Tanh", {g.node("Mul", name + "/MulK", {inner, g.const_f32(k)})});
  const std::string one_plus = g.node("Add", name + "/OnePlus", {t, g.const_f32(1.0f)});
  return g.node("Mul", name + "/Half", {g.node("Mul", name + "/MulX", {x, one_plus}), g.const_f32(0.5f)});
}

std::string scaled(ExportContext& ctx, const std::string& x, double factor, const std::string& name) {
  if (factor == 1.0) return x;
  return ctx.graph.node("Mul", name, {x, ctx.graph.const_f32(static_cast<float>(factor))});
}

class DecoderGraph {
 public:
  explicit DecoderGraph(ExportContext& ctx) : ctx_(ctx), c_(ctx.model.config), g_(ctx.graph), rope_(ctx) {}

  void build() {
    inputs();
    std::string x = embeddings();
    if (ctx_.options.fused_ops) gqa_ = gqa_mask_inputs(ctx_);
    for (int64_t l = 0; l < c_.num_layers; ++l) x = layer(x, l);
    logits(norm(x, names::kFinalNorm, names::kFinalNormBias, "/model/norm"));
    outputs();
  }

 private:
  void inputs() {
    g_.input("input_ids", onnx::TensorProto::INT64, {kBatch, kSequence});
    g_.input("attention_mask", onnx::TensorProto::INT64, {kBatch, kTotal});
    g_.input("position_ids", onnx::TensorProto::INT64, {kBatch, kSequence});
    for (int64_t l = 0; l < c_.num_layers; ++l)
      for (const char* kind : {"key", "value"})
        g_.input(fmt::format("past_key_values.{}.{}", l, kind), onnx::TensorProto::FLOAT,
                 {kBatch, c_.kv_heads(l), kPast, c_.head_dim});
  }

  void outputs() {
    g_.output("logits", onnx::TensorProto::FLOAT, {kBatch, kSequence, c_.vocab_size});
    for (int64_t l = 0; l < c_.num_layers; ++l)
      for (const char* kind : {"key", "value"})
        g_.output(fmt::format("present.{}.{}", l, kind), onnx::TensorProto::FLOAT,
                  {kBatch, c_.kv_heads(l), kTotal, c_.head_dim});
  }

  std::string embeddings() {
    embedding_ = float_table(ctx_, names::kEmbedTokens);
    std::string x = g_.node("Gather", "/model/embed_tokens/Gather", {embedding_, "input_ids"}, {{"axis", int64_t{0}}});
    x = scaled(ctx_, x, c_.embedding_scale, "/model/embed_tokens/Scale");
    if (c_.position_kind == PositionKind::Learned) {
      const std::string table = float_table(ctx_, names::kPositionEmbedding);
      const std::string pos =
          g_.node("Gather", "/model/embed_positions/Gather", {table, "position_ids"}, {{"axis", int64_t{0}}});
      x = g_.node("Add", "/model/embed_positions/Add", {x, pos});
    }
    return x;
  }

  std::string norm(const std::string& x, const std::string& weight, const std::string& bias, const std::string& name) {
    const float eps = static_cast<float>(c_.norm_eps);
    if (c_.norm_kind == NormKind::LayerNorm) return layer_norm(ctx_, x, weight, c_.norm_bias ? bias : "", eps, name);
    if (ctx_.options.fused_ops)
      return g_.node("SimplifiedLayerNormalization", name + "/SimplifiedLayerNormalization",
                     {x, norm_weight(ctx_, weight)}, {{"axis", int64_t{-1}}, {"epsilon", eps}});
    return rms_norm(ctx_, x, weight, eps, name);
  }

  // q/k RMSNorm: over each head's values ([B, S, n·hd] → [B, S, n, hd] → back) or over the whole projection.
  std::string qk_norm(const std::string& x, const std::string& weight, int64_t n, const std::string& name) {
    const float eps = static_cast<float>(c_.norm_eps);
    if (c_.qk_norm == QkNormKind::Whole) return rms_norm(ctx_, x, weight, eps, name);
    const std::string heads = g_.node("Reshape", name + "/Split", {x, g_.const_i64({0, 0, n, c_.head_dim})});
    const std::string normed = rms_norm(ctx_, heads, weight, eps, name);
    return g_.node("Reshape", name + "/Merge", {normed, g_.const_i64({0, 0, n * c_.head_dim})});
  }

  const std::string& mask(int64_t l) {
    std::string& m = c_.layer_is_sliding(l) ? local_mask_ : global_mask_;
    if (m.empty()) m = causal_mask_bias(ctx_, c_.layer_is_sliding(l) ? c_.sliding_window : 0);
    return m;
  }

  std::string attention_block(const std::string& h, int64_t l, const std::string& p) {
    const int64_t hd = c_.head_dim, heads = c_.heads(l), kv = c_.kv_heads(l);
    const bool b = c_.attention_bias;
    std::string q = linear(ctx_, h, names::q_proj(l), b ? names::q_bias(l) : "", p + "/attn/q_proj");
    std::string k = linear(ctx_, h, names::k_proj(l), b ? names::k_bias(l) : "", p + "/attn/k_proj");
    const std::string v = linear(ctx_, h, names::v_proj(l), b ? names::v_bias(l) : "", p + "/attn/v_proj");
    if (c_.qk_norm != QkNormKind::None) {
      q = qk_norm(q, names::q_norm(l), heads, p + "/attn/q_norm");
      k = qk_norm(k, names::k_norm(l), kv, p + "/attn/k_norm");
    }
    std::string attended;
    if (ctx_.options.fused_ops) {
      attended = fused_attention(ctx_, rope_, gqa_, l, q, k, v, p + "/attn");
    } else {
      std::string qh = to_heads(ctx_, q, heads, hd, p + "/attn/q_heads");
      std::string kh = to_heads(ctx_, k, kv, hd, p + "/attn/k_heads");
      if (c_.layer_uses_rope(l)) {
        const RopeCaches& r = rope_.gathered(l);
        qh = apply_rope(ctx_, qh, r, hd, c_.rotary_dims(), p + "/attn/q_rope");
        kh = apply_rope(ctx_, kh, r, hd, c_.rotary_dims(), p + "/attn/k_rope");
      }
      const std::string vh = to_heads(ctx_, v, kv, hd, p + "/attn/v_heads");
      const std::string present_k = fmt::format("present.{}.key", l), present_v = fmt::format("present.{}.value", l);
      g_.node_named("Concat", p + "/attn/concat_key", {fmt::format("past_key_values.{}.key", l), kh}, {present_k},
                    {{"axis", int64_t{2}}});
      g_.node_named("Concat", p + "/attn/concat_value", {fmt::format("past_key_values.{}.value", l), vh}, {present_v},
                    {{"axis", int64_t{2}}});
      const std::string qs = scaled(ctx_, qh, c_.attention_scale(), p + "/attn/q_scale");
      attended = attention(ctx_, qs, present_k, present_v, mask(l), heads, kv, hd, c_.attn_softcap, p + "/attn");
    }
    return linear(ctx_, attended, names::o_proj(l), c_.attention_out_bias ? names::o_bias(l) : "", p + "/attn/o_proj");
  }

  std::string mlp(const std::string& h, int64_t l, const std::string& p) {
    const bool b = c_.mlp_bias;
    const std::string up = linear(ctx_, h, names::up_proj(l), b ? names::up_bias(l) : "", p + "/mlp/up_proj");
    std::string act;
    if (c_.mlp_kind == MlpKind::GeluTanh) {
      act = gelu_tanh(ctx_, up, p + "/mlp/act");
    } else {
      const std::string gate =
          linear(ctx_, h, names::gate_proj(l), b ? names::gate_bias(l) : "", p + "/mlp/gate_proj");
      const std::string gated =
          c_.mlp_kind == MlpKind::SwiGlu
              ? g_.node("Mul", p + "/mlp/silu", {gate, g_.node("Sigmoid", p + "/mlp/sigmoid", {gate})})
              : gelu_tanh(ctx_, gate, p + "/mlp/act");
      act = g_.node("Mul", p + "/mlp/gated", {gated, up});
    }
    return linear(ctx_, act, names::down_proj(l), b ? names::down_bias(l) : "", p + "/mlp/down_proj");
  }

  std::string layer(const std::string& x_in, int64_t l) {
    const std::string p = fmt::format("/model/layers.{}", l);
    const bool pre = c_.norm_placement != NormPlacement::Post;
    const bool post = c_.norm_placement != NormPlacement::Pre;
    std::string x = x_in;
    const std::string h =
        pre ? norm(x, names::attn_norm(l), names::attn_norm_bias(l), p + "/input_layernorm") : x;
    std::string a = attention_block(h, l, p);
    if (post) a = norm(a, names::attn_post_norm(l), "", p + "/attn_post_norm");
    if (c_.residual_layout == ResidualLayout::Parallel) {
      const std::string both = g_.node("Add", p + "/parallel/add", {a, mlp(h, l, p)});
      return g_.node("Add", p + "/residual", {x, scaled(ctx_, both, c_.residual_scale, p + "/residual_scale")});
    }
    x = g_.node("Add", p + "/attn/residual", {x, scaled(ctx_, a, c_.residual_scale, p + "/attn/residual_scale")});
    const std::string h2 =
        pre ? norm(x, names::ffn_norm(l), names::ffn_norm_bias(l), p + "/post_attention_layernorm") : x;
    std::string m = mlp(h2, l, p);
    if (post) m = norm(m, names::ffn_post_norm(l), "", p + "/ffn_post_norm");
    return g_.node("Add", p + "/mlp/residual", {x, scaled(ctx_, m, c_.residual_scale, p + "/mlp/residual_scale")});
  }

  void logits(const std::string& h) {
    std::string y;
    if (ctx_.model.has(names::kLmHead)) {
      y = linear(ctx_, h, names::kLmHead, c_.lm_head_bias ? names::kLmHeadBias : "", "/lm_head");
    } else {
      y = linear_with_table(ctx_, h, embedding_, "/lm_head");
      if (c_.lm_head_bias) y = g_.node("Add", "/lm_head/Add", {y, float_vector(ctx_, names::kLmHeadBias)});
    }
    y = scaled(ctx_, y, c_.logit_scale, "/lm_head/Scale");
    if (c_.final_logit_softcap > 0) {
      const std::string cap = g_.const_f32(static_cast<float>(c_.final_logit_softcap));
      const std::string t = g_.node("Tanh", "/lm_head/SoftcapTanh", {g_.node("Div", "/lm_head/SoftcapDiv", {y, cap})});
      y = g_.node("Mul", "/lm_head/Softcap", {t, cap});
    }
    g_.node_named("Identity", "/logits", {y}, {"logits"});
  }

  ExportContext& ctx_;
  const Config& c_;
  onnx_graph::GraphBuilder& g_;
  RopeTableSet rope_;
  GqaMaskInputs gqa_;
  std::string embedding_, global_mask_, local_mask_;
};

}  // namespace

void build_decoder_graph(ExportContext& ctx) {
  if (ctx.options.fused_ops) {
    const std::string why = fused_ops_refusal(ctx.model.config);
    if (!why.empty())
      throw_error(ErrorKind::Unsupported, "{}: --fused-ops cannot express this model: {} (export without it)",
                  ctx.model.source_path.empty() ? ctx.model.config.name : ctx.model.source_path, why);
  }
  DecoderGraph(ctx).build();
}

}  // namespace slmopt::onnx_export_detail
