// Size-matched per-tensor bit allocation (`quantize --allocate size`): given a GGUF preset, choose each tensor's
// type so that the tensors take no more bytes than llama.cpp's own file for that preset, with the lowest
// predicted KL.
//
// How:
//   * Budget: the bytes of the tensors llama.cpp's preset would write for this model (its type mix with an
//     importance matrix, NarrowRows::Llama, each tensor padded to GGUF's 32-byte alignment). The header is the
//     same either way (the types are numbers), so a file within the budget is no larger than llama.cpp's.
//   * Candidates per tensor: the types stock llama.cpp runs (kLadder in bit_allocation.cpp) whose bits per weight
//     lie within [base − 1, base + 2.1] of the preset's base type, whose block divides the tensor's rows, plus
//     the preset's own type for that tensor. Tensors a --type-for/--keep pattern matches, and tensors the preset
//     leaves in float, keep their type.
//   * Sensitivity: each tensor alone is rounded to its preset type (RTN with the importance matrix) and the
//     increase in mean KL(float ‖ probe) over a few calibration windows is measured (blocks before the tensor's
//     layer are not rerun: their float outputs are cached). For a candidate type d the KL is predicted as
//       KL_t(d) = KL_t(preset) · e_t(d) / e_t(preset),   e = importance-weighted squared relative error,
//     the second-order picture in which a tensor's KL grows with its output error (one forward pass per tensor
//     instead of one per tensor and type).
//   * Choice: minimise Σ_t KL_t(d_t) subject to Σ_t bytes_t(d_t) ≤ budget, solved exactly as a multiple-choice
//     knapsack (dynamic programming over the budget in units of budget/kUnits, costs rounded up so the result
//     is always within budget); when rounding makes it miss, the preset's own mix (within budget by definition)
//     is kept if its predicted KL is lower.
// Everything is deterministic: the probes' logits and the encoders give the same bits at any thread count, and
// ties in the knapsack go to the earlier candidate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "slmopt/ir/model.h"
#include "slmopt/quant/block_quantize.h"
#include "slmopt/quant/importance.h"
#include "slmopt/quant/type_selection.h"

namespace slmopt {

struct AllocationCandidate {
  DType dtype = DType::F32;
  uint64_t bytes = 0;           // padded to the GGUF alignment
  double weighted_error = 0;    // importance-weighted squared relative error of RTN onto dtype
  double predicted_kl = 0;
};

struct TensorAllocation {
  std::string name;
  DType preset = DType::F32;    // the preset's type (slmopt's narrow-row rule)
  DType chosen = DType::F32;
  bool fixed = false;           // not reallocated (override, or float in the preset)
  double probe_kl = 0;          // measured KL increase with this tensor alone at its preset type
  std::vector<AllocationCandidate> candidates;  // by increasing bytes; empty when fixed
};

struct AllocationResult {
  std::vector<TensorAllocation> tensors;  // in model order
  uint64_t budget_bytes = 0;              // llama.cpp's preset: every quantized tensor, padded
  uint64_t preset_bytes = 0;              // slmopt's preset mix (narrow rows by size class), padded
  uint64_t chosen_bytes = 0;
  double predicted_kl_preset = 0, predicted_kl_chosen = 0;  // Σ over reallocated tensors
  int probes = 0;                         // forward passes run
  int64_t probe_tokens = 0;               // positions per probe
  // --type-for overrides ("NAME=type") that make TensorQuantizer write the chosen mix.
  std::vector<std::string> overrides() const;
};

struct AllocationOptions {
  int windows = 8;  // calibration windows the probes run on (the first ones given)
  Encoder encoder = Encoder::Fast;
  std::vector<DType> ladder;  // the candidate types; empty: every type stock llama.cpp runs (kLadder)
};

// `selection`: the preset and the user's overrides (has_importance is set here). `windows`: calibration token
// windows. Throws Error(Usage) for a preset without a quantized base (F32/F16/BF16) or no windows.
AllocationResult allocate_to_size(const Model& model, const TypeSelectionOptions& selection,
                                  const ImportanceMatrix& importance, const std::vector<std::vector<int32_t>>& windows,
                                  const AllocationOptions& options = {});

}  // namespace slmopt
