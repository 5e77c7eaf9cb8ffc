// The llama-family forward pass (see model_runner.h for the graph). One block runs as: RMSNorm → q/k/v
// projections (+ biases) → RoPE on q and k → (append k, v to the cache) → causal GQA → head mask → o_proj →
// residual; RMSNorm → gate/up → SwiGLU → channel mask → down_proj → residual. Every stage is split over
// independent outputs (columns, rows, heads, windows), so the thread count never changes a bit.
#include "slmopt/exec/model_runner.h"

#include <numeric>

#include "attention.h"
#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/kernels.h"
#include "work_split.h"

namespace slmopt {
namespace {

std::vector<int64_t> sequential_positions(int64_t first, int64_t count) {
  std::vector<int64_t> positions(static_cast<size_t>(count));
  std::iota(positions.begin(), positions.end(), first);
  return positions;
}

// Runs one linear layer and reports it to the observer, if any.
void project(int64_t layer, const DecodedLinear& lin, const RowMatrix& input, RowMatrix& output,
             const RunOptions& options) {
  linear(input, lin.weight, lin.has_bias() ? lin.bias.data() : nullptr, output);
  if (options.observer)
    options.observer->on_linear({layer, lin.name, input, options.observer->wants_output() ? &output : nullptr});
}

void apply_rope(const RotaryEmbedding& rope, RowMatrix& x, int64_t n_heads, std::span<const int64_t> positions) {
  parallel_for(
      static_cast<size_t>(x.rows()),
      [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) rope.apply(x.data() + i * x.cols(), n_heads, positions[i]);
      },
      min_chunk_for(3 * x.cols()));
}

// Multiplies each group of `width` columns by its gate (gates equal to 1 are skipped).
void apply_column_gates(RowMatrix& x, const std::vector<float>& gates, int64_t width) {
  for (size_t g = 0; g < gates.size(); ++g) {
    if (gates[g] == 1.0f) continue;
    x.middleCols(static_cast<int64_t>(g) * width, width) *= gates[g];
  }
}

const std::vector<float>* layer_mask(const std::vector<std::vector<float>>& masks, int64_t layer) {
  if (masks.empty()) return nullptr;
  const auto& m = masks[static_cast<size_t>(layer)];
  return m.empty() ? nullptr : &m;
}

}  // namespace

ModelRunner::ModelRunner(const Model& model) : config_(model.config) {
  if (config_.family == Family::Gpt2) {
    gpt2_.emplace(model);
    return;
  }
  model.validate();
  weights_ = decode_model(model);
  rope_ = RotaryEmbedding(config_);
}

void ModelRunner::reload_layer(const Model& model, int64_t layer) {
  if (gpt2_) return gpt2_->reload_layer(model, layer);
  if (model.config.hidden_size != config_.hidden_size || model.config.head_dim != config_.head_dim ||
      model.config.num_layers != config_.num_layers)
    throw_error(ErrorKind::Internal, "reload_layer: the model's hidden size, head_dim or layer count changed");
  weights_.layers.at(static_cast<size_t>(layer)) = decode_layer(model, layer);
}

void ModelRunner::check_masks(const RunOptions& options) const {
  if (!options.masks) return;
  if (gpt2_) throw_error(ErrorKind::Unsupported, "pruning masks in the forward pass are not supported for GPT-2 models");
  const ForwardMasks& m = *options.masks;
  auto check = [&](const std::vector<std::vector<float>>& per_layer, const char* what, auto width_of) {
    if (per_layer.empty()) return;
    if (static_cast<int64_t>(per_layer.size()) != layer_count())
      throw_error(ErrorKind::Internal, "{} masks cover {} layers, the model has {}", what, per_layer.size(),
                  layer_count());
    for (int64_t l = 0; l < layer_count(); ++l) {
      const auto& mask = per_layer[static_cast<size_t>(l)];
      const int64_t want = width_of(weights_.layers[static_cast<size_t>(l)]);
      if (!mask.empty() && static_cast<int64_t>(mask.size()) != want)
        throw_error(ErrorKind::Internal, "layer {}: the {} mask has {} entries, the layer has {}", l, what,
                    mask.size(), want);
    }
  };
  check(m.heads, "head", [](const DecodedLayer& d) { return d.n_heads; });
  check(m.ffn_channels, "FFN channel", [](const DecodedLayer& d) { return d.ffn; });
}

