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
  const int64_t h = c.hidden_size, f = c.intermediate_size;
  wte_ = decode_matrix(model, g::kTokenEmbedding, c.vocab_size, h);
  wpe_ = decode_matrix(model, g::kPositionEmbedding, c.max_position, h);
  lnf_w_ = decode_vector(model, g::kFinalNormWeight, h);
  lnf_b_ = decode_vector(model, g::kFinalNormBias, h);
  layers_.resize(static_cast<size_t>(c.num_layers));
  for (int64_t l = 0; l < c.num_layers; ++l) {
    Layer& L = layers_[static_cast<size_t>(l)];
    L.ln1_w = decode_vector(model, g::block(l, "ln_1.weight"), h);
    L.ln1_b = decode_vector(model, g::block(l, "ln_1.bias"), h);
    L.ln2_w = decode_vector(model, g::block(l, "ln_2.weight"), h);
    L.ln2_b = decode_vector(model, g::block(l, "ln_2.bias"), h);
    L.c_attn = decode_matrix(model, g::block(l, "attn.c_attn.weight"), 3 * h, h);
    L.c_attn_b = decode_vector(model, g::block(l, "attn.c_attn.bias"), 3 * h);
    L.c_proj = decode_matrix(model, g::block(l, "attn.c_proj.weight"), h, h);
    L.c_proj_b = decode_vector(model, g::block(l, "attn.c_proj.bias"), h);
    L.c_fc = decode_matrix(model, g::block(l, "mlp.c_fc.weight"), f, h);
    L.c_fc_b = decode_vector(model, g::block(l, "mlp.c_fc.bias"), f);
    L.mlp_proj = decode_matrix(model, g::block(l, "mlp.c_proj.weight"), h, f);
    L.mlp_proj_b = decode_vector(model, g::block(l, "mlp.c_proj.bias"), h);
  }
}

Gpt2Runner::Cache Gpt2Runner::make_cache(int64_t capacity) const {
  Cache cache;
  for (size_t l = 0; l < layers_.size(); ++l) {
    cache.keys.emplace_back(capacity, config_.hidden_size);
    cache.values.emplace_back(capacity, config_.hidden_size);
  }
  return cache;
}

RowMatrix Gpt2Runner::logits(std::span<const int32_t> tokens) const { return forward(tokens, 0, nullptr); }

RowMatrix Gpt2Runner::decode(Cache& cache, std::span<const int32_t> tokens) const {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (cache.keys.size() != layers_.size() || (cache.keys.empty() ? 0 : cache.keys[0].rows()) < cache.size + n)
    throw_error(ErrorKind::Usage, "GPT-2 KV cache holds {} tokens; {} more do not fit", cache.size, n);
  RowMatrix out = forward(tokens, cache.size, &cache);
  cache.size += n;
  return out;
}

RowMatrix Gpt2Runner::forward(std::span<const int32_t> tokens, int64_t first, Cache* cache) const {
  const Config& c = config_;
  const int64_t n = static_cast<int64_t>(tokens.size()), h = c.hidden_size;
  if (first + n > c.max_position)
    throw_error(ErrorKind::BadInput, "GPT-2: positions up to {} exceed the position table of {}", first + n,
                c.max_position);
  RowMatrix x(n, h);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t id = tokens[static_cast<size_t>(i)];
    if (id < 0 || id >= c.vocab_size)
      throw_error(ErrorKind::BadInput, "token id {} at position {} is outside the vocabulary of {} tokens", id, i,
                  c.vocab_size);
    x.row(i) = wte_.row(id) + wpe_.row(first + i);
  }
  const float eps = static_cast<float>(c.norm_eps);
  const AttentionShape shape{c.num_heads, c.num_heads, c.head_dim};
  RowMatrix normed, qkv, attended, out, hidden;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    layer_norm(x, L.ln1_w, L.ln1_b, eps, normed);
    linear(normed, L.c_attn, L.c_attn_b.data(), qkv);
    const RowMatrix q = qkv.leftCols(h), k = qkv.middleCols(h, h), v = qkv.rightCols(h);
    if (cache) {
      cache->keys[l].middleRows(first, n) = k;
      cache->values[l].middleRows(first, n) = v;
      causal_attention(q, cache->keys[l], cache->values[l], first + n, first, shape, attended);
    } else {
      causal_attention(q, k, v, n, 0, shape, attended);
    }
    linear(attended, L.c_proj, L.c_proj_b.data(), out);
    x += out;
    layer_norm(x, L.ln2_w, L.ln2_b, eps, normed);
    linear(normed, L.c_fc, L.c_fc_b.data(), hidden);
    gelu_tanh_in_place(hidden);
    linear(hidden, L.mlp_proj, L.mlp_proj_b.data(), out);
    x += out;
  }
  layer_norm(x, lnf_w_, lnf_b_, eps, normed);
  RowMatrix logits;
  linear(normed, wte_, nullptr, logits);
  return logits;
}

}  // namespace slmopt
