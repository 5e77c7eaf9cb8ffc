// The model's weights decoded to float once, in the IR layout ([out, in] rows), ready for the forward pass.
// Whatever the stored dtype (F32, F16, BF16 or a GGUF block type), decoding goes through Tensor::rows_to_f32, so
// a quantized model runs with exactly the weights its file holds.
//
// Per-layer widths (query heads, KV heads, FFN channels) are read off the tensor shapes, so a pruned layer
// works the moment its tensors are replaced; decode_layer checks that the shapes agree with each other.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "slmopt/exec/matrix.h"
#include "slmopt/ir/model.h"

namespace slmopt {

struct DecodedLinear {
  std::string name;        // canonical weight name, e.g. "model.layers.0.self_attn.q_proj.weight"
  RowMatrix weight;        // [out, in]
  Eigen::VectorXf bias;    // [out], or empty when the layer has none
  bool has_bias() const { return bias.size() != 0; }
};

struct DecodedLayer {
  int64_t n_heads = 0, n_kv_heads = 0, ffn = 0;
  Eigen::VectorXf attn_norm, ffn_norm;
  DecodedLinear q, k, v, o, gate, up, down;
};

struct DecodedModel {
  std::shared_ptr<const RowMatrix> embedding;  // [vocab, hidden]
  std::shared_ptr<const RowMatrix> output;     // [vocab, hidden]; the same object as embedding when tied
  std::string output_name;                     // lm_head.weight, or the embedding's name when tied
  Eigen::VectorXf final_norm;
  std::vector<DecodedLayer> layers;
};

// Decodes one transformer block of a llama-family model. Throws Error(BadInput) naming the tensor when one is
// missing or its shape disagrees with the others or with config.hidden_size / head_dim.
DecodedLayer decode_layer(const Model& model, int64_t layer);

// Decodes everything (layers in parallel). Throws Error(Unsupported) for families outside the llama family.
DecodedModel decode_model(const Model& model);

}  // namespace slmopt
