// How much each attention head, each KV group (GQA) and each FFN channel matters, measured on calibration
// windows — the input of structured pruning (prune/structured.h).
//
// Methods:
//   * MaskedLoss: the increase of the mean next-token loss (nats/token) over the calibration windows when the
//     unit alone is masked (ForwardMasks semantics: the head's attention output or the channel's SwiGLU output
//     is zeroed before o_proj / down_proj). A gradient-free stand-in for Michel et al.'s |∂L/∂ξ_h|. Block
//     inputs of the unmasked model are cached, so a unit in layer l only re-runs layers l.. (heads, groups) or
//     l+1.. (FFN channels: the masked channel's rank-1 contribution is subtracted from layer l's output).
//   * Activation: the mean over calibration tokens of the L2 norm of the unit's contribution to the residual
//     stream: head h → ‖attn_h(t) · W_o[:, h-slice]ᵀ‖, KV group → the same for the sum over its query heads,
//     channel c → |act_c(t)| · ‖W_down[:, c]‖. One forward pass.
//   * Mixed (the default of `slmopt prune`): FFN channels by Activation, heads and KV groups by MaskedLoss when
//     that costs at most `head_loss_budget` forward-pass equivalents (head_loss_cost), else by Activation too. The
//     prune study on llama-5m-kjv found activation scores as good as masked loss for FFN channels, which are
//     ~97 % of MaskedLoss's units; heads are few, and loss tells them apart better.
//   * Random: uniform [0, 1) draws from splitmix64 seeded with `seed`, in the order layer, heads, groups,
//     channels — the baseline every real score must beat.
// Larger is more important for every method. All sums are in double, window order, so scores are identical for
// any thread count.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "slmopt/exec/model_runner.h"

namespace slmopt {

enum class ImportanceMethod { MaskedLoss, Activation, Random, Mixed };

// "loss", "activation", "random", "mixed".
const char* importance_method_name(ImportanceMethod method);
std::optional<ImportanceMethod> parse_importance_method(std::string_view name);

struct LayerImportance {
  std::vector<double> heads;      // one per query head
  std::vector<double> kv_groups;  // one per KV head (the group of query heads that share it)
  std::vector<double> ffn;        // one per FFN channel
};

struct ImportanceScores {
  ImportanceMethod method = ImportanceMethod::MaskedLoss;
  ImportanceMethod head_method = ImportanceMethod::MaskedLoss;  // what scored heads and KV groups (Mixed: either)
  std::string head_note;      // Mixed: why heads fell back to Activation (empty otherwise)
  uint64_t seed = 0;          // Random only
  int64_t windows = 0;        // calibration windows used
  int64_t tokens = 0;         // tokens run through the model (loss: positions scored)
  double base_loss = 0;       // MaskedLoss: mean NLL of the unmasked model on the windows, nats/token
  std::vector<LayerImportance> layers;
};

struct ImportanceOptions {
  ImportanceMethod method = ImportanceMethod::MaskedLoss;
  uint64_t seed = 0;
  // Mixed: the most forward-pass equivalents (head_loss_cost) spent on masked-loss head scores. 2048 covers
  // llama-5m-kjv's 32 windows (~480) and refuses a 1B shape's (~13 k: hours on CPU).
  double head_loss_budget = 2048;
  bool progress = true;  // a progress bar on stderr when it is a terminal
};

// What masked-loss head scores cost in full forward passes of one window: Σ_l (heads_l + kv_l)·(L − l) / L, times
// the windows.
double head_loss_cost(const ModelRunner& runner, size_t windows);

// Throws Error(Usage) when windows is empty or a window has fewer than 2 tokens (MaskedLoss, Activation).
ImportanceScores compute_importance(const ModelRunner& runner, std::span<const std::vector<int32_t>> windows,
                                    const ImportanceOptions& options);

// {"method": "loss", "seed": 0, "windows": 8, "tokens": 1016, "base_loss": 2.9,
//  "layers": [{"heads": [...], "kv_groups": [...], "ffn": [...]}, ...]}
nlohmann::json importance_to_json(const ImportanceScores& scores);
// The inverse; Error(BadInput) naming `source` and the field when something is missing or mistyped.
ImportanceScores importance_from_json(const nlohmann::json& json, const std::string& source);

}  // namespace slmopt
