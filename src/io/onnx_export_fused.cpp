// The llama-family graph with ONNX Runtime's fused contrib ops, the shape ORT's own model builder emits:
//
//   SimplifiedLayerNormalization (RMSNorm; ONNX domain, registered by ORT) for every norm;
//   com.microsoft GroupQueryAttention per layer: q/k/v [B, S, n·hd] in, RoPE applied inside (do_rotary, the
//   rotate_half layout, cos/sin caches [max_position, hd/2]), past/present caches in [B, kv_heads, T, hd].
//
// GroupQueryAttention takes positions from seqlens_k (attended tokens − 1 per row, from attention_mask) rather
// than position_ids, so the graph assumes unpadded or right-padded batches; position_ids stays an input for
// interface compatibility and is unused.
#include <cmath>

#include "onnx_export_llama.h"
#include "slmopt/ir/rope_frequencies.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt::onnx_export_detail {
namespace {

std::string simplified_norm(ExportContext& ctx, const std::string& x, const std::string& weight, float eps,
                            const std::string& name) {
  return ctx.graph.node("SimplifiedLayerNormalization", name + "/SimplifiedLayerNormalization",
                        {x, float_vector(ctx, weight)}, {{"axis", int64_t{-1}}, {"epsilon", eps}});
}

}  // namespace

void build_llama_graph_fused(ExportContext& ctx) {
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

  // RoPE caches.
  const std::vector<double> inv_freq = config_rope_inverse_frequencies(c);
  const int64_t half = hd / 2, positions = c.max_position;
  std::vector<float> cos_cache(static_cast<size_t>(positions * half)), sin_cache(cos_cache.size());
  for (int64_t p = 0; p < positions; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(p) * inv_freq[static_cast<size_t>(i)];
      cos_cache[static_cast<size_t>(p * half + i)] = static_cast<float>(std::cos(angle));
      sin_cache[static_cast<size_t>(p * half + i)] = static_cast<float>(std::sin(angle));
    }
  const std::string cos = g.initializer_f32("cos_cache", {positions, half}, cos_cache);
  const std::string sin = g.initializer_f32("sin_cache", {positions, half}, sin_cache);

  // seqlens_k = attended tokens − 1 per row (int32), total_sequence_length = mask width (int32 scalar).
  const std::string n = "/model/attn_mask";
  const std::string attended =
      g.node("ReduceSum", n + "/ReduceSum", {"attention_mask", g.const_i64({1})}, {{"keepdims", int64_t{0}}});
  const std::string last = g.node("Sub", n + "/SubOne", {attended, g.const_i64({1}, true)});
  const std::string seqlens = g.node("Cast", n + "/SeqlensK", {last}, {{"to", int64_t{onnx::TensorProto::INT32}}});
  const std::string width =
      g.node("Gather", n + "/Total", {g.node("Shape", n + "/MaskShape", {"attention_mask"}), g.const_i64({1}, true)},
             {{"axis", int64_t{0}}});
  const std::string total = g.node("Cast", n + "/TotalInt32", {width}, {{"to", int64_t{onnx::TensorProto::INT32}}});

  const std::string embedding = float_table(ctx, names::kEmbedTokens);
  std::string x = g.node("Gather", "/model/embed_tokens/Gather", {embedding, "input_ids"}, {{"axis", int64_t{0}}});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = fmt::format("/model/layers.{}", l);
    const std::string h = simplified_norm(ctx, x, names::attn_norm(l), eps, p + "/input_layernorm");
    const std::string q =
        linear(ctx, h, names::q_proj(l), c.attention_bias ? names::q_bias(l) : "", p + "/attn/q_proj");
    const std::string k =
        linear(ctx, h, names::k_proj(l), c.attention_bias ? names::k_bias(l) : "", p + "/attn/k_proj");
    const std::string v =
        linear(ctx, h, names::v_proj(l), c.attention_bias ? names::v_bias(l) : "", p + "/attn/v_proj");
    const std::string out = p + "/attn/GroupQueryAttention/output_0";
    g.node_named("GroupQueryAttention", p + "/attn/GroupQueryAttention",
                 {q, k, v, fmt::format("past_key_values.{}.key", l), fmt::format("past_key_values.{}.value", l),
                  seqlens, total, cos, sin},
                 {out, fmt::format("present.{}.key", l), fmt::format("present.{}.value", l)},
                 {{"num_heads", heads},
                  {"kv_num_heads", kv},
                  {"do_rotary", int64_t{1}},
                  {"rotary_interleaved", int64_t{0}},
                  {"scale", static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)))}},
                 onnx_graph::kMicrosoftDomain);
    const std::string o =
        linear(ctx, out, names::o_proj(l), c.attention_out_bias ? names::o_bias(l) : "", p + "/attn/o_proj");
    x = g.node("Add", p + "/attn/residual", {x, o});
    const std::string h2 = simplified_norm(ctx, x, names::ffn_norm(l), eps, p + "/post_attention_layernorm");
    const std::string mb = names::layer_prefix(l) + "mlp.";
    const std::string gate =
        linear(ctx, h2, names::gate_proj(l), c.mlp_bias ? mb + "gate_proj.bias" : "", p + "/mlp/gate_proj");
    const std::string up =
        linear(ctx, h2, names::up_proj(l), c.mlp_bias ? mb + "up_proj.bias" : "", p + "/mlp/up_proj");
    const std::string silu = g.node("Mul", p + "/mlp/silu", {gate, g.node("Sigmoid", p + "/mlp/sigmoid", {gate})});
    const std::string down = linear(ctx, g.node("Mul", p + "/mlp/gated", {silu, up}), names::down_proj(l),
                                    c.mlp_bias ? mb + "down_proj.bias" : "", p + "/mlp/down_proj");
    x = g.node("Add", p + "/mlp/residual", {x, down});
  }
  const std::string final_h = simplified_norm(ctx, x, names::kFinalNorm, eps, "/model/norm");
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
