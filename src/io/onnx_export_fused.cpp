// The attention core with ONNX Runtime's contrib op, the shape ORT's own model builder emits:
// com.microsoft GroupQueryAttention per layer: q/k/v [B, S, n·hd] in, RoPE applied inside (do_rotary, the
// rotate_half layout, this layer's cos/sin caches [max_position, rotary_dim / 2]), scale, softcap and
// local_window_size as attributes, past/present caches in [B, kv_heads, T, hd].
//
// GroupQueryAttention takes positions from seqlens_k (attended tokens − 1 per row, from attention_mask) rather
// than position_ids, so the graph assumes unpadded or right-padded batches; position_ids still feeds the
// LongRoPE table choice and learned positions.
#include <cmath>

#include "onnx_export_graph.h"

namespace slmopt::onnx_export_detail {

// Both limits are ORT's own checks (1.30, CPU), seen in tests/consumers/onnx_families_test.cpp with the refusal
// lifted: "head_size shall be a multiple of 16" (issue 12 defect 3) and "cos_cache dimension 1 must be <=
// head_size / 2 and a multiple of 8". Partial rotary itself is fine: GQA rotates the first 2 · cos_cache width
// values of each head in the rotate_half layout, as Phi-2 does.
std::string fused_ops_refusal(const Config& c) {
  if (c.head_dim % 16 != 0)
    return fmt::format("GroupQueryAttention needs head_dim to be a multiple of 16, this model has {}", c.head_dim);
  if (c.position_kind == PositionKind::Rope && (c.rotary_dims() / 2) % 8 != 0)
    return fmt::format("GroupQueryAttention needs the rotary dimension to be a multiple of 16, this model rotates {}",
                       c.rotary_dims());
  return "";
}

GqaMaskInputs gqa_mask_inputs(ExportContext& ctx) {
  auto& g = ctx.graph;
  const std::string n = "/model/attn_mask";
  const std::string attended =
      g.node("ReduceSum", n + "/ReduceSum", {"attention_mask", g.const_i64({1})}, {{"keepdims", int64_t{0}}});
  const std::string last = g.node("Sub", n + "/SubOne", {attended, g.const_i64({1}, true)});
  GqaMaskInputs out;
  out.seqlens_k = g.node("Cast", n + "/SeqlensK", {last}, {{"to", int64_t{onnx::TensorProto::INT32}}});
  const std::string width =
      g.node("Gather", n + "/Total", {g.node("Shape", n + "/MaskShape", {"attention_mask"}), g.const_i64({1}, true)},
             {{"axis", int64_t{0}}});
  out.total_sequence_length =
      g.node("Cast", n + "/TotalInt32", {width}, {{"to", int64_t{onnx::TensorProto::INT32}}});
  return out;
}

std::string fused_attention(ExportContext& ctx, RopeTableSet& rope, const GqaMaskInputs& mask, int64_t layer,
                            const std::string& q, const std::string& k, const std::string& v, const std::string& name) {
  const Config& c = ctx.model.config;
  const bool rotary = c.layer_uses_rope(layer);
  std::vector<std::string> inputs{q,
                                  k,
                                  v,
                                  fmt::format("past_key_values.{}.key", layer),
                                  fmt::format("past_key_values.{}.value", layer),
                                  mask.seqlens_k,
                                  mask.total_sequence_length};
  if (rotary) {
    const RopeCaches& caches = rope.caches(layer);
    inputs.push_back(caches.cos);
    inputs.push_back(caches.sin);
  }
  std::vector<onnx_graph::Attr> attrs{{"num_heads", c.heads(layer)},
                                      {"kv_num_heads", c.kv_heads(layer)},
                                      {"do_rotary", int64_t{rotary ? 1 : 0}},
                                      {"rotary_interleaved", int64_t{0}},
                                      {"scale", static_cast<float>(c.attention_scale())}};
  if (c.attn_softcap > 0) attrs.push_back({"softcap", static_cast<float>(c.attn_softcap)});
  // local_window_size is the window itself (W keys, the query's own included): checked in ORT against the
  // reference with sequences four windows long (tests/consumers/onnx_families_test.cpp).
  if (c.layer_is_sliding(layer)) attrs.push_back({"local_window_size", c.sliding_window});
  const std::string out = name + "/GroupQueryAttention/output_0";
  ctx.graph.node_named("GroupQueryAttention", name + "/GroupQueryAttention", inputs,
                       {out, fmt::format("present.{}.key", layer), fmt::format("present.{}.value", layer)}, attrs,
                       onnx_graph::kMicrosoftDomain);
  return out;
}

}  // namespace slmopt::onnx_export_detail
