// The GPT-2 decoder graph in standard ONNX ops (same interface as the llama graph, see io/onnx_export.h; the
// cache holds keys without any rotation since positions enter through wpe):
//
//   Gather(embed_tokens, input_ids) + Gather(embed_positions, position_ids) → per block:
//     q, k, v = q/k/v_proj(LayerNorm₁(x)) → present = Concat(past, k/v)
//     x += o_proj(softmax(q·Kᵀ/√hd + mask) · V)
//     x += down_proj(gelu_tanh(up_proj(LayerNorm₂(x))))
//   → LayerNorm_f → · embed_tokensᵀ → logits
// The weights carry the canonical names (io/hf_gpt2.h); node names follow Hugging Face's GPT-2 modules.
#include <cmath>
#include <numbers>

#include "onnx_export_graph.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt::onnx_export_detail {
namespace {

std::string to_heads(ExportContext& ctx, const std::string& x, int64_t n, int64_t head_dim, const std::string& name) {
  auto& g = ctx.graph;
  const std::string r = g.node("Reshape", name + "/Reshape", {x, g.const_i64({0, 0, n, head_dim})});
  return g.node("Transpose", name + "/Transpose", {r}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
}

// 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
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

}  // namespace

void build_gpt2_graph(ExportContext& ctx) {
  const Config& c = ctx.model.config;
  auto& g = ctx.graph;
  const int64_t hd = c.head_dim, heads = c.num_heads;
  const float eps = static_cast<float>(c.norm_eps);

  g.input("input_ids", onnx::TensorProto::INT64, {kBatch, kSequence});
  g.input("attention_mask", onnx::TensorProto::INT64, {kBatch, kTotal});
  g.input("position_ids", onnx::TensorProto::INT64, {kBatch, kSequence});
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (const char* kind : {"key", "value"})
      g.input(fmt::format("past_key_values.{}.{}", l, kind), onnx::TensorProto::FLOAT, {kBatch, heads, kPast, hd});

  const std::string wte = float_table(ctx, names::kEmbedTokens);
  const std::string wpe = float_table(ctx, names::kPositionEmbedding);
  const std::string tok = g.node("Gather", "/transformer/wte/Gather", {wte, "input_ids"}, {{"axis", int64_t{0}}});
  const std::string pos = g.node("Gather", "/transformer/wpe/Gather", {wpe, "position_ids"}, {{"axis", int64_t{0}}});
  std::string x = g.node("Add", "/transformer/embed", {tok, pos});
  const std::string bias = causal_mask_bias(ctx);
  const std::string scale = g.const_f32(static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd))));

  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = fmt::format("/transformer/h.{}", l);
    const std::string a = layer_norm(ctx, x, names::attn_norm(l), names::attn_norm_bias(l), eps, p + "/ln_1");
    const std::string q = to_heads(ctx, linear(ctx, a, names::q_proj(l), names::q_bias(l), p + "/attn/q_proj"), heads,
                                   hd, p + "/attn/q_heads");
    const std::string k = to_heads(ctx, linear(ctx, a, names::k_proj(l), names::k_bias(l), p + "/attn/k_proj"), heads,
                                   hd, p + "/attn/k_heads");
    const std::string v = to_heads(ctx, linear(ctx, a, names::v_proj(l), names::v_bias(l), p + "/attn/v_proj"), heads,
                                   hd, p + "/attn/v_heads");
    const std::string present_k = fmt::format("present.{}.key", l), present_v = fmt::format("present.{}.value", l);
    g.node_named("Concat", p + "/attn/concat_key", {fmt::format("past_key_values.{}.key", l), k}, {present_k},
                 {{"axis", int64_t{2}}});
    g.node_named("Concat", p + "/attn/concat_value", {fmt::format("past_key_values.{}.value", l), v}, {present_v},
                 {{"axis", int64_t{2}}});
    const std::string qs = g.node("Mul", p + "/attn/q_scale", {q, scale});
    const std::string attended = attention(ctx, qs, present_k, present_v, bias, heads, heads, hd, 0.0, p + "/attn");
    const std::string o = linear(ctx, attended, names::o_proj(l), names::o_bias(l), p + "/attn/c_proj");
    x = g.node("Add", p + "/attn/residual", {x, o});
    const std::string m = layer_norm(ctx, x, names::ffn_norm(l), names::ffn_norm_bias(l), eps, p + "/ln_2");
    const std::string fc = linear(ctx, m, names::up_proj(l), names::up_bias(l), p + "/mlp/c_fc");
    const std::string act = gelu_tanh(ctx, fc, p + "/mlp/act");
    const std::string down = linear(ctx, act, names::down_proj(l), names::down_bias(l), p + "/mlp/c_proj");
    x = g.node("Add", p + "/mlp/residual", {x, down});
  }
  const std::string final_h = layer_norm(ctx, x, names::kFinalNorm, names::kFinalNormBias, eps, "/transformer/ln_f");
  g.node_named("Identity", "/logits", {linear_with_table(ctx, final_h, wte, "/lm_head")}, {"logits"});

  g.output("logits", onnx::TensorProto::FLOAT, {kBatch, kSequence, c.vocab_size});
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (const char* kind : {"key", "value"})
      g.output(fmt::format("present.{}.{}", l, kind), onnx::TensorProto::FLOAT, {kBatch, heads, kTotal, hd});
}

}  // namespace slmopt::onnx_export_detail
