// Calibration options shared by quantize and prune (--calib, --calib-tokens, --calib-samples, --calib-seqlen,
// --seed), the windows they describe, and the importance-matrix file (--imatrix-in / --imatrix-out).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "slmopt/ir/model.h"
#include "slmopt/quant/importance.h"

namespace slmopt::driver {

struct CalibrationOptions {
  std::string text_path;
  std::string tokens_path;
  int64_t samples = 128;
  int64_t seqlen = 0;  // 0: min(model context, 512)
  uint64_t seed = 0;
  bool given() const { return !text_path.empty() || !tokens_path.empty(); }
  nlohmann::json to_json() const;
};

void add_calibration_options(CLI::App& sub, CalibrationOptions& options);

// Deterministic calibration windows (text/dataset.h sample_calibration_windows); BOS-prefixed when the model's
// tokenizer adds BOS. A corpus shorter than seqlen is an Error(BadInput) naming the file.
std::vector<std::vector<int32_t>> build_calibration_windows(const Model& model, CalibrationOptions& options);

// The importance matrix as a safetensors file: one F32 tensor per linear (canonical weight name, [in]) holding
// the mean squared input activation per column; metadata "format": "slmopt-imatrix", "tokens": count.
void save_importance(const ImportanceMatrix& importance, const std::string& path);
ImportanceMatrix load_importance(const std::string& path, const Model& model);

}  // namespace slmopt::driver
