// Recipes: `slmopt run RECIPE.yaml`. A recipe names the model, the calibration and evaluation text, the stages
// applied in order (prune, distill-export, eval) and the targets written from the result (each a quantize
// invocation: format + type + method + options, or with `stage: compile` a plain conversion), plus gates. Every key of a stage or target is a row of that
// stage's option table (pipeline/stage.h), so a recipe accepts exactly what the subcommand accepts; an unknown
// key or a wrong type is one error naming the recipe file, line and key.
//
//   model: ../models/llama-5m-kjv          # paths are relative to the recipe's folder
//   output: out/kjv                        # artifacts, manifest.json, report.{json,md} (`-o` overrides)
//   calibration: {text: calib.txt, samples: 16, seqlen: 128, seed: 0}
//   evaluation: {text: eval.txt, ctx: 128, max-windows: 16}
//   stages:
//     - prune: {ffn-ratio: 0.25, refit: true, importance: activation}
//   targets:
//     - {name: q4km, format: gguf, type: q4_k_m, method: gptq}
//     - {name: onnx-int4, format: onnx, type: int4, method: gptq}
//     - {name: f16, stage: compile, format: gguf, type: f16}
//   gates: {max-ppl-increase: 25, max-kl: 0.5, max-size-mb: 8}
#pragma once

#include <string>
#include <vector>

#include "slmopt/pipeline/options.h"

namespace slmopt::pipeline {

struct RecipeStep {
  std::string stage;    // registry name
  std::string name;     // targets: the artifact's name; stages: "N-stage"
  OptionValues values;  // the stage's table, with the recipe's keys (and calibration/evaluation) set
  int line = 0;
};

struct RecipeGates {
  double max_ppl_increase = -1;  // percent
  double max_kl = -1;            // nats
  double max_size_mb = -1;       // 10^6 bytes
  bool any() const { return max_ppl_increase >= 0 || max_kl >= 0 || max_size_mb >= 0; }
};

struct Recipe {
  std::string path;           // as given
  std::string sha256;         // of the recipe file's bytes
  std::string model;          // resolved path
  std::string model_as_written;
  std::string output;         // resolved output folder
  bool has_evaluation = false;
  std::vector<RecipeStep> stages;
  std::vector<RecipeStep> targets;
  RecipeGates gates;

  // Where a target's artifact and report go (inside output).
  std::string artifact_path(const RecipeStep& target) const;
  std::string report_base(const RecipeStep& target) const;  // report_paths' --report form: BASE.json, BASE.md
};

// Parses and checks a recipe; nothing is loaded or written. `output_override` replaces the recipe's output.
Recipe parse_recipe(const std::string& path, const std::string& output_override);

struct RunOptions {
  std::string recipe;
  std::string output;       // overrides the recipe's output folder
  std::string emit;         // "", "ninja" or "make": write a build file instead of running
  bool assemble = false;    // only hash the written artifacts and write manifest + report (the emitted last edge)
  bool json = false;
  std::string slmopt_path;  // the binary emitted build files call
};

// Runs a recipe (or emits its build file). Throws Error(Gate) after writing everything when a target failed a
// gate.
void run_recipe(const RunOptions& options);

}  // namespace slmopt::pipeline
