// GPT-2 forward pass (see gpt2_runner.h). Shares the linear kernel and the causal attention of the llama
// runner; adds LayerNorm with bias, GELU (tanh) and learned position embeddings.
#include "slmopt/exec/gpt2_runner.h"

#include <cmath>
#include <numbers>

#include "attention.h"
#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/kernels.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

const std::string& source_of(const Model& model) {
  static const std::string unnamed = "model";
  return model.source_path.empty() ? unnamed : model.source_path;
}

RowMatrix decode_matrix(const Model& model, const std::string& name, int64_t rows, int64_t cols) {
  const Tensor& t = model.tensor(name);
  if (t.rank() != 2 || t.dim(0) != rows || t.dim(1) != cols)
    throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape {}, expected [{}, {}]", source_of(model), name,
                shape_to_string(t.shape()), rows, cols);
  RowMatrix m(rows, cols);
  t.rows_to_f32(0, rows, m.data());
  return m;
}

Eigen::VectorXf decode_vector(const Model& model, const std::string& name, int64_t n) {
  const Tensor& t = model.tensor(name);
  if (t.rank() != 1 || t.dim(0) != n)
    throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape {}, expected [{}]", source_of(model), name,
                shape_to_string(t.shape()), n);
  Eigen::VectorXf v(n);
  t.rows_to_f32(0, 1, v.data());
  return v;
}

}  // namespace

void layer_norm(const RowMatrix& x, const Eigen::VectorXf& weight, const Eigen::VectorXf& bias, float eps,
                RowMatrix& y) {
  const int64_t n = x.cols();
  if (weight.size() != n || bias.size() != n)
    throw_error(ErrorKind::Internal, "layer_norm: rows have {} values, weight {} and bias {}", n, weight.size(),
                bias.size());
  if (&y != &x) y.resize(x.rows(), n);
  parallel_for(
      static_cast<size_t>(x.rows()),
      [&](size_t begin, size_t end) {
        for (size_t r = begin; r < end; ++r) {
          const float* in = x.data() + r * n;
          float* out = y.data() + r * n;
          double sum = 0, sum_sq = 0;
          for (int64_t i = 0; i < n; ++i) sum += in[i];
          const double mean = sum / static_cast<double>(n);
          for (int64_t i = 0; i < n; ++i) sum_sq += (in[i] - mean) * (in[i] - mean);
          const float mean_f = static_cast<float>(mean);
          const float inv_std = static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps));
          for (int64_t i = 0; i < n; ++i) out[i] = (in[i] - mean_f) * inv_std * weight[i] + bias[i];
        }
      },
      16);
}

void gelu_tanh_in_place(RowMatrix& x) {
  const float k = static_cast<float>(std::sqrt(2.0 / std::numbers::pi));
  float* d = x.data();
  const int64_t n = x.size();
  parallel_for(
      static_cast<size_t>(n),
      [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) {
          const float v = d[i];
          d[i] = 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
        }
      },
      4096);
}

Gpt2Runner::Gpt2Runner(const Model& model) : config_(model.config) {
  const Config& c = config_;
  if (c.family != Family::Gpt2)
    throw_error(ErrorKind::Unsupported, "{}: Gpt2Runner runs GPT-2 models, not {}", source_of(model),
                family_name(c.family));
  c.validate(source_of(model));
  namespace g = names::gpt2;
  const int64_t h = c.hidden_size;
  wte_ = decode_matrix(model, g::kTokenEmbedding, c.vocab_size, h);
  wpe_ = decode_matrix(model, g::kPositionEmbedding, c.max_position, h);
  lnf_w_ = decode_vector(model, g::kFinalNormWeight, h);
  lnf_b_ = decode_vector(model, g::kFinalNormBias, h);
  for (int64_t l = 0; l < c.num_layers; ++l) layers_.push_back(decode_layer(model, l));
}

Gpt2Runner::Layer Gpt2Runner::decode_layer(const Model& model, int64_t l) {
  namespace g = names::gpt2;
  const Config& c = model.config;
  const int64_t h = c.hidden_size, f = c.intermediate_size;
  auto linear_of = [&](const std::string& stem, int64_t out, int64_t in) {
    const std::string name = g::block(l, stem + ".weight");
    return Linear{name, decode_matrix(model, name, out, in), decode_vector(model, g::block(l, stem + ".bias"), out)};
  };
  Layer L;
  L.ln1_w = decode_vector(model, g::block(l, "ln_1.weight"), h);
  L.ln1_b = decode_vector(model, g::block(l, "ln_1.bias"), h);
  L.ln2_w = decode_vector(model, g::block(l, "ln_2.weight"), h);
  L.ln2_b = decode_vector(model, g::block(l, "ln_2.bias"), h);
  L.c_attn = linear_of("attn.c_attn", 3 * h, h);
  L.c_proj = linear_of("attn.c_proj", h, h);
  L.c_fc = linear_of("mlp.c_fc", f, h);
  L.mlp_proj = linear_of("mlp.c_proj", h, f);
  return L;
}

void Gpt2Runner::reload_layer(const Model& model, int64_t layer) {
  if (layer < 0 || layer >= layer_count())
    throw_error(ErrorKind::Internal, "reload_layer: layer {} is out of range (the model has {})", layer,
                layer_count());
  if (model.config.hidden_size != config_.hidden_size || model.config.intermediate_size != config_.intermediate_size)
    throw_error(ErrorKind::Internal, "reload_layer: the GPT-2 model's hidden or FFN size changed");
  layers_[static_cast<size_t>(layer)] = decode_layer(model, layer);
}

