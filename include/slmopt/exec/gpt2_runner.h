// The reference CPU forward pass of the GPT-2 family (GPT2LMHeadModel) over the IR Model:
//
//   x = wte[token] + wpe[position] → per block:
//     x += c_proj(attention(split(c_attn(LayerNorm₁(x))) into Q, K, V))
//     x += mlp.c_proj(gelu_tanh(c_fc(LayerNorm₂(x))))
//   → LayerNorm_f → x · wteᵀ (tied head)
//
// LayerNorm has a weight and a bias (mean and variance in double per row); GELU is the tanh approximation
// (gelu_new): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). Multi-head causal attention scaled by 1/√head_dim,
// no RoPE (positions enter through wpe). Weights are in the IR's [out, in] layout (see io/hf_gpt2.h). Same
// determinism rules as ModelRunner: results do not depend on the thread count. Callers normally reach it through
// ModelRunner, which holds one for GPT-2 models and forwards every call (eval, calibration, decoding).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "slmopt/exec/kv_cache.h"
#include "slmopt/exec/matrix.h"
#include "slmopt/exec/run_options.h"
#include "slmopt/ir/model.h"

namespace slmopt {

class Gpt2Runner {
 public:
  // Decodes every weight to float. Error(Unsupported) for other families, Error(BadInput) for missing or
  // mis-shaped tensors.
  explicit Gpt2Runner(const Model& model);

  const Config& config() const { return config_; }
  int64_t vocab_size() const { return config_.vocab_size; }
  int64_t layer_count() const { return static_cast<int64_t>(layers_.size()); }

  // Logits [T, vocab] of one window at positions 0..T-1. Error(BadInput) for a token outside the vocabulary or
  // a window longer than the position table. options.observer sees c_attn, attn.c_proj, c_fc, mlp.c_proj per
  // block, then the tied head (layer kOutputLayer, name transformer.wte.weight); options.masks is refused
  // (Error(Unsupported)).
  RowMatrix logits(std::span<const int32_t> tokens, const RunOptions& options = {}) const;

  // Incremental decoding: keys/values of the tokens seen so far, per layer [capacity, hidden].
  using Cache = KvCache;
  Cache make_cache(int64_t capacity) const;
  // Appends tokens at positions cache.size … and returns their logits. Error(Usage) when the cache is full or
  // was made for other shapes.
  RowMatrix decode(Cache& cache, std::span<const int32_t> tokens, const RunOptions& options = {}) const;

  // --- block level (sequential calibration; same contract as ModelRunner's) ------------------------------
  // wte[token] + wpe[first_position + i], [T, hidden].
  RowMatrix embed(std::span<const int32_t> tokens, int64_t first_position = 0) const;
  // Runs block `layer` in place on hidden [T, hidden] whose rows are consecutive positions (causal over the
  // rows; GPT-2 blocks do not use the positions themselves).
  void run_block(int64_t layer, RowMatrix& hidden, const RunOptions& options = {}) const;
  // LayerNorm_f and the tied head: [T, hidden] → [T, vocab].
  RowMatrix final_logits(const RowMatrix& hidden, const RunOptions& options = {}) const;
  // Decodes block `layer` of `model` again after a pass replaced its tensors.
  void reload_layer(const Model& model, int64_t layer);

 private:
  struct Linear {
    std::string name;  // canonical weight name, reported to observers
    RowMatrix weight;  // [out, in]
    Eigen::VectorXf bias;
  };
  struct Layer {
    Eigen::VectorXf ln1_w, ln1_b, ln2_w, ln2_b;
    Linear c_attn, c_proj, c_fc, mlp_proj;
  };
  static Layer decode_layer(const Model& model, int64_t layer);
  void run_layer(int64_t layer, RowMatrix& x, int64_t first, KvCache* cache, const RunOptions& options) const;
  RowMatrix forward(std::span<const int32_t> tokens, int64_t first, KvCache* cache, const RunOptions& options) const;

  Config config_;
  RowMatrix wte_, wpe_;
  Eigen::VectorXf lnf_w_, lnf_b_;
  std::vector<Layer> layers_;
};

// y = (x − mean) / sqrt(var + eps) · weight + bias, row by row (statistics in double). y may alias x.
void layer_norm(const RowMatrix& x, const Eigen::VectorXf& weight, const Eigen::VectorXf& bias, float eps,
                RowMatrix& y);
// GELU, tanh approximation, in place.
void gelu_tanh_in_place(RowMatrix& x);

}  // namespace slmopt
