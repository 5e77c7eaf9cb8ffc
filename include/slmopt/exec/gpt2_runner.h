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
// determinism rules as ModelRunner: results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "slmopt/exec/matrix.h"
#include "slmopt/ir/model.h"

namespace slmopt {

class Gpt2Runner {
 public:
  // Decodes every weight to float. Error(Unsupported) for other families, Error(BadInput) for missing or
  // mis-shaped tensors.
  explicit Gpt2Runner(const Model& model);

  const Config& config() const { return config_; }
  int64_t vocab_size() const { return config_.vocab_size; }

  // Logits [T, vocab] of one window at positions 0..T-1. Error(BadInput) for a token outside the vocabulary or
  // a window longer than the position table.
  RowMatrix logits(std::span<const int32_t> tokens) const;

  // Incremental decoding: keys/values of the tokens seen so far, per layer [tokens, hidden].
  struct Cache {
    std::vector<RowMatrix> keys, values;
    int64_t size = 0;
  };
  Cache make_cache(int64_t capacity) const;
  // Appends tokens at positions cache.size … and returns their logits. Error(Usage) when the cache is full.
  RowMatrix decode(Cache& cache, std::span<const int32_t> tokens) const;

 private:
  struct Layer {
    Eigen::VectorXf ln1_w, ln1_b, ln2_w, ln2_b;
    RowMatrix c_attn, c_proj, c_fc, mlp_proj;  // [out, in]
    Eigen::VectorXf c_attn_b, c_proj_b, c_fc_b, mlp_proj_b;
  };
  RowMatrix forward(std::span<const int32_t> tokens, int64_t first_position, Cache* cache) const;

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
