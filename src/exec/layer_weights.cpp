// Collecting a Model's tensors for the forward pass, with the shape checks that let the forward pass index
// without bounds checks afterwards. Which tensors a block has follows the decoder description exactly as
// decoder_tensors.h lists them; their widths follow the tensors (pruned layers).
#include "slmopt/exec/layer_weights.h"

#include "slmopt/core/error.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

const std::string& source_of(const Model& model) {
  static const std::string unnamed = "model";
  return model.source_path.empty() ? unnamed : model.source_path;
}

Eigen::VectorXf decode_vector(const Model& model, const std::string& name, int64_t expected) {
  const Tensor& t = model.tensor(name);
  if (t.rank() != 1 || t.dim(0) != expected)
    throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape {}, expected [{}]", source_of(model), name,
                shape_to_string(t.shape()), expected);
  Eigen::VectorXf v(expected);
  if (expected != 0) t.rows_to_f32(0, 1, v.data());
  return v;
}

// A norm of `width` values: its weight (as 1 + w when the description says unit offset) and, with_bias, its bias.
NormWeights load_norm(const Model& model, const std::string& weight, const std::string& bias, int64_t width,
                      bool with_bias) {
  NormWeights n;
  n.scale = decode_vector(model, weight, width);
  if (model.config.norm_unit_offset) n.scale.array() += 1.0f;  // Gemma: x · (1 + w), computed in float as HF does
  if (with_bias) n.bias = decode_vector(model, bias, width);
  return n;
}

std::string bias_name_of(const std::string& weight_name) {
  return weight_name.substr(0, weight_name.size() - std::string(".weight").size()) + ".bias";
}

StoredLinear load_linear(const Model& model, const std::string& name, bool with_bias) {
  StoredLinear lin;
  lin.weight = model.tensor(name);
  if (lin.weight.rank() != 2)
    throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape {}, expected a matrix", source_of(model), name,
                shape_to_string(lin.weight.shape()));
  if (with_bias) lin.bias = decode_vector(model, bias_name_of(name), lin.weight.dim(0));
  return lin;
}

void expect_shape(const Model& model, const StoredLinear& lin, int64_t rows, int64_t cols) {
  if (lin.weight.dim(0) != rows || lin.weight.dim(1) != cols)
    throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape [{}, {}], but the layer needs [{}, {}]",
                source_of(model), lin.name(), lin.weight.dim(0), lin.weight.dim(1), rows, cols);
}

}  // namespace

RowMatrix decode_matrix(const Tensor& t) {
  if (t.rank() != 2)
    throw_error(ErrorKind::Internal, "tensor '{}' has shape {}, expected a matrix", t.name(), shape_to_string(t.shape()));
  RowMatrix m(t.dim(0), t.dim(1));
  if (m.size() != 0) t.rows_to_f32(0, t.dim(0), m.data());
  return m;
}

