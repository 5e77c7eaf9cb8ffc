// Size-matched bit allocation (quant/bit_allocation.h): probes, predicted KL per candidate type, and the
// multiple-choice knapsack.
#include "slmopt/quant/bit_allocation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/log_softmax.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/quant/tensor_quantizer.h"

namespace slmopt {
namespace {

// The types stock llama.cpp runs on every backend that matters here (its CPU kernels exist for all), by bits per
// weight. Q4_0/Q4_1/Q5_1 are left out: IQ4_NL and Q5_0 hold the same sizes with lower error on these rows.
constexpr DType kLadder[] = {DType::IQ1_S,   DType::IQ1_M,  DType::IQ2_XXS, DType::IQ2_XS, DType::IQ2_S,
                             DType::Q2_K,    DType::IQ3_XXS, DType::IQ3_S,  DType::Q3_K,   DType::IQ4_XS,
                             DType::IQ4_NL,  DType::Q4_K,   DType::Q5_0,    DType::Q5_K,   DType::Q6_K,
                             DType::Q8_0};
constexpr uint64_t kAlignment = 32;  // GGUF's default general.alignment, what the writer uses
constexpr uint64_t kUnits = 20000;   // knapsack resolution: the budget in this many units

double bpw(DType d) { return 8.0 * static_cast<double>(traits(d).block_bytes) / static_cast<double>(traits(d).block_size); }

uint64_t padded_bytes(const std::vector<int64_t>& shape, DType d) {
  const uint64_t n = Tensor::bytes_for(shape, d);
  return (n + kAlignment - 1) / kAlignment * kAlignment;
}

// The block a tensor belongs to (probes rerun blocks from there on): -1 = from the embedding, layer_count =
// only the head.
int64_t first_layer(const std::string& name, int64_t layers) {
  if (name == names::kLmHead) return layers;
  const std::string prefix = "model.layers.";
  if (!name.starts_with(prefix)) return -1;
  int64_t layer = 0;
  size_t i = prefix.size();
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) layer = layer * 10 + (name[i] - '0');
  return i < name.size() && name[i] == '.' && layer < layers ? layer : -1;
}

// The float model's state on the probe windows: block inputs per layer and log-probabilities.
struct Reference {
  std::vector<std::vector<RowMatrix>> hidden;  // [layer 0..L][window]: input of block `layer` (L: final)
  std::vector<RowMatrix> log_probs;            // [window] [T, vocab]
  int64_t positions = 0;
};

RowMatrix log_softmax_rows(const RowMatrix& logits) {
  RowMatrix out(logits.rows(), logits.cols());
  for (int64_t r = 0; r < logits.rows(); ++r) log_softmax(row_span(logits, r), row_span(out, r));
  return out;
}

Reference run_reference(const ModelRunner& runner, const std::vector<std::vector<int32_t>>& windows) {
  Reference ref;
  const int64_t layers = runner.layer_count();
  ref.hidden.resize(static_cast<size_t>(layers + 1));
  std::vector<RowMatrix> h(windows.size());
  for (size_t w = 0; w < windows.size(); ++w) {
    h[w] = runner.embed(windows[w]);
    ref.positions += static_cast<int64_t>(windows[w].size());
  }
  for (int64_t l = 0; l < layers; ++l) {
    ref.hidden[static_cast<size_t>(l)] = h;
    runner.run_block_windows(l, h);
  }
  ref.hidden[static_cast<size_t>(layers)] = h;
  ref.log_probs.resize(windows.size());
  parallel_for(windows.size(), [&](size_t b, size_t e) {
    for (size_t w = b; w < e; ++w) ref.log_probs[w] = log_softmax_rows(runner.final_logits(h[w]));
  });
  return ref;
}

// Mean KL(reference ‖ probe) over every position of the probe windows; the probe model runs from `from` on.
double probe_kl(const ModelRunner& probe, const Reference& ref, const std::vector<std::vector<int32_t>>& windows,
                int64_t from) {
  const int64_t layers = probe.layer_count();
  std::vector<RowMatrix> h;
  if (from < 0) {
    h.resize(windows.size());
    for (size_t w = 0; w < windows.size(); ++w) h[w] = probe.embed(windows[w]);
    from = 0;
  } else {
    h = ref.hidden[static_cast<size_t>(from)];
  }
  for (int64_t l = from; l < layers; ++l) probe.run_block_windows(l, h);
  std::vector<double> sums(windows.size(), 0.0);
  parallel_for(windows.size(), [&](size_t b, size_t e) {
    for (size_t w = b; w < e; ++w) {
      const RowMatrix lp = log_softmax_rows(probe.final_logits(h[w]));
      const RowMatrix& rp = ref.log_probs[w];
      double s = 0;
      for (int64_t r = 0; r < lp.rows(); ++r) {
        double kl = 0;
        for (int64_t v = 0; v < lp.cols(); ++v) {
          const double a = rp(r, v);
          kl += std::exp(a) * (a - static_cast<double>(lp(r, v)));
        }
        s += kl;
      }
      sums[w] = s;
    }
  });
  double total = 0;
  for (double s : sums) total += s;  // window order: the same for any thread count
  return ref.positions > 0 ? total / static_cast<double>(ref.positions) : 0.0;
}

bool user_override(const TypeSelectionOptions& selection, const std::string& name) {
  for (const auto& o : selection.overrides)
    if (override_matches(o.pattern, name)) return true;
  return false;
}

}  // namespace

