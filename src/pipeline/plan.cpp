// Budget planning (pipeline/plan.h). Candidates are quantized in memory one at a time (the previous one is
// dropped first), so the peak is the input model plus one quantized copy; the reference logits are recomputed by
// compare_models per candidate, which on the small models plan is meant for costs less than keeping them.
#include "slmopt/pipeline/plan.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <optional>
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "slmopt/core/error.h"
#include "slmopt/eval/perplexity.h"
#include "slmopt/quant/importance.h"
#include "slmopt/quant/tensor_quantizer.h"
#include "slmopt/quant/type_selection.h"

namespace slmopt::pipeline {
namespace {

// The output head and the embeddings: the tensors llama.cpp's own mixes already treat specially, and the ones
// most sensitive to low precision in small models (large vocabulary, small hidden size).
const std::vector<std::string> kKeepOutputAt8 = {"lm_head.weight=q8_0", "model.embed_tokens.weight=q8_0"};

double bits(DType d) { return 8.0 * static_cast<double>(traits(d).block_bytes) / static_cast<double>(traits(d).block_size); }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Model quantize_in_memory(const Model& model, const PlanCandidate& candidate, const ImportanceMatrix* importance) {
  TypeSelectionOptions selection;
  selection.preset = *preset_from_name(candidate.preset);
  for (const auto& spec : candidate.type_for) selection.overrides.push_back(parse_type_for(spec));
  TensorQuantizer quantizer(model, selection, candidate.method == "imatrix" ? importance : nullptr, Encoder::Fast);
  Model out = model;
  for (const Tensor* t : model.ordered_tensors()) {
    const DType target = quantizer.target(t->name());
    if (target == t->dtype()) continue;
    out.set(Tensor::owned(t->name(), t->shape(), target, quantizer.encode(*t, target)));
  }
  return out;
}

}  // namespace

uint64_t kv_cache_bytes(const Config& config, int64_t ctx, int64_t element_bytes) {
  uint64_t per_token = 0;
  for (int64_t l = 0; l < config.num_layers; ++l)
    per_token += static_cast<uint64_t>(config.kv_heads(l) * config.head_dim * 2 * element_bytes);
  return per_token * static_cast<uint64_t>(ctx);
}

std::vector<PlanCandidate> plan_candidates(bool calibrated, const std::vector<std::string>& only) {
  for (const std::string& name : only) {
    const auto p = preset_from_name(name);
    if (!p || *p == QuantPreset::F32 || *p == QuantPreset::BF16)
      throw_error(ErrorKind::Usage, "--presets: '{}' is not a GGUF preset plan measures", name);
    if (!calibrated && lower(preset_info(*p).name).starts_with("iq"))
      throw_error(ErrorKind::Usage, "--presets: '{}' is an i-quant preset; it needs an importance matrix (--calib)", name);
  }
  const auto wanted = [&](const PresetInfo& p) {
    return only.empty() || std::any_of(only.begin(), only.end(), [&](const std::string& n) { return lower(n) == lower(p.name); });
  };
  std::vector<PlanCandidate> out;
  std::vector<const PresetInfo*> presets;
  // The i-quant presets need an importance matrix (llama.cpp refuses most of them without one, and all of them are
  // built for one): candidates only with calibration text.
  for (const auto& p : quant_presets())
    if (p.preset != QuantPreset::F32 && p.preset != QuantPreset::BF16 && (calibrated || !p.name.starts_with("IQ")) &&
        wanted(p))
      presets.push_back(&p);
  // Largest first: by the base type's bits per weight, then by name, so the table reads top-down.
  std::stable_sort(presets.begin(), presets.end(), [](const PresetInfo* a, const PresetInfo* b) {
    const double ba = bits(a->base), bb = bits(b->base);
    return ba != bb ? ba > bb : a->name > b->name;
  });
  for (const PresetInfo* p : presets) {
    PlanCandidate c;
    c.name = lower(p->name);
    c.preset = c.name;
    c.method = calibrated ? "imatrix" : "rtn";
    out.push_back(c);
    if (bits(p->base) < bits(DType::Q8_0)) {
      c.name += "+out8";
      c.type_for = kKeepOutputAt8;
      out.push_back(c);
    }
  }
  return out;
}

PlanResult plan_quantization(const Model& model, PlanOptions& o) {
  if (o.budget_mb <= 0) throw_error(ErrorKind::Usage, "--budget-mb must be positive");
  PlanResult r;
  r.ctx = o.ctx > 0 ? o.ctx : model.config.max_position;
  if (r.ctx <= 0) throw_error(ErrorKind::Usage, "{}: the model states no context length; give --ctx", model.source_path);
  const uint64_t kv = kv_cache_bytes(model.config, r.ctx, o.kv_element_bytes);
  const double budget = o.budget_mb * 1e6;
  const std::vector<EvalWindow> windows = build_eval_windows(model, o.eval);
  const ModelRunner reference(model);
  // One importance matrix for every candidate: the calibration pass is the costly part, the rounding is not.
  const std::vector<PlanCandidate> candidates = plan_candidates(o.calib.given(), o.presets);  // checks names first
  std::optional<ImportanceMatrix> importance;
  if (o.calib.given()) {
    const auto start = std::chrono::steady_clock::now();
    const std::vector<std::vector<int32_t>> calib_windows = build_calibration_windows(model, o.calib);
    spdlog::info("plan: collecting the importance matrix over {} windows of {} tokens", calib_windows.size(),
                 o.calib.seqlen);
    importance = collect_importance(reference, calib_windows);
    r.importance_runs = 1;
    r.importance_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  for (PlanCandidate c : candidates) {
    const Model quantized = quantize_in_memory(model, c, importance ? &*importance : nullptr);
    c.weight_bytes = quantized.total_bytes();
    c.kv_bytes = kv;
    const int64_t params = quantized.parameter_count();
    c.bits_per_weight = params ? 8.0 * static_cast<double>(c.weight_bytes) / static_cast<double>(params) : 0;
    c.fits = static_cast<double>(c.total_bytes()) <= budget;
    const ComparisonResult cmp = compare_models(reference, ModelRunner(quantized), windows);
    c.mean_kl = cmp.mean_kl;
    c.top1_agreement = cmp.top1_agreement;
    c.ppl = cmp.candidate.perplexity;
    r.reference_ppl = cmp.original.perplexity;
    r.tokens_scored = cmp.original.tokens_scored;
    spdlog::debug("plan: {} {:.3f} bits/weight, KL {:.5f}", c.name, c.bits_per_weight, c.mean_kl);
    r.candidates.push_back(std::move(c));
  }
  for (size_t i = 0; i < r.candidates.size(); ++i) {
    const auto& c = r.candidates[i];
    if (!c.fits) continue;
    if (r.winner < 0) {
      r.winner = static_cast<int>(i);
      continue;
    }
    const auto& w = r.candidates[static_cast<size_t>(r.winner)];
    if (c.mean_kl < w.mean_kl || (c.mean_kl == w.mean_kl && c.total_bytes() < w.total_bytes()))
      r.winner = static_cast<int>(i);
  }
  return r;
}

std::string plan_recipe_yaml(const PlanResult& r, const PlanOptions& o, const std::string& model_path,
                             const std::string& recipe_path) {
  namespace fs = std::filesystem;
  if (r.winner < 0) throw_error(ErrorKind::Internal, "plan_recipe_yaml without a winner");
  const PlanCandidate& w = r.candidates[static_cast<size_t>(r.winner)];
  const fs::path dir = fs::absolute(recipe_path).parent_path();
  // Relative to the recipe when both live under one top-level folder (the recipe moves with its project);
  // absolute otherwise, rather than a climb through the root.
  const auto rel = [&](const std::string& p) {
    const fs::path target = fs::absolute(p).lexically_normal();
    const auto top = [](const fs::path& q) { auto it = q.begin(); return it == q.end() || ++it == q.end() ? fs::path() : *it; };
    if (top(target) != top(dir)) return target.generic_string();
    return fs::relative(target, dir).generic_string();
  };
  const auto quoted = [](const std::string& s) { return "'" + s + "'"; };  // YAML single quotes: no escapes but ''
  std::string y;
  y += fmt::format("# Written by slmopt plan: the lowest-KL candidate within {:g} MB (weights + KV cache at ctx {}).\n",
                   o.budget_mb, r.ctx);
  y += fmt::format("# {}: weights {} bytes + KV {} bytes; KL {:.5f}, top-1 {:.2f} % on {} tokens.\n", w.name,
                   w.weight_bytes, w.kv_bytes, w.mean_kl, 100.0 * w.top1_agreement, r.tokens_scored);
  y += fmt::format("model: {}\n", quoted(rel(model_path)));
  y += fmt::format("output: {}\n", quoted(fs::path(recipe_path).stem().string() + "-out"));
  const std::string text = o.eval.text_path.empty() ? o.eval.tokens_path : o.eval.text_path;
  y += fmt::format("evaluation: {{{}: {}, ctx: {}{}}}\n", o.eval.text_path.empty() ? "tokens" : "text",
                   quoted(rel(text)), o.eval.ctx,
                   o.eval.max_windows > 0 ? fmt::format(", max-windows: {}", o.eval.max_windows) : "");
  if (w.method == "imatrix") {  // the target collects the same importance matrix from the same windows
    const std::string calib = o.calib.text_path.empty() ? o.calib.tokens_path : o.calib.text_path;
    y += fmt::format("calibration: {{{}: {}, samples: {}, seqlen: {}, seed: {}}}\n",
                     o.calib.text_path.empty() ? "tokens" : "text", quoted(rel(calib)), o.calib.samples, o.calib.seqlen,
                     o.calib.seed);
  }
  y += "targets:\n";
  std::string target = w.name;  // a recipe target name takes letters, digits, '.', '_' and '-'
  std::replace(target.begin(), target.end(), '+', '-');
  y += fmt::format("  - name: {}\n    format: gguf\n    type: {}\n", target, w.preset);
  if (!w.type_for.empty()) {
    y += "    type-for:\n";
    for (const auto& t : w.type_for) y += fmt::format("      - {}\n", quoted(t));
  }
  return y;
}

}  // namespace slmopt::pipeline
