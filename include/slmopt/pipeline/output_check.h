// Where a stage's output goes, settled before anything is loaded or computed, so a wrong path costs no work and
// leaves nothing behind:
//   - the format follows the output's name when --format is not given (.gguf → gguf, .onnx → onnx; other names
//     keep the stage's default); a given --format that contradicts the name (.gguf vs onnx, a folder for GGUF, a
//     file for hf) is refused, and a bare .safetensors output is refused (a checkpoint is a folder);
//   - the output may not be the input, a file inside the input folder, or a folder that holds the input;
//   - an existing output folder must be one slmopt may replace (io/hf.h, io/onnx_folder.h rules);
//   - the nearest existing folder above each written path must be writable;
//   - missing parent folders of the output, --report, --scores and --imatrix-out are created (every format alike)
//     and removed again, when still empty, if the stage fails;
//   - an option marked mandatory_unless(FLAG) must be given unless FLAG is set (quantize -o without --dry-run).
// Each refusal is one Error naming the path and the option.
#pragma once

#include <string>
#include <vector>

#include "slmopt/pipeline/stage.h"

namespace slmopt::pipeline {

struct OutputPlan {
  std::vector<std::string> created_folders;  // outermost first
};

// Checks and resolves `values` (the format may be filled in) for a single-stage run.
OutputPlan prepare_outputs(const StageInfo& stage, OptionValues& values);

// Removes the folders prepare_outputs created that are still empty (after a failed run).
void remove_created_folders(const OutputPlan& plan);

// The format an output name implies: "gguf", "onnx", or "" when the name says nothing.
std::string format_from_output_name(const std::string& output);

}  // namespace slmopt::pipeline