std::vector<std::string> AllocationResult::overrides() const {
  std::vector<std::string> out;
  for (const auto& t : tensors)
    if (!t.fixed) out.push_back(fmt::format("{}={}", t.name, dtype_name(t.chosen)));
  return out;
}

AllocationResult allocate_to_size(const Model& model, const TypeSelectionOptions& selection_in,
                                  const ImportanceMatrix& importance, const std::vector<std::vector<int32_t>>& all_windows,
                                  const AllocationOptions& options) {
  const PresetInfo& info = preset_info(selection_in.preset);
  if (!traits(info.base).is_quantized)
    throw_error(ErrorKind::Usage, "--allocate size: preset {} is not quantized; choose a quantized preset such as "
                "IQ2_XS or Q4_K_M", info.name);
  if (all_windows.empty() || options.windows < 1)
    throw_error(ErrorKind::Usage, "--allocate size needs calibration windows to measure each tensor's sensitivity");
  TypeSelectionOptions selection = selection_in;
  selection.has_importance = true;
  TypeSelectionOptions llama = selection;
  llama.narrow_rows = NarrowRows::Llama;
  const std::vector<TypeChoice> ours = select_tensor_types(model, selection);
  const std::vector<TypeChoice> theirs = select_tensor_types(model, llama);

  AllocationResult r;
  const double base = bpw(info.base);
  const std::vector<DType> ladder =
      options.ladder.empty() ? std::vector<DType>(std::begin(kLadder), std::end(kLadder)) : options.ladder;
  uint64_t fixed_bytes = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    const Tensor& t = model.tensor(ours[i].name);
    r.budget_bytes += padded_bytes(t.shape(), theirs[i].dtype);
    r.preset_bytes += padded_bytes(t.shape(), ours[i].dtype);
    TensorAllocation a;
    a.name = ours[i].name;
    a.preset = a.chosen = ours[i].dtype;
    a.fixed = t.rank() != 2 || !traits(ours[i].dtype).is_quantized || user_override(selection, a.name);
    if (a.fixed) fixed_bytes += padded_bytes(t.shape(), a.preset);
    r.tensors.push_back(std::move(a));
  }

  const std::vector<std::vector<int32_t>> windows(
      all_windows.begin(), all_windows.begin() + std::min<ptrdiff_t>(options.windows, std::ssize(all_windows)));
  const ModelRunner float_runner(model);
  const Reference ref = run_reference(float_runner, windows);
  r.probe_tokens = ref.positions;
  const int64_t layers = float_runner.layer_count();

  for (TensorAllocation& a : r.tensors) {
    if (a.fixed) continue;
    const Tensor& t = model.tensor(a.name);
    const std::vector<float>* imp_vec = importance.find(a.name);
    const float* imp = imp_vec && std::ssize(*imp_vec) == t.cols() ? imp_vec->data() : nullptr;
    const bool exempt = a.name == names::kEmbedTokens || a.name == names::kLmHead;
    std::vector<DType> types;
    for (DType d : ladder)
      if (d == a.preset || (bpw(d) >= base - 1.0 && bpw(d) <= base + 2.1 && t.cols() % traits(d).block_size == 0 &&
                            (imp || exempt || !needs_importance(d))))
        types.push_back(d);
    if (std::find(types.begin(), types.end(), a.preset) == types.end()) types.push_back(a.preset);
    double preset_error = 0;
    for (DType d : types) {
      const Tensor q = quantize_tensor(t, d, imp, options.encoder);
      const double e = relative_error(t, q, imp);
      AllocationCandidate c{d, padded_bytes(t.shape(), d), e * e, 0};
      if (d == a.preset) {
        preset_error = c.weighted_error;
        Model probe_model = model;  // shares every tensor but this one
        probe_model.set(q);
        const ModelRunner probe(probe_model);
        a.probe_kl = std::max(0.0, probe_kl(probe, ref, windows, first_layer(a.name, layers)));
        ++r.probes;
      }
      a.candidates.push_back(c);
    }
    for (auto& c : a.candidates)
      c.predicted_kl = preset_error > 0 ? a.probe_kl * c.weighted_error / preset_error : a.probe_kl;
    std::stable_sort(a.candidates.begin(), a.candidates.end(),
                     [](const AllocationCandidate& x, const AllocationCandidate& y) { return x.bytes < y.bytes; });
    spdlog::debug("allocate: {} probe KL {:.3g} at {}", a.name, a.probe_kl, dtype_name(a.preset));
  }

  // Multiple-choice knapsack over the bytes left after the fixed tensors.
  std::vector<TensorAllocation*> items;
  for (auto& a : r.tensors)
    if (!a.fixed) items.push_back(&a);
  const uint64_t capacity_bytes = r.budget_bytes > fixed_bytes ? r.budget_bytes - fixed_bytes : 0;
  const uint64_t unit = std::max<uint64_t>(1, (capacity_bytes + kUnits - 1) / kUnits);
  const size_t cap = static_cast<size_t>(capacity_bytes / unit);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::vector<double> dp(cap + 1, 0.0), next(cap + 1);
  std::vector<std::vector<uint8_t>> pick(items.size(), std::vector<uint8_t>(cap + 1, 0));
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& cands = items[i]->candidates;
    for (size_t k = 0; k <= cap; ++k) {
      double best = kInf;
      uint8_t arg = 0;
      for (size_t j = 0; j < cands.size(); ++j) {
        const uint64_t w = (cands[j].bytes + unit - 1) / unit;
        if (w > k || dp[k - w] == kInf) continue;
        const double v = dp[k - w] + cands[j].predicted_kl;
        if (v < best) {
          best = v;
          arg = static_cast<uint8_t>(j);
        }
      }
      next[k] = best;
      pick[i][k] = arg;
    }
    std::swap(dp, next);
  }
  double preset_kl = 0;
  for (const auto* a : items)
    for (const auto& c : a->candidates)
      if (c.dtype == a->preset) preset_kl += c.predicted_kl;
  r.predicted_kl_preset = preset_kl;
  const bool preset_fits = r.preset_bytes <= r.budget_bytes;
  if (dp[cap] == kInf || (preset_fits && preset_kl <= dp[cap])) {
    if (!preset_fits)
      throw_error(ErrorKind::Internal, "--allocate size: no type mix fits {} bytes", r.budget_bytes);
    r.predicted_kl_chosen = preset_kl;  // every tensor keeps its preset type
  } else {
    size_t k = cap;
    for (size_t i = items.size(); i-- > 0;) {
      const AllocationCandidate& c = items[i]->candidates[pick[i][k]];
      items[i]->chosen = c.dtype;
      k -= static_cast<size_t>((c.bytes + unit - 1) / unit);
    }
    r.predicted_kl_chosen = dp[cap];
  }
  for (const auto& a : r.tensors) r.chosen_bytes += padded_bytes(model.tensor(a.name).shape(), a.chosen);
  if (r.chosen_bytes > r.budget_bytes)
    throw_error(ErrorKind::Internal, "--allocate size: chose {} bytes over a budget of {}", r.chosen_bytes,
                r.budget_bytes);
  return r;
}

}  // namespace slmopt
