// Which block linears an integer-grid output (HF GPTQ/AWQ checkpoint, ONNX MatMulNBits) holds on the grid, and
// why each other one stays float — decided from shapes and --keep alone, before any calibration, so a model that
// the format cannot hold at all is refused in one line before minutes of calibration, and a model with a few
// misfits (hidden 64, FFN 172: gate/up outputs or down inputs that do not pack) is written with those linears
// in float and the report saying why.
//   * ONNX MatMulNBits takes any shape: a row that is not a whole number of blocks ends in a shorter block (ORT
//     pads it), as `compile --type int4` writes;
//   * GPTQ takes a shorter last group but packs in·bits and out·bits into whole 32-bit words;
//   * AWQ gemm needs 4 bits, out % 8 == 0 and whole groups (io/hf_gptq.h, hf_quantized_misfit).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "slmopt/ir/model.h"
#include "slmopt/quant/calibration.h"
#include "slmopt/quant/type_selection.h"

namespace slmopt::pipeline {

enum class IntGridOutput { HfGptq, HfAwq, OnnxMatMulNBits };

struct IntGridPlan {
  std::map<std::string, IntGridSpec> targets;  // canonical weight name → its grid
  std::map<std::string, std::string> kept;     // canonical weight name → why it stays float
  // The chooser quantize_calibrated / quantize_uncalibrated_rtn take: the planned grid, nullopt for kept linears.
  TargetChooser chooser() const;
};

// Plans every block linear of `model` (the output head is not one: the ONNX writer rounds it itself).
// `keep`: the --keep overrides (a matching linear stays float). Error(Usage), naming the first reason, when no
// block linear can be put on the grid.
IntGridPlan plan_int_grid(const Model& model, const IntGridSpec& spec, IntGridOutput output,
                          const std::vector<TypeOverride>& keep);

}  // namespace slmopt::pipeline
