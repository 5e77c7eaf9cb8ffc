// The forward pass of the decoder description (see model_runner.h for the graph). Every stage is split over
// independent outputs (columns, rows, heads, windows), so the thread count never changes a bit. Optional
// stages (biases, q/k norms, post norms, scales of 1, soft-caps of 0) are skipped rather than applied as
// identities, so a plain Llama block does exactly the arithmetic it always did.
#include "slmopt/exec/model_runner.h"

#include <algorithm>
#include <numeric>

#include "attention.h"
#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/kernels.h"
#include "slmopt/exec/stored_linear.h"
#include "slmopt/ir/rope_frequencies.h"
#include "work_split.h"

namespace slmopt {
namespace {

std::vector<int64_t> sequential_positions(int64_t first, int64_t count) {
  std::vector<int64_t> positions(static_cast<size_t>(count));
  std::iota(positions.begin(), positions.end(), first);
  return positions;
}

// Runs one linear layer on the stored weight and reports it to the observer, if any: before the product when the
// observer wants only the input, so one that ends the call there (ForwardStop) does not pay for it.
void project(int64_t layer, const StoredLinear& lin, const RowMatrix& input, RowMatrix& output,
             const RunOptions& options) {
  const bool after = options.observer && options.observer->wants_output();
  if (options.observer && !after) options.observer->on_linear({layer, lin.name(), input, nullptr});
  linear_stored(input, lin.weight, lin.has_bias() ? lin.bias.data() : nullptr, output);
  if (after) options.observer->on_linear({layer, lin.name(), input, &output});
}

void apply_rope(const RotaryEmbedding& rope, RowMatrix& x, int64_t n_heads, std::span<const int64_t> positions,
                bool long_factors) {
  parallel_for(
      static_cast<size_t>(x.rows()),
      [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) rope.apply(x.data() + i * x.cols(), n_heads, positions[i], long_factors);
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

// x += scale · y (Granite's residual multiplier; plain addition when scale is 1).
void add_residual(RowMatrix& x, const RowMatrix& y, float scale) {
  if (scale == 1.0f)
    x += y;
  else
    x.noalias() += y * scale;
}

int64_t max_position(std::span<const int64_t> positions) {
  return positions.empty() ? 0 : *std::max_element(positions.begin(), positions.end());
}

}  // namespace

ModelRunner::ModelRunner(const Model& model) : config_(model.config) {
  model.validate();
  weights_ = load_model_weights(model);
  // One RotaryEmbedding per distinct (base, scaled) pair: the global layers' and, on Gemma-3, the local ones'.
  std::vector<std::pair<double, bool>> keys;
  for (int64_t l = 0; l < config_.num_layers; ++l) {
    if (!config_.layer_uses_rope(l)) {
      layer_rope_.push_back(-1);
      continue;
    }
    const std::pair<double, bool> key{config_.layer_rope_theta(l), config_.layer_rope_scaled(l)};
    auto it = std::find(keys.begin(), keys.end(), key);
    if (it == keys.end()) {
      keys.push_back(key);
      ropes_.emplace_back(config_, l);
      it = keys.end() - 1;
    }
    layer_rope_.push_back(static_cast<int>(it - keys.begin()));
  }
}

void ModelRunner::reload_layer(const Model& model, int64_t layer) {
  if (model.config.hidden_size != config_.hidden_size || model.config.head_dim != config_.head_dim ||
      model.config.num_layers != config_.num_layers)
    throw_error(ErrorKind::Internal, "reload_layer: the model's hidden size, head_dim or layer count changed");
  weights_.layers.at(static_cast<size_t>(layer)) = load_layer_weights(model, layer);
}

void ModelRunner::check_masks(const RunOptions& options) const {
  if (!options.masks) return;
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
  check(m.heads, "head", [](const LayerWeights& d) { return d.n_heads; });
  check(m.ffn_channels, "FFN channel", [](const LayerWeights& d) { return d.ffn; });
}

RowMatrix ModelRunner::embed(std::span<const int32_t> tokens, int64_t first_position) const {
  RowMatrix hidden;
  gather_rows(weights_.embedding, tokens, hidden);
  if (config_.embedding_scale != 1.0) hidden *= static_cast<float>(config_.embedding_scale);
  if (config_.position_kind == PositionKind::Learned) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    if (first_position < 0 || first_position + n > config_.max_position)
      throw_error(ErrorKind::BadInput, "positions up to {} exceed the learned position table of {}",
                  first_position + n, config_.max_position);
    std::vector<int32_t> rows(static_cast<size_t>(n));
    std::iota(rows.begin(), rows.end(), static_cast<int32_t>(first_position));
    RowMatrix positions;
    gather_rows(weights_.positions, rows, positions);
    hidden += positions;
  }
  return hidden;
}

void ModelRunner::norm(const RowMatrix& x, const NormWeights& w, RowMatrix& y) const {
  const float eps = static_cast<float>(config_.norm_eps);
  if (config_.norm_kind == NormKind::RmsNorm)
    rms_norm(x, w.scale, eps, y);
  else
    layer_norm(x, w.scale, w.bias, eps, y);
}

void ModelRunner::attention(int64_t layer, const RowMatrix& input, std::span<const int64_t> positions,
                            bool long_rope, KvCache* cache, const RunOptions& options, RowMatrix& out) const {
  const LayerWeights& w = weights_.layers[static_cast<size_t>(layer)];
  const int64_t tokens = input.rows(), hd = config_.head_dim;
  const float eps = static_cast<float>(config_.norm_eps);
  RowMatrix q, k, v;
  project(layer, w.q, input, q, options);
  project(layer, w.k, input, k, options);
  project(layer, w.v, input, v, options);
  // q/k norms (always RMSNorm) come before the rotation.
  if (config_.qk_norm == QkNormKind::PerHead) {
    rms_norm_groups(q, w.q_norm.scale, eps);
    rms_norm_groups(k, w.k_norm.scale, eps);
  } else if (config_.qk_norm == QkNormKind::Whole) {
    rms_norm(q, w.q_norm.scale, eps, q);
    rms_norm(k, w.k_norm.scale, eps, k);
  }
  if (const int rope = layer_rope_[static_cast<size_t>(layer)]; rope >= 0) {
    apply_rope(ropes_[static_cast<size_t>(rope)], q, w.n_heads, positions, long_rope);
    apply_rope(ropes_[static_cast<size_t>(rope)], k, w.n_kv_heads, positions, long_rope);
  }

  RowMatrix attended;
  AttentionShape shape{w.n_heads, w.n_kv_heads, hd, static_cast<float>(config_.attention_scale())};
  shape.softcap = static_cast<float>(config_.attn_softcap);
  shape.window = config_.layer_is_sliding(layer) ? config_.sliding_window : 0;
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
  project(layer, w.o, attended, out, options);
}

void ModelRunner::mlp(int64_t layer, const RowMatrix& input, const RunOptions& options, RowMatrix& out) const {
  const LayerWeights& w = weights_.layers[static_cast<size_t>(layer)];
  RowMatrix act, up;
  if (config_.has_gate()) {
    project(layer, w.gate, input, act, options);
    project(layer, w.up, input, up, options);
    if (config_.mlp_kind == MlpKind::SwiGlu)
      swiglu_in_place(act, up);
    else
      geglu_tanh_in_place(act, up);
  } else {
    project(layer, w.up, input, act, options);
    gelu_tanh_in_place(act);
  }
  if (options.masks)
    if (const auto* gates = layer_mask(options.masks->ffn_channels, layer)) apply_column_gates(act, *gates, 1);
  project(layer, w.down, act, out, options);
}

void ModelRunner::run_layer(int64_t layer, RowMatrix& hidden, std::span<const int64_t> positions, bool long_rope,
                            KvCache* cache, const RunOptions& options) const {
  const LayerWeights& w = weights_.layers[static_cast<size_t>(layer)];
  const float residual_scale = static_cast<float>(config_.residual_scale);
  RowMatrix normed, out;
  if (config_.residual_layout == ResidualLayout::Parallel) {
    // One norm feeds both branches; x += attention(h) + mlp(h) (Phi-2).
    const RowMatrix* in = &hidden;
    if (w.attn_norm.present()) {
      norm(hidden, w.attn_norm, normed);
      in = &normed;
    }
    RowMatrix mlp_out;
    attention(layer, *in, positions, long_rope, cache, options, out);
    mlp(layer, *in, options, mlp_out);
    if (w.attn_post_norm.present()) {
      norm(out, w.attn_post_norm, out);
      norm(mlp_out, w.ffn_post_norm, mlp_out);
    }
    out += mlp_out;
    add_residual(hidden, out, residual_scale);
    return;
  }

  // Attention.
  const RowMatrix* in = &hidden;
  if (w.attn_norm.present()) {
    norm(hidden, w.attn_norm, normed);
    in = &normed;
  }
  attention(layer, *in, positions, long_rope, cache, options, out);
  if (w.attn_post_norm.present()) norm(out, w.attn_post_norm, out);
  add_residual(hidden, out, residual_scale);

  // Feed-forward.
  in = &hidden;
  if (w.ffn_norm.present()) {
    norm(hidden, w.ffn_norm, normed);
    in = &normed;
  }
  mlp(layer, *in, options, out);
  if (w.ffn_post_norm.present()) norm(out, w.ffn_post_norm, out);
  add_residual(hidden, out, residual_scale);
}

void ModelRunner::run_block(int64_t layer, RowMatrix& hidden, std::span<const int64_t> positions,
                            const RunOptions& options) const {
  if (layer < 0 || layer >= layer_count())
    throw_error(ErrorKind::Internal, "run_block: layer {} is out of range (the model has {})", layer, layer_count());
  if (hidden.cols() != config_.hidden_size)
    throw_error(ErrorKind::Internal, "run_block: hidden has {} columns, the model {}", hidden.cols(),
                config_.hidden_size);
  check_masks(options);
  if (positions.empty()) {
    const auto sequential = sequential_positions(0, hidden.rows());
    run_layer(layer, hidden, sequential, rope_long_factors_apply(config_, hidden.rows() - 1), nullptr, options);
    return;
  }
  if (static_cast<int64_t>(positions.size()) != hidden.rows())
    throw_error(ErrorKind::Internal, "run_block: {} positions for {} rows", positions.size(), hidden.rows());
  run_layer(layer, hidden, positions, rope_long_factors_apply(config_, max_position(positions)), nullptr, options);
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
  RowMatrix normed, logits;
  norm(hidden, weights_.final_norm, normed);
  project(kOutputLayer, weights_.head, normed, logits, options);  // the observer sees the head's own output
  if (config_.logit_scale != 1.0) logits *= static_cast<float>(config_.logit_scale);
  if (config_.final_logit_softcap > 0) softcap_in_place(logits, static_cast<float>(config_.final_logit_softcap));
  return logits;
}

RowMatrix ModelRunner::final_norm(const RowMatrix& hidden) const {
  RowMatrix normed;
  norm(hidden, weights_.final_norm, normed);
  return normed;
}

RowMatrix ModelRunner::logits(std::span<const int32_t> tokens, const RunOptions& options) const {
  check_masks(options);
  RowMatrix hidden = embed(tokens);
  const auto positions = sequential_positions(0, hidden.rows());
  const bool long_rope = rope_long_factors_apply(config_, hidden.rows() - 1);
  for (int64_t l = 0; l < layer_count(); ++l) run_layer(l, hidden, positions, long_rope, nullptr, options);
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
  std::vector<int64_t> widths;
  for (const auto& layer : weights_.layers) widths.push_back(layer.n_kv_heads * config_.head_dim);
  return KvCache(widths, capacity);
}

RowMatrix ModelRunner::decode(KvCache& cache, std::span<const int32_t> tokens, const RunOptions& options) const {
  check_masks(options);
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
  RowMatrix hidden = embed(tokens, cache.size());
  const auto positions = sequential_positions(cache.size(), n);
  const bool long_rope = rope_long_factors_apply(config_, cache.size() + n - 1);
  for (int64_t l = 0; l < layer_count(); ++l) run_layer(l, hidden, positions, long_rope, &cache, options);
  cache.size_ += n;
  return final_logits(hidden, options);
}

}  // namespace slmopt
