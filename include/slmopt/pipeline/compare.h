// `slmopt compare A B`: the offline half of an A/B rollout. Both models (any formats slmopt reads) run on the
// same evaluation windows (eval/perplexity.h's protocol, windows cut with A's tokenizer); the report gives each
// one's perplexity, size and evaluation speed, KL(A‖B) and top-1 agreement of their next-token distributions,
// and the tensors that differ most: relative RMS difference ‖B − A‖ / ‖A‖ (RMS over all elements, both decoded
// to float) for every canonical tensor name present in both with the same shape, plus the names found in only
// one of them or with different shapes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "slmopt/eval/report.h"
#include "slmopt/ir/model.h"
#include "slmopt/pipeline/calibration.h"

namespace slmopt::pipeline {

struct ComparedModel {
  std::string path, format;
  uint64_t bytes = 0;       // on disk (file or folder)
  int64_t parameters = 0;
  double bits_per_weight = 0;
  double nll = 0, perplexity = 0;
  double tokens_per_second = 0;  // the model alone, on up to 4 windows
};

struct TensorDifference {
  std::string name;
  std::vector<int64_t> shape;
  std::string type_a, type_b;
  double relative_rms = 0;  // ‖B − A‖ / ‖A‖; infinity when A is all zeros and B is not
};

struct CompareReport {
  std::string tool_version;
  ComparedModel a, b;
  EvalComparison eval;  // "original" = A, "output" = B
  std::vector<TensorDifference> tensors;  // every shared tensor, largest difference first (ties: by name)
  int64_t identical_tensors = 0;          // relative_rms == 0
  std::vector<std::string> only_in_a, only_in_b;
  std::vector<std::string> shape_mismatch;  // "name [a shape] vs [b shape]"
  std::vector<GateResult> gates;
  double seconds = 0;
};

// Evaluates and compares; Error(Usage) when the vocabularies differ in size (the distributions would not line up).
CompareReport compare_checkpoints(const Model& a, const Model& b, EvalTextOptions& eval);

// `top` limits the tensor table (the JSON keeps every tensor).
nlohmann::json compare_report_to_json(const CompareReport& report);
std::string compare_report_to_markdown(const CompareReport& report, int64_t top);

}  // namespace slmopt::pipeline