LayerWeights load_layer_weights(const Model& model, int64_t layer) {
  const Config& c = model.config;
  const std::string& src = source_of(model);
  if (layer < 0 || layer >= c.num_layers)
    throw_error(ErrorKind::Internal, "{}: layer {} is out of range (the model has {})", src, layer, c.num_layers);
  const int64_t hidden = c.hidden_size, hd = c.head_dim;
  const bool layer_norm_bias = c.norm_kind == NormKind::LayerNorm && c.norm_bias;
  const bool pre = c.norm_placement == NormPlacement::Pre || c.norm_placement == NormPlacement::Sandwich;
  const bool post = c.norm_placement == NormPlacement::Post || c.norm_placement == NormPlacement::Sandwich;

  LayerWeights d;
  if (pre) {
    d.attn_norm = load_norm(model, names::attn_norm(layer), names::attn_norm_bias(layer), hidden, layer_norm_bias);
    if (c.residual_layout == ResidualLayout::Sequential)
      d.ffn_norm = load_norm(model, names::ffn_norm(layer), names::ffn_norm_bias(layer), hidden, layer_norm_bias);
  }
  if (post) {
    d.attn_post_norm = load_norm(model, names::attn_post_norm(layer), "", hidden, false);
    d.ffn_post_norm = load_norm(model, names::ffn_post_norm(layer), "", hidden, false);
  }
  d.q = load_linear(model, names::q_proj(layer), c.attention_bias);
  d.k = load_linear(model, names::k_proj(layer), c.attention_bias);
  d.v = load_linear(model, names::v_proj(layer), c.attention_bias);
  d.o = load_linear(model, names::o_proj(layer), c.attention_out_bias);
  if (c.has_gate()) d.gate = load_linear(model, names::gate_proj(layer), c.mlp_bias);
  d.up = load_linear(model, names::up_proj(layer), c.mlp_bias);
  d.down = load_linear(model, names::down_proj(layer), c.mlp_bias);

  const int64_t q_rows = d.q.rows(), kv_rows = d.k.rows();
  if (q_rows == 0 || q_rows % hd != 0 || kv_rows == 0 || kv_rows % hd != 0)
    throw_error(ErrorKind::BadInput, "{}: layer {}: q_proj has {} rows and k_proj {}; both must be positive multiples "
                "of head_dim {}", src, layer, q_rows, kv_rows, hd);
  d.n_heads = q_rows / hd;
  d.n_kv_heads = kv_rows / hd;
  if (d.n_heads % d.n_kv_heads != 0)
    throw_error(ErrorKind::BadInput, "{}: layer {}: {} query heads are not a multiple of {} KV heads", src, layer,
                d.n_heads, d.n_kv_heads);
  d.ffn = d.up.rows();
  expect_shape(model, d.q, q_rows, hidden);
  expect_shape(model, d.k, kv_rows, hidden);
  expect_shape(model, d.v, kv_rows, hidden);
  expect_shape(model, d.o, hidden, q_rows);
  if (d.gate.present()) expect_shape(model, d.gate, d.ffn, hidden);
  expect_shape(model, d.up, d.ffn, hidden);
  expect_shape(model, d.down, hidden, d.ffn);

  if (c.qk_norm == QkNormKind::PerHead) {
    d.q_norm = load_norm(model, names::q_norm(layer), "", hd, false);
    d.k_norm = load_norm(model, names::k_norm(layer), "", hd, false);
  } else if (c.qk_norm == QkNormKind::Whole) {
    d.q_norm = load_norm(model, names::q_norm(layer), "", q_rows, false);
    d.k_norm = load_norm(model, names::k_norm(layer), "", kv_rows, false);
  }
  return d;
}

ModelWeights load_model_weights(const Model& model) {
  const Config& c = model.config;
  const std::string& src = source_of(model);
  auto expect_table = [&](const Tensor& t, int64_t rows) {
    if (t.rank() != 2 || t.dim(0) != rows || t.dim(1) != c.hidden_size)
      throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape {}, expected [{}, {}]", src, t.name(),
                  shape_to_string(t.shape()), rows, c.hidden_size);
  };
  ModelWeights d;
  d.embedding = model.tensor(names::kEmbedTokens);
  expect_table(d.embedding, c.vocab_size);
  if (c.position_kind == PositionKind::Learned) {
    d.positions = model.tensor(names::kPositionEmbedding);
    expect_table(d.positions, c.max_position);
  }
  d.head.weight = model.output_weight();
  expect_table(d.head.weight, c.vocab_size);
  if (c.lm_head_bias) d.head.bias = decode_vector(model, names::kLmHeadBias, c.vocab_size);
  d.final_norm = load_norm(model, names::kFinalNorm, names::kFinalNormBias, c.hidden_size,
                           c.norm_kind == NormKind::LayerNorm && c.norm_bias);
  d.layers.reserve(static_cast<size_t>(c.num_layers));
  for (int64_t l = 0; l < c.num_layers; ++l) d.layers.push_back(load_layer_weights(model, l));
  return d;
}

}  // namespace slmopt
