// The canonical tensors a decoder description implies: names (tensor_names.h) and shapes ([out, in] for linears).
// One list, read by Model::validate, the random-checkpoint generator and every loader that checks completeness, so
// a family that adds a role (q/k norms, post norms, biases) adds it here once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "slmopt/ir/config.h"

namespace slmopt {

struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
  int64_t layer = -1;  // -1 for the embedding, final norm and head
};

// In a stable order: embeddings, then each layer, then final norm and head. The head (lm_head.weight) is listed
// only when the embedding is not tied.
std::vector<ExpectedTensor> decoder_tensors(const Config& config);

// One layer's tensors (the per-layer part of decoder_tensors).
std::vector<ExpectedTensor> decoder_layer_tensors(const Config& config, int64_t layer);

}  // namespace slmopt
