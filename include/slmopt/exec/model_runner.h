// The reference CPU forward pass of the llama family (Llama, Mistral, Qwen2) over the IR Model: what
// evaluation, calibration, pruning and distillation run.
//
//   embed → per block: x += o_proj(attention(rope(q), rope(k), v)) on rms_norm(x),
//                      x += down_proj(silu(gate_proj(h)) · up_proj(h)) on h = rms_norm(x)
//         → rms_norm → lm_head (or the tied embedding)
//
// Grouped-query attention: query head h reads KV head h / (heads / kv_heads); causal; scores scaled by
// 1/sqrt(head_dim); softmax in float after subtracting the row maximum.
//
// The runner owns float copies of the weights (decoded once at construction) and is immutable afterwards
// except through reload_layer, so its const methods may be called from several threads at once. Results
// are bit-identical for any thread count; a window gives the same bits alone or inside a batch. Incremental
// decoding through a KvCache matches a full recompute to float rounding (not bit for bit: the matrix
// products see different shapes).
//
// GPT-2 models (Family::Gpt2) run through the same entry points: the runner then holds a Gpt2Runner and forwards
// every call to it (whole windows, decoding, the block-level API and the observer hook, which sees c_attn,
// attn.c_proj, c_fc, mlp.c_proj and the tied head). Pruning masks and weights() are refused for GPT-2
// (Error(Unsupported)): the llama-shaped DecodedModel does not describe a GPT-2 block.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "slmopt/core/error.h"
#include "slmopt/exec/decoded_weights.h"
#include "slmopt/exec/gpt2_runner.h"
#include "slmopt/exec/kv_cache.h"
#include "slmopt/exec/matrix.h"
#include "slmopt/exec/rope.h"
#include "slmopt/exec/run_options.h"
#include "slmopt/ir/model.h"

namespace slmopt {

class ModelRunner {
 public:
  // Validates the model and decodes every weight to float. Throws Error(BadInput) for missing or mis-shaped
  // tensors.
  explicit ModelRunner(const Model& model);

  const Config& config() const { return config_; }
  int64_t vocab_size() const { return config_.vocab_size; }
  int64_t hidden_size() const { return config_.hidden_size; }
  int64_t layer_count() const {
    return gpt2_ ? gpt2_->layer_count() : static_cast<int64_t>(weights_.layers.size());
  }
  bool is_gpt2() const { return gpt2_.has_value(); }
  // The llama-shaped decoded weights (what pruning reads). Error(Unsupported) for GPT-2, whose blocks it does
  // not describe.
  const DecodedModel& weights() const {
    if (gpt2_)
      throw_error(ErrorKind::Unsupported, "the decoded llama-family weights (used by pruning) do not exist for GPT-2");
    return weights_;
  }

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
  KvCache make_cache(int64_t capacity) const;
  // Appends tokens at positions cache.size() ... and returns their logits [tokens.size(), vocab]. Throws
  // Error(Usage) when the cache lacks room or was made for other shapes.
  RowMatrix decode(KvCache& cache, std::span<const int32_t> tokens, const RunOptions& options = {}) const;

  // --- block level (sequential calibration) -------------------------------------------------------------
  // Embedding rows [T, hidden]. Throws Error(BadInput) for a token id outside the vocabulary.
  RowMatrix embed(std::span<const int32_t> tokens) const;
  // Runs block `layer` on hidden [T, hidden] in place; row i sits at positions[i] for RoPE (empty positions:
  // 0..T-1) and attends rows 0..i.
  void run_block(int64_t layer, RowMatrix& hidden, std::span<const int64_t> positions = {},
                 const RunOptions& options = {}) const;
  // run_block on several windows (positions 0..T-1 each): in parallel over windows, or in order on the calling
  // thread when options.observer is set. Each result is bit-identical to run_block on that window alone.
  void run_block_windows(int64_t layer, std::span<RowMatrix> hiddens, const RunOptions& options = {}) const;
  // Final norm and output head: [T, hidden] → [T, vocab].
  RowMatrix final_logits(const RowMatrix& hidden, const RunOptions& options = {}) const;

  // Decodes block `layer` of `model` again after a pass replaced its tensors (quantized, pruned), so later
  // calls use the new weights. Caches made before a change of KV width no longer fit (decode throws).
  void reload_layer(const Model& model, int64_t layer);

 private:
  void run_layer(int64_t layer, RowMatrix& hidden, std::span<const int64_t> positions, KvCache* cache,
                 const RunOptions& options) const;
  void check_masks(const RunOptions& options) const;

  Config config_;
  DecodedModel weights_;
  RotaryEmbedding rope_;
  std::optional<Gpt2Runner> gpt2_;  // set for Family::Gpt2; every public call forwards to it
};

}  // namespace slmopt
