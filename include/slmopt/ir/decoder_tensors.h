// The canonical tensors a decoder description implies: names (tensor_names.h) and shapes ([out, in] for linears).
// One list, read by Model::validate, the random-checkpoint generator and every loader that checks completeness, so
// a family that adds a role (q/k norms, post norms, biases) adds it here once.
#pragma once

#include <cstdint>
#include <functional>
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

// The same tensors in the same order, handed to `visit` one at a time instead of built into a list. A check that
// throws at the first missing tensor (Model::validate) then does work in proportion to the tensors a file has,
// not to the layers its header claims: 4,096 claimed layers are ~60,000 names.
void visit_decoder_tensors(const Config& config, const std::function<void(ExpectedTensor)>& visit);

// One layer's tensors (the per-layer part of decoder_tensors).
std::vector<ExpectedTensor> decoder_layer_tensors(const Config& config, int64_t layer);
// The tensors outside the layers (embeddings, final norm, head): decoder_tensors less every layer's. With
// decoder_layer_tensors, a reader checks a tensor it holds against its own layer's list alone.
std::vector<ExpectedTensor> decoder_global_tensors(const Config& config);

}  // namespace slmopt
