// The llama-family decoder graph (Llama, Mistral, Qwen2) in standard ONNX ops:
//
//   Gather(embed_tokens, input_ids) → per layer:
//     h = RMSNorm(x); q, k, v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ (+ biases) → [B, heads, S, hd]
//     q, k = RoPE(q, k) at position_ids (cos/sin tables gathered per position; rotate_half layout)
//     present.l.key/value = Concat(past_key_values.l.key/value, k/v) along the sequence axis
//     x += o_proj(softmax(q·Kᵀ/√hd + mask) · V)
//     h = RMSNorm(x); x += down(silu(gate(h)) · up(h))
//   → RMSNorm → lm_head (or the tied embedding) → logits
#include "onnx_export_llama.h"

#include <cmath>

#include "slmopt/core/error.h"
#include "slmopt/ir/rope_frequencies.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt::onnx_export_detail {
namespace {

struct RopeTables {
  std::string cos, sin;  // [B, 1, S, hd] float
};

// cos/sin of position · inv_freq for every position up to max_position, computed in double and rounded once
// (as the reference forward pass does), gathered at position_ids and widened to the rotate_half layout.
RopeTables rope_tables(ExportContext& ctx) {
  auto& g = ctx.graph;
  const Config& c = ctx.model.config;
  const std::vector<double> inv_freq = config_rope_inverse_frequencies(c);
  const int64_t half = c.head_dim / 2, positions = c.max_position;
  std::vector<float> cos_cache(static_cast<size_t>(positions * half)), sin_cache(cos_cache.size());
  for (int64_t p = 0; p < positions; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(p) * inv_freq[static_cast<size_t>(i)];
      cos_cache[static_cast<size_t>(p * half + i)] = static_cast<float>(std::cos(angle));
      sin_cache[static_cast<size_t>(p * half + i)] = static_cast<float>(std::sin(angle));
    }
  RopeTables t;
  const std::string n = "/model/rotary";
  for (auto [table, values, out] :
       {std::tuple{"cos_cache", &cos_cache, &t.cos}, std::tuple{"sin_cache", &sin_cache, &t.sin}}) {
    const std::string init = g.initializer_f32(table, {positions, half}, *values);
    const std::string gathered =
        g.node("Gather", n + "/" + table + "/Gather", {init, "position_ids"}, {{"axis", int64_t{0}}});
    const std::string full =
        g.node("Concat", n + "/" + table + "/Concat", {gathered, gathered}, {{"axis", int64_t{-1}}});
    *out = g.node("Unsqueeze", n + "/" + table + "/Unsqueeze", {full, g.const_i64({1})});
  }
  return t;
}

// x [B, n, S, hd] → x·cos + rotate_half(x)·sin, rotate_half(x) = concat(−x2, x1).
std::string apply_rope(ExportContext& ctx, const std::string& x, const RopeTables& rope, int64_t head_dim,
                       const std::string& name) {
  auto& g = ctx.graph;
  const auto halves =
      g.node_n("Split", name + "/Split", {x, g.const_i64({head_dim / 2, head_dim / 2})}, 2, {{"axis", int64_t{-1}}});
  const std::string neg = g.node("Neg", name + "/Neg", {halves[1]});
  const std::string rotated = g.node("Concat", name + "/RotateHalf", {neg, halves[0]}, {{"axis", int64_t{-1}}});
  const std::string a = g.node("Mul", name + "/MulCos", {x, rope.cos});
  const std::string b = g.node("Mul", name + "/MulSin", {rotated, rope.sin});
  return g.node("Add", name + "/Add", {a, b});
}

// [B, S, n·hd] → [B, n, S, hd]
std::string to_heads(ExportContext& ctx, const std::string& x, int64_t n, int64_t head_dim, const std::string& name) {
  auto& g = ctx.graph;
  const std::string r = g.node("Reshape", name + "/Reshape", {x, g.const_i64({0, 0, n, head_dim})});
  return g.node("Transpose", name + "/Transpose", {r}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
}

}  // namespace

void build_llama_graph(ExportContext& ctx) {
  const Config& c = ctx.model.config;
  auto& g = ctx.graph;
  const int64_t hd = c.head_dim, heads = c.num_heads, kv = c.num_kv_heads;
  const float eps = static_cast<float>(c.norm_eps);

  g.input("input_ids", onnx::TensorProto::INT64, {kBatch, kSequence});
  g.input("attention_mask", onnx::TensorProto::INT64, {kBatch, kTotal});
  g.input("position_ids", onnx::TensorProto::INT64, {kBatch, kSequence});
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (const char* kind : {"key", "value"})
      g.input(fmt::format("past_key_values.{}.{}", l, kind), onnx::TensorProto::FLOAT, {kBatch, kv, kPast, hd});

  const std::string embedding = float_table(ctx, names::kEmbedTokens);
  std::string x = g.node("Gather", "/model/embed_tokens/Gather", {embedding, "input_ids"}, {{"axis", int64_t{0}}});
  const RopeTables rope = rope_tables(ctx);
  const std::string bias = causal_mask_bias(ctx);
  const std::string scale = g.const_f32(static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd))));

  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = fmt::format("/model/layers.{}", l);
    const std::string h = rms_norm(ctx, x, names::attn_norm(l), eps, p + "/input_layernorm");
    const std::string q =
        linear(ctx, h, names::q_proj(l), c.attention_bias ? names::q_bias(l) : "", p + "/attn/q_proj");
    const std::string k =
        linear(ctx, h, names::k_proj(l), c.attention_bias ? names::k_bias(l) : "", p + "/attn/k_proj");
    const std::string v =
        linear(ctx, h, names::v_proj(l), c.attention_bias ? names::v_bias(l) : "", p + "/attn/v_proj");
    const std::string q_rot =
        apply_rope(ctx, to_heads(ctx, q, heads, hd, p + "/attn/q_heads"), rope, hd, p + "/attn/q_rope");
    const std::string k_rot =
        apply_rope(ctx, to_heads(ctx, k, kv, hd, p + "/attn/k_heads"), rope, hd, p + "/attn/k_rope");
    const std::string v_heads = to_heads(ctx, v, kv, hd, p + "/attn/v_heads");
    const std::string present_k = fmt::format("present.{}.key", l), present_v = fmt::format("present.{}.value", l);
    g.node_named("Concat", p + "/attn/concat_key", {fmt::format("past_key_values.{}.key", l), k_rot}, {present_k},
                 {{"axis", int64_t{2}}});
    g.node_named("Concat", p + "/attn/concat_value", {fmt::format("past_key_values.{}.value", l), v_heads}, {present_v},
                 {{"axis", int64_t{2}}});
    const std::string q_scaled = g.node("Mul", p + "/attn/q_scale", {q_rot, scale});
    const std::string attended = attention(ctx, q_scaled, present_k, present_v, bias, heads, kv, hd, p + "/attn");
    const std::string o =
        linear(ctx, attended, names::o_proj(l), c.attention_out_bias ? names::o_bias(l) : "", p + "/attn/o_proj");
    x = g.node("Add", p + "/attn/residual", {x, o});

    const std::string h2 = rms_norm(ctx, x, names::ffn_norm(l), eps, p + "/post_attention_layernorm");
    const std::string mb = names::layer_prefix(l) + "mlp.";
    const std::string gate =
        linear(ctx, h2, names::gate_proj(l), c.mlp_bias ? mb + "gate_proj.bias" : "", p + "/mlp/gate_proj");
    const std::string up =
        linear(ctx, h2, names::up_proj(l), c.mlp_bias ? mb + "up_proj.bias" : "", p + "/mlp/up_proj");
    const std::string silu = g.node("Mul", p + "/mlp/silu", {gate, g.node("Sigmoid", p + "/mlp/sigmoid", {gate})});
    const std::string act = g.node("Mul", p + "/mlp/gated", {silu, up});
    const std::string down =
        linear(ctx, act, names::down_proj(l), c.mlp_bias ? mb + "down_proj.bias" : "", p + "/mlp/down_proj");
    x = g.node("Add", p + "/mlp/residual", {x, down});
  }
  const std::string final_h = rms_norm(ctx, x, names::kFinalNorm, eps, "/model/norm");
  std::string logits;
  if (ctx.model.has(names::kLmHead))
    logits = linear(ctx, final_h, names::kLmHead, "", "/lm_head");
  else
    logits = linear_with_table(ctx, final_h, embedding, "/lm_head");
  g.node_named("Identity", "/logits", {logits}, {"logits"});

  g.output("logits", onnx::TensorProto::FLOAT, {kBatch, kSequence, c.vocab_size});
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (const char* kind : {"key", "value"})
      g.output(fmt::format("present.{}.{}", l, kind), onnx::TensorProto::FLOAT, {kBatch, kv, kTotal, hd});
}

}  // namespace slmopt::onnx_export_detail