RowMatrix ModelRunner::embed(std::span<const int32_t> tokens) const {
  if (gpt2_) return gpt2_->embed(tokens);  // token + position embeddings at 0..T-1
  const RowMatrix& table = *weights_.embedding;
  RowMatrix hidden(static_cast<int64_t>(tokens.size()), table.cols());
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int32_t id = tokens[i];
    if (id < 0 || id >= table.rows())
      throw_error(ErrorKind::BadInput, "token id {} at position {} is outside the vocabulary of {} tokens", id, i,
                  table.rows());
    hidden.row(static_cast<int64_t>(i)) = table.row(id);
  }
  return hidden;
}

void ModelRunner::run_layer(int64_t layer, RowMatrix& hidden, std::span<const int64_t> positions, KvCache* cache,
                            const RunOptions& options) const {
  const DecodedLayer& w = weights_.layers[static_cast<size_t>(layer)];
  const float eps = static_cast<float>(config_.norm_eps);
  const int64_t tokens = hidden.rows(), hd = config_.head_dim;

  // Attention.
  RowMatrix normed, q, k, v;
  rms_norm(hidden, w.attn_norm, eps, normed);
  project(layer, w.q, normed, q, options);
  project(layer, w.k, normed, k, options);
  project(layer, w.v, normed, v, options);
  apply_rope(rope_, q, w.n_heads, positions);
  apply_rope(rope_, k, w.n_kv_heads, positions);

  RowMatrix attended;
  const AttentionShape shape{w.n_heads, w.n_kv_heads, hd};
  if (cache) {
    const int64_t past = cache->size_;
    RowMatrix& keys = cache->keys_[static_cast<size_t>(layer)];
    RowMatrix& values = cache->values_[static_cast<size_t>(layer)];
    keys.middleRows(past, tokens) = k;
    values.middleRows(past, tokens) = v;
    causal_attention(q, keys, values, past + tokens, past, shape, attended);
  } else {
    causal_attention(q, k, v, tokens, 0, shape, attended);
  }
  if (options.masks)
    if (const auto* gates = layer_mask(options.masks->heads, layer)) apply_column_gates(attended, *gates, hd);
  RowMatrix out;
  project(layer, w.o, attended, out, options);
  hidden += out;

  // Feed-forward.
  rms_norm(hidden, w.ffn_norm, eps, normed);
  RowMatrix gate, up;
  project(layer, w.gate, normed, gate, options);
  project(layer, w.up, normed, up, options);
  swiglu_in_place(gate, up);
  if (options.masks)
    if (const auto* gates = layer_mask(options.masks->ffn_channels, layer)) apply_column_gates(gate, *gates, 1);
  project(layer, w.down, gate, out, options);
  hidden += out;
}

void ModelRunner::run_block(int64_t layer, RowMatrix& hidden, std::span<const int64_t> positions,
                            const RunOptions& options) const {
  if (layer < 0 || layer >= layer_count())
    throw_error(ErrorKind::Internal, "run_block: layer {} is out of range (the model has {})", layer, layer_count());
  if (hidden.cols() != config_.hidden_size)
    throw_error(ErrorKind::Internal, "run_block: hidden has {} columns, the model {}", hidden.cols(),
                config_.hidden_size);
  check_masks(options);
  if (gpt2_) return gpt2_->run_block(layer, hidden, options);  // positions entered at embed (no RoPE)
  if (positions.empty()) {
    const auto sequential = sequential_positions(0, hidden.rows());
    run_layer(layer, hidden, sequential, nullptr, options);
    return;
  }
  if (static_cast<int64_t>(positions.size()) != hidden.rows())
    throw_error(ErrorKind::Internal, "run_block: {} positions for {} rows", positions.size(), hidden.rows());
  run_layer(layer, hidden, positions, nullptr, options);
}

