// Repair of a structurally pruned model without training: each cut sublayer's output projection (o_proj when
// heads were removed, down_proj when FFN channels were) is re-fitted by ridge-regularised least squares so that
// the pruned model's residual stream after that sublayer matches the unpruned model's on calibration windows.
//
// Layers are processed in order (the GPTQ-style sequential recipe): for pruned layer i (source layer s) the
// input X is the pruned model's activation at the projection (already refitted layers upstream). Where the
// sublayer's output enters the residual linearly (pre-norm blocks, sequential or parallel: x += rs·f, rs the
// residual multiplier) the target is the output that makes the pruned residual equal the original's,
//   o:    Y = o_orig + (h_orig − h_pruned)/rs            (both streams at the block input)
//   down: Y = (h_orig(after the block) − h_pruned)/rs − o_pruned
// minus the bias, so the fit also absorbs the error accumulated upstream. Behind a post norm (Gemma's sandwich,
// OLMo-2) the residual is not linear in the output, and Y is the original sublayer's output (o_orig, down_orig).
// W = argmin ‖X Wᵀ − Y‖² + λ‖W‖² with λ = ridge · mean(diag XᵀX), solved from the normal equations
// (XᵀX + λI) Wᵀ = XᵀY in double with Eigen's LDLT. Sums run over windows in order, so the
// result is deterministic for any thread count. The fitted weight is stored in the tensor's own dtype.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "slmopt/exec/model_runner.h"
#include "slmopt/prune/structured.h"

namespace slmopt {

struct RefitOptions {
  double ridge = 1e-2;  // relative to the mean diagonal of XᵀX (1e-2 measured best of 1e-3/1e-2/1e-1 on
                        // llama-5m-kjv; it also keeps fits with fewer rows than inputs from over-fitting)
};

struct SublayerRefit {
  int64_t layer = 0;      // output layer index
  std::string weight;     // the re-fitted tensor
  // ‖X Wᵀ − Y‖² / ‖Y‖² on the calibration activations: with the pruned (sliced) weight, then with the fitted
  // weight as stored.
  double error_before = 0, error_after = 0;
};

struct RefitReport {
  int64_t tokens = 0;  // activation rows per fit
  std::vector<SublayerRefit> sublayers;
};

// `original` runs the unpruned model; `pruned` is that model after apply_prune_plan(plan). Error(Usage) when
// windows is empty or the plan does not describe `pruned` (layer count or widths differ).
RefitReport refit_pruned_model(const ModelRunner& original, Model& pruned, const PrunePlan& plan,
                               std::span<const std::vector<int32_t>> windows, const RefitOptions& options = {});

nlohmann::json refit_report_to_json(const RefitReport& report);

}  // namespace slmopt
