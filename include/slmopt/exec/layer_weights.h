// What the forward pass holds of a Model: its Tensors as stored (copies of the Tensor handles, which share the
// mapped or owned bytes, so nothing is decoded or duplicated), plus the small vectors decoded to float (norm
// weights, biases). Matrices are multiplied in their stored type through exec/stored_linear.h; a pass that needs
// one matrix as floats decodes it on demand with decode_matrix.
//
// Per-layer widths (query heads, KV heads, FFN channels) are read off the tensor shapes, so a pruned layer works
// the moment its tensors are replaced; load_layer_weights checks that the shapes agree with each other and with
// the decoder description (which tensors exist: decoder_tensors.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "slmopt/exec/matrix.h"
#include "slmopt/ir/model.h"

namespace slmopt {

// A linear layer: the weight [out, in] as stored and its bias decoded (empty when the layer has none).
struct StoredLinear {
  Tensor weight;
  Eigen::VectorXf bias;
  const std::string& name() const { return weight.name(); }
  bool has_bias() const { return bias.size() != 0; }
  bool present() const { return !weight.empty(); }
  int64_t rows() const { return weight.rank() == 2 ? weight.dim(0) : 0; }
};

// A norm's multiplier (already 1 + w for unit-offset norms) and bias (empty when none); absent when scale is empty.
struct NormWeights {
  Eigen::VectorXf scale;
  Eigen::VectorXf bias;
  bool present() const { return scale.size() != 0; }
};

struct LayerWeights {
  int64_t n_heads = 0, n_kv_heads = 0, ffn = 0;
  NormWeights attn_norm, ffn_norm;            // before attention / MLP (Pre, Sandwich; Parallel: attn_norm only)
  NormWeights attn_post_norm, ffn_post_norm;  // on the attention / MLP output (Sandwich, Post)
  NormWeights q_norm, k_norm;                 // q/k norms (QkNormKind::PerHead: [head_dim], Whole: [rows])
  StoredLinear q, k, v, o, gate, up, down;    // gate absent without a gate (MlpKind::GeluTanh)
};

struct ModelWeights {
  Tensor embedding;            // [vocab, hidden]
  Tensor positions;            // [max_position, hidden] learned positions, or empty
  StoredLinear head;           // lm_head (or the tied embedding, under its own name) and its bias
  NormWeights final_norm;
  std::vector<LayerWeights> layers;
};

// One block's weights. Throws Error(BadInput) naming the tensor when one is missing or its shape disagrees with
// the others or with config.hidden_size / head_dim.
LayerWeights load_layer_weights(const Model& model, int64_t layer);

// Every block plus embeddings, final norm and head.
ModelWeights load_model_weights(const Model& model);

// A stored matrix decoded to float ([rows, cols]), for passes that need one weight as numbers.
RowMatrix decode_matrix(const Tensor& tensor);

}  // namespace slmopt