void ModelRunner::run_block_windows(int64_t layer, std::span<RowMatrix> hiddens, const RunOptions& options) const {
  if (options.observer) {
    for (RowMatrix& hidden : hiddens) run_block(layer, hidden, {}, options);
    return;
  }
  parallel_for(hiddens.size(), [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) run_block(layer, hiddens[i], {}, options);
  });
}

RowMatrix ModelRunner::final_logits(const RowMatrix& hidden, const RunOptions& options) const {
  if (hidden.cols() != config_.hidden_size)
    throw_error(ErrorKind::Internal, "final_logits: hidden has {} columns, the model {}", hidden.cols(),
                config_.hidden_size);
  if (gpt2_) return gpt2_->final_logits(hidden, options);
  RowMatrix normed, logits;
  rms_norm(hidden, weights_.final_norm, static_cast<float>(config_.norm_eps), normed);
  linear(normed, *weights_.output, nullptr, logits);
  if (options.observer)
    options.observer->on_linear(
        {kOutputLayer, weights_.output_name, normed, options.observer->wants_output() ? &logits : nullptr});
  return logits;
}

RowMatrix ModelRunner::logits(std::span<const int32_t> tokens, const RunOptions& options) const {
  check_masks(options);
  if (gpt2_) return gpt2_->logits(tokens, options);
  RowMatrix hidden = embed(tokens);
  const auto positions = sequential_positions(0, hidden.rows());
  for (int64_t l = 0; l < layer_count(); ++l) run_layer(l, hidden, positions, nullptr, options);
  return final_logits(hidden, options);
}

void ModelRunner::for_each_window(std::span<const std::vector<int32_t>> windows,
                                  const std::function<void(size_t, const RowMatrix&)>& consume,
                                  const RunOptions& options) const {
  check_masks(options);
  if (options.observer) {
    for (size_t i = 0; i < windows.size(); ++i) consume(i, logits(windows[i], options));
    return;
  }
  parallel_for(windows.size(), [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) consume(i, logits(windows[i], options));
  });
}

std::vector<RowMatrix> ModelRunner::logits_batch(std::span<const std::vector<int32_t>> windows,
                                                 const RunOptions& options) const {
  std::vector<RowMatrix> out(windows.size());
  for_each_window(windows, [&](size_t i, const RowMatrix& logits) { out[i] = logits; }, options);
  return out;
}

KvCache ModelRunner::make_cache(int64_t capacity) const {
  if (gpt2_) return gpt2_->make_cache(capacity);
  std::vector<int64_t> widths;
  for (const auto& layer : weights_.layers) widths.push_back(layer.n_kv_heads * config_.head_dim);
  return KvCache(widths, capacity);
}

RowMatrix ModelRunner::decode(KvCache& cache, std::span<const int32_t> tokens, const RunOptions& options) const {
  check_masks(options);
  if (gpt2_) return gpt2_->decode(cache, tokens, options);
  if (cache.layer_count() != layer_count())
    throw_error(ErrorKind::Usage, "KV cache has {} layers, the model {}", cache.layer_count(), layer_count());
  for (int64_t l = 0; l < layer_count(); ++l) {
    const int64_t width = weights_.layers[static_cast<size_t>(l)].n_kv_heads * config_.head_dim;
    if (cache.keys(l).cols() != width)
      throw_error(ErrorKind::Usage, "KV cache layer {} holds {} values per token, the model needs {}", l,
                  cache.keys(l).cols(), width);
  }
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (cache.size() + n > cache.capacity())
    throw_error(ErrorKind::Usage, "KV cache holds {} of {} tokens; {} more do not fit", cache.size(),
                cache.capacity(), n);
  RowMatrix hidden = embed(tokens);
  const auto positions = sequential_positions(cache.size(), n);
  for (int64_t l = 0; l < layer_count(); ++l) run_layer(l, hidden, positions, &cache, options);
  cache.size_ += n;
  return final_logits(hidden, options);
}

}  // namespace slmopt
