// The importance matrix: for every linear layer, the mean of the squared input activation of each input
// column over calibration text (llama.cpp's "imatrix"). Scale searches weight each column's squared error
// by it, so columns that carry large activations are reproduced more faithfully.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "slmopt/exec/model_runner.h"

namespace slmopt {

struct ImportanceMatrix {
  // canonical weight name → mean x² per input column
  std::map<std::string, std::vector<float>> columns;
  int64_t tokens = 0;  // activation rows averaged per entry

  const std::vector<float>* find(const std::string& weight_name) const;
};

// Runs every window through the model (in order, so sums are deterministic) and averages x² per column of
// each linear layer's input, the output head included.
ImportanceMatrix collect_importance(const ModelRunner& runner, const std::vector<std::vector<int32_t>>& windows);

}  // namespace slmopt
