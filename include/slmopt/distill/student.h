// Student initialisation for distillation: a copy of a model (the teacher, or a pruned model) that keeps only
// some of its layers, in the given order — DistilBERT's "every other layer" recipe is layers 0,2,4,...
// The kept layers' tensors are renumbered; embedding, final norm and output head are shared (views, no copy).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "slmopt/ir/model.h"

namespace slmopt {

// Error(Usage) for an empty list, an index out of range, or a repeated or descending index.
Model select_student_layers(const Model& source, std::span<const int64_t> layers);

// "0,2,4" or ranges "0-3,6" → ascending layer indices. Error(Usage) naming the text for anything else, an index
// ≥ layer_count, or a repeat.
std::vector<int64_t> parse_layer_list(std::string_view text, int64_t layer_count);

}  // namespace slmopt
