// `slmopt plan MODEL --budget-mb N --ctx C --text FILE`: which GGUF preset or type mix gives the lowest KL within
// a memory budget for weights + KV cache. Each candidate — every GGUF preset, and each preset below Q8_0 again
// with the output head and the embeddings kept at Q8_0 (a per-tensor override) — is quantized in memory with RTN
// (the quantize stage's TensorQuantizer, the bytes a GGUF file would hold) and evaluated against the input model
// on a few windows (eval/perplexity.h's compare_models). Memory is counted as
//   weights: the tensor bytes of the quantized model (what llama.cpp maps; the vocabulary is not counted)
//   KV cache: Σ over layers of kv_heads(layer) × head_dim × 2 (keys and values) × ctx × element size
// with budget MB = 10^6 bytes. The winner is the fitting candidate with the lowest KL (ties: smaller total).
// With calibration text, the importance matrix is collected once (one pass over the calibration windows) and every
// candidate rounds with it (llama.cpp's --imatrix: importance-weighted scale search), and the i-quant presets,
// which need it, join the candidates.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "slmopt/ir/model.h"
#include "slmopt/pipeline/calibration.h"

namespace slmopt::pipeline {

struct PlanCandidate {
  std::string name;                   // "q4_k_m", "q4_k_m+out8"
  std::string preset;                 // the quantize stage's --type
  std::vector<std::string> type_for;  // the quantize stage's --type-for
  std::string method = "rtn";         // "rtn", or "imatrix" (rounded with the importance matrix)
  uint64_t weight_bytes = 0;
  uint64_t kv_bytes = 0;
  uint64_t total_bytes() const { return weight_bytes + kv_bytes; }
  double bits_per_weight = 0;
  double mean_kl = 0, top1_agreement = 0, ppl = 0;
  bool fits = false;
};

struct PlanOptions {
  double budget_mb = 0;
  int64_t ctx = 0;               // 0: the model's context length
  int64_t kv_element_bytes = 2;  // F16 cache (llama.cpp's default)
  EvalTextOptions eval;
  CalibTextOptions calib;  // given: one importance matrix for every candidate, i-quant presets included
  std::vector<std::string> presets;  // non-empty: measure only these presets (and their +out8 variants)
};

struct PlanResult {
  std::vector<PlanCandidate> candidates;  // in measurement order (largest preset first)
  int64_t ctx = 0;
  double reference_ppl = 0;
  int64_t tokens_scored = 0;
  int winner = -1;  // index into candidates; -1 when none fits
  int importance_runs = 0;  // passes collecting the importance matrix (1 with calibration text, else 0)
  double importance_seconds = 0;
};

uint64_t kv_cache_bytes(const Config& config, int64_t ctx, int64_t element_bytes);

// The candidates plan measures for a model (presets and overrides only; nothing is measured). `calibrated`: with an
// importance matrix (method "imatrix", i-quant presets included).
std::vector<PlanCandidate> plan_candidates(bool calibrated = false, const std::vector<std::string>& presets = {});

PlanResult plan_quantization(const Model& model, PlanOptions& options);

// A recipe for `slmopt run` that writes the winner as a GGUF target and evaluates it on the same text. Paths are
// written relative to the recipe's folder.
std::string plan_recipe_yaml(const PlanResult& result, const PlanOptions& options, const std::string& model_path,
                             const std::string& recipe_path);

}  // namespace slmopt::pipeline
