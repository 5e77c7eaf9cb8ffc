// Real weights and a real importance matrix for the quantizer tests: llama-5m-kjv (BF16, rows of 256 and 768)
// and the mean squared input activations of each linear layer over calibration windows of kjv-calib.txt,
// computed once per test process.
#pragma once

#include <string>
#include <vector>

#include "slmopt/ir/model.h"
#include "slmopt/quant/importance.h"

namespace slmopt::testing {

struct RealWeights {
  Model model;
  ImportanceMatrix importance;
};

const RealWeights& llama_5m_kjv();

// The first `max_rows` rows of every linear weight of `weights.model` (lm_head included), each with the
// importance of its input columns.
struct RealMatrix {
  std::string name;
  int64_t rows = 0, cols = 0;
  std::vector<float> values;      // rows × cols
  std::vector<float> importance;  // cols
};
std::vector<RealMatrix> real_linear_rows(const RealWeights& weights, int64_t max_rows);

}  // namespace slmopt::testing
