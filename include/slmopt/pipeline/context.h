// What the stages of one run share: the model being transformed, the checkpoint it started from (evaluations
// compare against it), and calibration data computed once and handed to every stage that needs it — calibration
// windows, the importance matrix, GPTQ/AWQ results — keyed by the options that produced them. A stage that
// changes the weights invalidates what was measured on them.
#pragma once

#include <cstdint>
#include <map>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "slmopt/ir/model.h"
#include "slmopt/pipeline/calibration.h"
#include "slmopt/quant/calibration.h"
#include "slmopt/quant/importance.h"
#include "slmopt/quant/rotation.h"
#include "slmopt/text/dataset.h"

namespace slmopt::pipeline {

enum class Invalidates { Nothing, Weights };

// A GPTQ/AWQ run's result and the model with the quantized block linears (dequantized) in place.
struct CalibratedModel {
  CalibrationResult result;
  Model model;
};

class PipelineContext {
 public:
  // A subcommand: the input (and the reference evaluations compare against) is loaded from `path` on first use.
  explicit PipelineContext(std::string input_path);
  // A recipe: the checkpoint is loaded already.
  explicit PipelineContext(Model checkpoint);

  // The model the next stage works on (after the stages so far).
  const Model& input();
  // The model evaluations compare against: the checkpoint as loaded (the same model for a subcommand).
  const Model& reference();
  // A stage's transformed model becomes the next stage's input; caches measured on the old weights are dropped.
  void set_input(Model model, Invalidates invalidates);
  void invalidate(Invalidates what);

  // Inside a recipe the run prints its own summary: stages stay silent on stdout.
  bool in_recipe = false;

  // input() with its residual stream rotated (quant/rotation.h), computed once per rotation setting; `report`
  // (optional) receives what the rotation did.
  const Model& rotated_input(const RotationOptions& rotation, RotationReport* report = nullptr);

  // Shared calibration data: computed on first request for a given set of options, then reused. With `rotation`
  // the importance matrix and GPTQ/AWQ run on rotated_input(*rotation) instead of input().
  const std::vector<std::vector<int32_t>>& calibration_windows(CalibTextOptions& options);
  const ImportanceMatrix& importance_matrix(CalibTextOptions& options, const RotationOptions* rotation = nullptr);
  // GPTQ/AWQ on input(): `key` names everything that determines the result besides the windows.
  const CalibratedModel& calibrated(const std::string& key, CalibTextOptions& options,
                                    const std::function<CalibratedModel(const Model&,
                                                                        const std::vector<std::vector<int32_t>>&)>& run,
                                    const RotationOptions* rotation = nullptr);
  const std::vector<EvalWindow>& eval_windows(const Model& model, EvalTextOptions& options);

  // How often each cache was filled (tests and the run report show that calibration happened once).
  int calibration_runs = 0;
  int importance_runs = 0;
  int gptq_runs = 0;

 private:
  std::string input_path_;
  std::shared_ptr<const Model> checkpoint_;
  std::shared_ptr<const Model> input_;
  std::map<std::string, std::vector<std::vector<int32_t>>> windows_;
  std::map<std::string, ImportanceMatrix> importance_;
  std::map<std::string, CalibratedModel> calibrated_;
  std::map<std::string, std::vector<EvalWindow>> eval_windows_;
  std::map<std::string, std::pair<std::shared_ptr<const Model>, RotationReport>> rotated_;
};

}  // namespace slmopt::pipeline