Gpt2Runner::Cache Gpt2Runner::make_cache(int64_t capacity) const {
  return KvCache(std::vector<int64_t>(layers_.size(), config_.hidden_size), capacity);
}

RowMatrix Gpt2Runner::logits(std::span<const int32_t> tokens, const RunOptions& options) const {
  return forward(tokens, 0, nullptr, options);
}

RowMatrix Gpt2Runner::decode(Cache& cache, std::span<const int32_t> tokens, const RunOptions& options) const {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (cache.layer_count() != layer_count() || (layer_count() > 0 && cache.keys(0).cols() != config_.hidden_size))
    throw_error(ErrorKind::Usage, "the KV cache was made for other shapes than this GPT-2 model");
  if (cache.size() + n > cache.capacity())
    throw_error(ErrorKind::Usage, "GPT-2 KV cache holds {} of {} tokens; {} more do not fit", cache.size(),
                cache.capacity(), n);
  RowMatrix out = forward(tokens, cache.size(), &cache, options);
  cache.size_ += n;
  return out;
}

RowMatrix Gpt2Runner::embed(std::span<const int32_t> tokens, int64_t first) const {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (first < 0 || first + n > config_.max_position)
    throw_error(ErrorKind::BadInput, "GPT-2: positions up to {} exceed the position table of {}", first + n,
                config_.max_position);
  RowMatrix x(n, config_.hidden_size);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t id = tokens[static_cast<size_t>(i)];
    if (id < 0 || id >= config_.vocab_size)
      throw_error(ErrorKind::BadInput, "token id {} at position {} is outside the vocabulary of {} tokens", id, i,
                  config_.vocab_size);
    x.row(i) = wte_.row(id) + wpe_.row(first + i);
  }
  return x;
}

namespace {
void project(int64_t layer, const std::string& name, const RowMatrix& weight, const Eigen::VectorXf* bias,
             const RowMatrix& input, RowMatrix& output, const RunOptions& options) {
  linear(input, weight, bias ? bias->data() : nullptr, output);
  if (options.observer)
    options.observer->on_linear({layer, name, input, options.observer->wants_output() ? &output : nullptr});
}

void refuse_masks(const RunOptions& options) {
  if (options.masks)
    throw_error(ErrorKind::Unsupported, "pruning masks in the forward pass are not supported for GPT-2 models");
}
}  // namespace

void Gpt2Runner::run_layer(int64_t l, RowMatrix& x, int64_t first, KvCache* cache, const RunOptions& options) const {
  const Layer& L = layers_[static_cast<size_t>(l)];
  const int64_t n = x.rows(), h = config_.hidden_size;
  const float eps = static_cast<float>(config_.norm_eps);
  const AttentionShape shape{config_.num_heads, config_.num_heads, config_.head_dim};
  RowMatrix normed, qkv, attended, out, hidden;
  layer_norm(x, L.ln1_w, L.ln1_b, eps, normed);
  project(l, L.c_attn.name, L.c_attn.weight, &L.c_attn.bias, normed, qkv, options);
  const RowMatrix q = qkv.leftCols(h), k = qkv.middleCols(h, h), v = qkv.rightCols(h);
  if (cache) {
    RowMatrix& keys = cache->keys_[static_cast<size_t>(l)];
    RowMatrix& values = cache->values_[static_cast<size_t>(l)];
    keys.middleRows(first, n) = k;
    values.middleRows(first, n) = v;
    causal_attention(q, keys, values, first + n, first, shape, attended);
  } else {
    causal_attention(q, k, v, n, 0, shape, attended);
  }
  project(l, L.c_proj.name, L.c_proj.weight, &L.c_proj.bias, attended, out, options);
  x += out;
  layer_norm(x, L.ln2_w, L.ln2_b, eps, normed);
  project(l, L.c_fc.name, L.c_fc.weight, &L.c_fc.bias, normed, hidden, options);
  gelu_tanh_in_place(hidden);
  project(l, L.mlp_proj.name, L.mlp_proj.weight, &L.mlp_proj.bias, hidden, out, options);
  x += out;
}

void Gpt2Runner::run_block(int64_t layer, RowMatrix& hidden, const RunOptions& options) const {
  refuse_masks(options);
  if (layer < 0 || layer >= layer_count())
    throw_error(ErrorKind::Internal, "run_block: layer {} is out of range (the model has {})", layer, layer_count());
  if (hidden.cols() != config_.hidden_size)
    throw_error(ErrorKind::Internal, "run_block: hidden has {} columns, the model {}", hidden.cols(),
                config_.hidden_size);
  run_layer(layer, hidden, 0, nullptr, options);
}

RowMatrix Gpt2Runner::final_logits(const RowMatrix& hidden, const RunOptions& options) const {
  if (hidden.cols() != config_.hidden_size)
    throw_error(ErrorKind::Internal, "final_logits: hidden has {} columns, the model {}", hidden.cols(),
                config_.hidden_size);
  RowMatrix normed, logits;
  layer_norm(hidden, lnf_w_, lnf_b_, static_cast<float>(config_.norm_eps), normed);
  project(kOutputLayer, names::gpt2::kTokenEmbedding, wte_, nullptr, normed, logits, options);
  return logits;
}

RowMatrix Gpt2Runner::forward(std::span<const int32_t> tokens, int64_t first, KvCache* cache,
                              const RunOptions& options) const {
  refuse_masks(options);
  RowMatrix x = embed(tokens, first);
  for (int64_t l = 0; l < layer_count(); ++l) run_layer(l, x, first, cache, options);
  return final_logits(x, options);
}

}  // namespace slmopt
