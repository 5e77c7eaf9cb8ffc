// The reference CPU forward pass of every decoder the IR describes (ir/config.h): what evaluation, calibration,
// pruning and distillation run. It reads only the decoder description and the canonical tensors, never the
// family tag:
//
//   x = embed[token] · embedding_scale (+ learned position row)
//   per block, Sequential residual:
//     a = attention(pre ? norm(x) : x);  a = post ? post_norm(a) : a;  x += residual_scale · a
//     m = mlp(pre ? norm(x) : x);        m = post ? post_norm(m) : m;  x += residual_scale · m
//   Parallel residual (Phi-2): h = norm(x);  x += residual_scale · (attention(h) + mlp(h))
//   logits = head(final_norm(x)) (+ bias) · logit_scale, then soft-capped when final_logit_softcap > 0
//
// attention: q/k/v projections (+ biases) → q/k norms (per head or over the whole projection) → RoPE on the
// first rotary_dim values of each head (per-layer base and scaling, none on NoPE layers) → causal grouped-query
// attention (query head h reads KV head h / (heads / kv_heads); scores × attention_scale, soft-capped, sliding
// window on local layers; softmax in float after subtracting the row maximum) → o_proj. mlp: SwiGLU, GeGLU
// (tanh) or GELU (tanh) without a gate, with biases when mlp_bias. Norms are RMSNorm or LayerNorm (+ bias),
// weights (1 + w) on unit-offset models.
//
// Weights are used as stored (F32, F16, BF16, GGUF block types): the runner keeps the Model's Tensor handles
// (views into the mapped file, shared with the Model) and multiplies through exec/stored_linear.h, so its
// memory is the mapped weights plus small decoded vectors (norms, biases). It is immutable afterwards except
// through reload_layer, so its const methods may be called from several threads at once. Results are
// bit-identical for any thread count; a window gives the same bits alone or inside a batch. Incremental
// decoding through a KvCache matches a full recompute to float rounding (not bit for bit: the matrix products
// see different shapes).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "slmopt/exec/kv_cache.h"
#include "slmopt/exec/layer_weights.h"
#include "slmopt/exec/matrix.h"
#include "slmopt/exec/rope.h"
#include "slmopt/exec/run_options.h"
#include "slmopt/ir/model.h"

namespace slmopt {

class ModelRunner {
 public:
  // Validates the model and collects its tensors (no decoding of matrices). Throws Error(BadInput) for missing
  // or mis-shaped tensors.
  explicit ModelRunner(const Model& model);

  const Config& config() const { return config_; }
  int64_t vocab_size() const { return config_.vocab_size; }
  int64_t hidden_size() const { return config_.hidden_size; }
  int64_t layer_count() const { return static_cast<int64_t>(weights_.layers.size()); }
  // The tensors the pass runs on (what pruning reads; decode_matrix turns one into floats).
  const ModelWeights& weights() const { return weights_; }
  const LayerWeights& layer_weights(int64_t layer) const { return weights_.layers.at(static_cast<size_t>(layer)); }

  // --- whole windows -----------------------------------------------------------------------------------
  // Logits [T, vocab] of one window at positions 0..T-1; row i predicts token i+1.
  RowMatrix logits(std::span<const int32_t> tokens, const RunOptions& options = {}) const;

  // Runs every window and hands its logits to consume(index, logits). Windows run in parallel (consume is
  // then called concurrently, once per index) unless options.observer is set, in which case they run in
  // order on the calling thread. Each window's logits are bit-identical to logits(window).
  void for_each_window(std::span<const std::vector<int32_t>> windows,
                       const std::function<void(size_t index, const RowMatrix& logits)>& consume,
                       const RunOptions& options = {}) const;
  std::vector<RowMatrix> logits_batch(std::span<const std::vector<int32_t>> windows,
                                      const RunOptions& options = {}) const;

  // --- incremental decoding ----------------------------------------------------------------------------
  // Keys and values of every token are kept (local layers mask by distance, so decoding past a sliding window
  // matches a full recompute).
  KvCache make_cache(int64_t capacity) const;
  // Appends tokens at positions cache.size() ... and returns their logits [tokens.size(), vocab]. Throws
  // Error(Usage) when the cache lacks room or was made for other shapes.
  RowMatrix decode(KvCache& cache, std::span<const int32_t> tokens, const RunOptions& options = {}) const;

  // --- block level (sequential calibration) -------------------------------------------------------------
  // Embedding rows [T, hidden] of tokens at positions first_position.. (scaled; learned positions added).
  // Throws Error(BadInput) for a token id outside the vocabulary or a position beyond a learned table.
  RowMatrix embed(std::span<const int32_t> tokens, int64_t first_position = 0) const;
  // Runs block `layer` on hidden [T, hidden] in place; row i sits at positions[i] for RoPE (empty positions:
  // 0..T-1) and attends rows 0..i (a local layer: the last sliding_window rows of those).
  void run_block(int64_t layer, RowMatrix& hidden, std::span<const int64_t> positions = {},
                 const RunOptions& options = {}) const;
  // run_block on several windows (positions 0..T-1 each): in parallel over windows, or in order on the calling
  // thread when options.observer is set. Each result is bit-identical to run_block on that window alone.
  void run_block_windows(int64_t layer, std::span<RowMatrix> hiddens, const RunOptions& options = {}) const;
  // Final norm, output head, logit scale and soft-cap: [T, hidden] → [T, vocab].
  RowMatrix final_logits(const RowMatrix& hidden, const RunOptions& options = {}) const;
  // The final norm alone: the output head's input (calibration's statistics of the head).
  RowMatrix final_norm(const RowMatrix& hidden) const;

  // Collects block `layer` of `model` again after a pass replaced its tensors (quantized, pruned), so later
  // calls use the new weights. Caches made before a change of KV width no longer fit (decode throws).
  void reload_layer(const Model& model, int64_t layer);

 private:
  void run_layer(int64_t layer, RowMatrix& hidden, std::span<const int64_t> positions, bool long_rope,
                 KvCache* cache, const RunOptions& options) const;
  void attention(int64_t layer, const RowMatrix& input, std::span<const int64_t> positions, bool long_rope,
                 KvCache* cache, const RunOptions& options, RowMatrix& out) const;
  void mlp(int64_t layer, const RowMatrix& input, const RunOptions& options, RowMatrix& out) const;
  void norm(const RowMatrix& x, const NormWeights& weights, RowMatrix& y) const;
  void check_masks(const RunOptions& options) const;

  Config config_;
  ModelWeights weights_;
  std::vector<RotaryEmbedding> ropes_;  // the distinct rotations (global; Gemma-3 local)
  std::vector<int> layer_rope_;         // per layer: index into ropes_, or -1 (NoPE / learned positions)
};

}  // namespace slmopt
