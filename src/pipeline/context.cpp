#include "slmopt/pipeline/context.h"

#include "slmopt/core/log.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/model_loader.h"

namespace slmopt::pipeline {

PipelineContext::PipelineContext(std::string input_path) : input_path_(std::move(input_path)) {}

PipelineContext::PipelineContext(Model checkpoint)
    : checkpoint_(std::make_shared<const Model>(std::move(checkpoint))), input_(checkpoint_) {}

const Model& PipelineContext::input() {
  if (!input_) {
    Model model = load_model(input_path_);
    model.validate();
    checkpoint_ = std::make_shared<const Model>(std::move(model));
    input_ = checkpoint_;
  }
  return *input_;
}

const Model& PipelineContext::reference() {
  if (!checkpoint_) input();
  return *checkpoint_;
}

void PipelineContext::set_input(Model model, Invalidates invalidates) {
  input_ = std::make_shared<const Model>(std::move(model));
  invalidate(invalidates);
}

void PipelineContext::invalidate(Invalidates what) {
  if (what == Invalidates::Nothing) return;
  // Windows depend on the tokenizer and context length only, which no stage changes; everything measured by
  // running the model is stale once its weights changed.
  importance_.clear();
  calibrated_.clear();
  rotated_.clear();
}

namespace {
std::string rotation_key(const RotationOptions* r) {
  if (!r) return "";
  return "|rotate:" + std::to_string(r->seed) + ":" + std::to_string(static_cast<int>(r->tied)) + ":" +
         std::to_string(r->heads);
}
}  // namespace

const Model& PipelineContext::rotated_input(const RotationOptions& rotation, RotationReport* report) {
  const std::string key = rotation_key(&rotation);
  auto it = rotated_.find(key);
  if (it == rotated_.end()) {
    Model model = input();
    RotationReport r = rotate_model(model, rotation);
    it = rotated_.emplace(key, std::make_pair(std::make_shared<const Model>(std::move(model)), r)).first;
  }
  if (report) *report = it->second.second;
  return *it->second.first;
}

const std::vector<std::vector<int32_t>>& PipelineContext::calibration_windows(CalibTextOptions& options) {
  const std::string key = options.key();
  auto it = windows_.find(key);
  if (it == windows_.end()) {
    CalibTextOptions resolved = options;
    auto windows = build_calibration_windows(input(), resolved);
    ++calibration_runs;
    it = windows_.emplace(key, std::move(windows)).first;
  }
  if (options.seqlen == 0 && !it->second.empty()) options.seqlen = static_cast<int64_t>(it->second.front().size());
  return it->second;
}

const ImportanceMatrix& PipelineContext::importance_matrix(CalibTextOptions& options, const RotationOptions* rotation) {
  const auto& windows = calibration_windows(options);
  const std::string key = options.key() + rotation_key(rotation);
  auto it = importance_.find(key);
  if (it == importance_.end()) {
    spdlog::info("collecting the importance matrix over {} windows of {} tokens", windows.size(), options.seqlen);
    const ModelRunner runner(rotation ? rotated_input(*rotation) : input());
    ++importance_runs;
    it = importance_.emplace(key, collect_importance(runner, windows)).first;
  }
  return it->second;
}

const CalibratedModel& PipelineContext::calibrated(
    const std::string& key, CalibTextOptions& options,
    const std::function<CalibratedModel(const Model&, const std::vector<std::vector<int32_t>>&)>& run,
    const RotationOptions* rotation) {
  const auto& windows = calibration_windows(options);
  const std::string full_key = key + "|" + options.key() + rotation_key(rotation);
  auto it = calibrated_.find(full_key);
  if (it == calibrated_.end()) {
    ++gptq_runs;
    it = calibrated_.emplace(full_key, run(rotation ? rotated_input(*rotation) : input(), windows)).first;
  }
  return it->second;
}

const std::vector<EvalWindow>& PipelineContext::eval_windows(const Model& model, EvalTextOptions& options) {
  const std::string key = options.key();
  auto it = eval_windows_.find(key);
  if (it == eval_windows_.end()) {
    EvalTextOptions resolved = options;
    it = eval_windows_.emplace(key, build_eval_windows(model, resolved)).first;
  }
  if (options.ctx == 0) options.ctx = std::min<int64_t>(model.config.max_position, 512);
  return it->second;
}

}  // namespace slmopt::pipeline
