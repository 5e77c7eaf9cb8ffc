// Decoding the IR's tensors to float matrices for the forward pass, with the shape checks that let the
// forward pass index without bounds checks afterwards.
#include "slmopt/exec/decoded_weights.h"

#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

const std::string& source_of(const Model& model) {
  static const std::string unnamed = "model";
  return model.source_path.empty() ? unnamed : model.source_path;
}

RowMatrix decode_matrix(const Model& model, const Tensor& t) {
  if (t.rank() != 2)
    throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape {}, expected a matrix", source_of(model), t.name(),
                shape_to_string(t.shape()));
  RowMatrix m(t.dim(0), t.dim(1));
  if (m.size() != 0) t.rows_to_f32(0, t.dim(0), m.data());
  return m;
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

std::string bias_name_of(const std::string& weight_name) {
  return weight_name.substr(0, weight_name.size() - std::string(".weight").size()) + ".bias";
}

DecodedLinear decode_linear(const Model& model, const std::string& name, bool with_bias) {
  DecodedLinear lin;
  lin.name = name;
  lin.weight = decode_matrix(model, model.tensor(name));
  if (with_bias) lin.bias = decode_vector(model, bias_name_of(name), lin.weight.rows());
  return lin;
}

void expect_shape(const Model& model, const DecodedLinear& lin, int64_t rows, int64_t cols) {
  if (lin.weight.rows() != rows || lin.weight.cols() != cols)
    throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape [{}, {}], but the layer needs [{}, {}]",
                source_of(model), lin.name, lin.weight.rows(), lin.weight.cols(), rows, cols);
}

}  // namespace

DecodedLayer decode_layer(const Model& model, int64_t layer) {
  const Config& c = model.config;
  const std::string& src = source_of(model);
  if (layer < 0 || layer >= c.num_layers)
    throw_error(ErrorKind::Internal, "{}: layer {} is out of range (the model has {})", src, layer, c.num_layers);
  const int64_t hidden = c.hidden_size, hd = c.head_dim;
  DecodedLayer d;
  d.attn_norm = decode_vector(model, names::attn_norm(layer), hidden);
  d.ffn_norm = decode_vector(model, names::ffn_norm(layer), hidden);
  d.q = decode_linear(model, names::q_proj(layer), c.attention_bias);
  d.k = decode_linear(model, names::k_proj(layer), c.attention_bias);
  d.v = decode_linear(model, names::v_proj(layer), c.attention_bias);
  d.o = decode_linear(model, names::o_proj(layer), c.attention_out_bias);
  d.gate = decode_linear(model, names::gate_proj(layer), c.mlp_bias);
  d.up = decode_linear(model, names::up_proj(layer), c.mlp_bias);
  d.down = decode_linear(model, names::down_proj(layer), c.mlp_bias);

  const int64_t q_rows = d.q.weight.rows(), kv_rows = d.k.weight.rows();
  if (q_rows == 0 || q_rows % hd != 0 || kv_rows == 0 || kv_rows % hd != 0)
    throw_error(ErrorKind::BadInput, "{}: layer {}: q_proj has {} rows and k_proj {}; both must be positive multiples "
                "of head_dim {}", src, layer, q_rows, kv_rows, hd);
  d.n_heads = q_rows / hd;
  d.n_kv_heads = kv_rows / hd;
  if (d.n_heads % d.n_kv_heads != 0)
    throw_error(ErrorKind::BadInput, "{}: layer {}: {} query heads are not a multiple of {} KV heads", src, layer,
                d.n_heads, d.n_kv_heads);
  d.ffn = d.gate.weight.rows();
  expect_shape(model, d.q, q_rows, hidden);
  expect_shape(model, d.k, kv_rows, hidden);
  expect_shape(model, d.v, kv_rows, hidden);
  expect_shape(model, d.o, hidden, q_rows);
  expect_shape(model, d.gate, d.ffn, hidden);
  expect_shape(model, d.up, d.ffn, hidden);
  expect_shape(model, d.down, hidden, d.ffn);
  return d;
}

DecodedModel decode_model(const Model& model) {
  const Config& c = model.config;
  if (c.family == Family::Gpt2)
    throw_error(ErrorKind::Unsupported, "{}: the forward pass supports the llama family (Llama, Mistral, Qwen2), "
                "not {}", source_of(model), family_name(c.family));
  DecodedModel d;
  const Tensor& embedding = model.tensor(names::kEmbedTokens);
  auto embedding_f32 = std::make_shared<RowMatrix>(decode_matrix(model, embedding));
  if (embedding_f32->rows() != c.vocab_size || embedding_f32->cols() != c.hidden_size)
    throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape {}, expected [{}, {}]", source_of(model),
                embedding.name(), shape_to_string(embedding.shape()), c.vocab_size, c.hidden_size);
  d.embedding = embedding_f32;
  const Tensor& output = model.output_weight();
  d.output_name = output.name();
  if (&output == &embedding) {
    d.output = d.embedding;
  } else {
    auto output_f32 = std::make_shared<RowMatrix>(decode_matrix(model, output));
    if (output_f32->rows() != c.vocab_size || output_f32->cols() != c.hidden_size)
      throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape {}, expected [{}, {}]", source_of(model),
                  output.name(), shape_to_string(output.shape()), c.vocab_size, c.hidden_size);
    d.output = output_f32;
  }
  d.final_norm = decode_vector(model, names::kFinalNorm, c.hidden_size);
  d.layers.resize(static_cast<size_t>(c.num_layers));
  parallel_for(d.layers.size(), [&](size_t begin, size_t end) {
    for (size_t l = begin; l < end; ++l) d.layers[l] = decode_layer(model, static_cast<int64_t>(l));
  });
  return d;
}

}  // namespace slmopt
