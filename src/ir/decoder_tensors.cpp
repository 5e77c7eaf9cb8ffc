// The canonical tensor list of a decoder description. Which norms exist follows the placement (Pre: attn/ffn norm;
// Sandwich: all four; Post: the two post norms; Parallel residual: one norm feeding both branches).
#include "slmopt/ir/decoder_tensors.h"

#include <utility>

#include "slmopt/ir/tensor_names.h"

namespace slmopt {

std::vector<ExpectedTensor> decoder_layer_tensors(const Config& c, int64_t l) {
  std::vector<ExpectedTensor> out;
  const int64_t h = c.hidden_size, hd = c.head_dim;
  const int64_t q_rows = c.heads(l) * hd, kv_rows = c.kv_heads(l) * hd, ff = c.ffn(l);
  auto add = [&](std::string name, std::vector<int64_t> shape) { out.push_back({std::move(name), std::move(shape), l}); };
  auto add_norm = [&](const std::string& weight, const std::string& bias) {
    add(weight, {h});
    if (c.norm_bias) add(bias, {h});
  };

  const bool pre = c.norm_placement == NormPlacement::Pre || c.norm_placement == NormPlacement::Sandwich;
  const bool post = c.norm_placement == NormPlacement::Post || c.norm_placement == NormPlacement::Sandwich;
  if (pre) add_norm(names::attn_norm(l), names::attn_norm_bias(l));
  if (pre && c.residual_layout == ResidualLayout::Sequential) add_norm(names::ffn_norm(l), names::ffn_norm_bias(l));
  if (post) {
    add(names::attn_post_norm(l), {h});
    add(names::ffn_post_norm(l), {h});
  }

  add(names::q_proj(l), {q_rows, h});
  add(names::k_proj(l), {kv_rows, h});
  add(names::v_proj(l), {kv_rows, h});
  add(names::o_proj(l), {h, q_rows});
  if (c.attention_bias) {
    add(names::q_bias(l), {q_rows});
    add(names::k_bias(l), {kv_rows});
    add(names::v_bias(l), {kv_rows});
  }
  if (c.attention_out_bias) add(names::o_bias(l), {h});
  if (c.qk_norm == QkNormKind::PerHead) {
    add(names::q_norm(l), {hd});
    add(names::k_norm(l), {hd});
  } else if (c.qk_norm == QkNormKind::Whole) {
    add(names::q_norm(l), {q_rows});
    add(names::k_norm(l), {kv_rows});
  }

  if (c.has_gate()) add(names::gate_proj(l), {ff, h});
  add(names::up_proj(l), {ff, h});
  add(names::down_proj(l), {h, ff});
  if (c.mlp_bias) {
    if (c.has_gate()) add(names::gate_bias(l), {ff});
    add(names::up_bias(l), {ff});
    add(names::down_bias(l), {h});
  }
  return out;
}

namespace {

// The tensors before the layers and after them, in decoder_tensors' order.
void visit_leading_tensors(const Config& c, const std::function<void(ExpectedTensor)>& visit) {
  visit({names::kEmbedTokens, {c.vocab_size, c.hidden_size}});
  if (c.position_kind == PositionKind::Learned) visit({names::kPositionEmbedding, {c.max_position, c.hidden_size}});
}

void visit_trailing_tensors(const Config& c, const std::function<void(ExpectedTensor)>& visit) {
  visit({names::kFinalNorm, {c.hidden_size}});
  if (c.norm_bias) visit({names::kFinalNormBias, {c.hidden_size}});
  if (!c.tie_word_embeddings) visit({names::kLmHead, {c.vocab_size, c.hidden_size}});
  if (c.lm_head_bias) visit({names::kLmHeadBias, {c.vocab_size}});
}

}  // namespace

void visit_decoder_tensors(const Config& c, const std::function<void(ExpectedTensor)>& visit) {
  visit_leading_tensors(c, visit);
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (ExpectedTensor& t : decoder_layer_tensors(c, l)) visit(std::move(t));
  visit_trailing_tensors(c, visit);
}

std::vector<ExpectedTensor> decoder_global_tensors(const Config& c) {
  std::vector<ExpectedTensor> out;
  auto keep = [&](ExpectedTensor t) { out.push_back(std::move(t)); };
  visit_leading_tensors(c, keep);
  visit_trailing_tensors(c, keep);
  return out;
}

std::vector<ExpectedTensor> decoder_tensors(const Config& c) {
  std::vector<ExpectedTensor> out;
  visit_decoder_tensors(c, [&](ExpectedTensor t) { out.push_back(std::move(t)); });
  return out;
}

}  // namespace slmopt
