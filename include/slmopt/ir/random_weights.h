// Random-weight models of any decoder description: the fixtures that stand in for checkpoints no hub can supply
// here (each family's shape at toy size, real model shapes for scale benchmarks). Values depend only on the seed,
// the tensor's name and the element index — never on the thread count or on which other tensors exist — so a
// fixture is reproducible byte for byte and a pruned or re-shaped config keeps its unchanged tensors.
//
// Scales keep activations O(1) through any depth, so logits have a real spread (argmax comparisons against other
// runtimes are not near-ties): linear weights ~ N(0, 1/in), embeddings ~ N(0, 1), norm gains 1 + N(0, 0.1)
// (N(0, 0.1) for unit-offset norms, whose scale is 1 + w), biases N(0, 0.02²).
#pragma once

#include <cstdint>

#include "slmopt/ir/model.h"

namespace slmopt {

// Every tensor of decoder_tensors(config), owned, in `dtype` (F32, F16 or BF16). config must validate.
Model random_model(const Config& config, DType dtype, uint64_t seed);

// One tensor of that model (what random_model fills each tensor with).
Tensor random_tensor(const Config& config, const std::string& name, const std::vector<int64_t>& shape, DType dtype,
                     uint64_t seed);

}  // namespace slmopt
