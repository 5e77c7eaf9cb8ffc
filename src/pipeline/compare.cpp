// A/B comparison of two checkpoints (pipeline/compare.h): the evaluation reuses compare_models (the quantize
// report's KL and top-1), speed is timed per model on a few windows (compare_models runs both models together),
// and the tensor table decodes each shared tensor of both models row by row (quant's relative_error).
#include "slmopt/pipeline/compare.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "slmopt/core/error.h"
#include "slmopt/eval/perplexity.h"
#include "slmopt/pipeline/stage_report.h"
#include "slmopt/quant/tensor_quantizer.h"

namespace slmopt::pipeline {
namespace {

std::string shape_text(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

ComparedModel describe(const Model& m) {
  ComparedModel c;
  c.path = m.source_path;
  c.format = m.source_format;
  c.bytes = path_bytes(m.source_path);
  c.parameters = m.parameter_count();
  c.bits_per_weight = c.parameters ? 8.0 * static_cast<double>(m.total_bytes()) / static_cast<double>(c.parameters) : 0;
  return c;
}

nlohmann::json finite_or_string(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json("inf"); }

nlohmann::json model_json(const ComparedModel& m) {
  return {{"path", m.path},           {"format", m.format},         {"bytes", m.bytes},
          {"parameters", m.parameters}, {"bits_per_weight", m.bits_per_weight}, {"nll", m.nll},
          {"perplexity", m.perplexity}, {"eval_tokens_per_second", m.tokens_per_second}};
}

}  // namespace

CompareReport compare_checkpoints(const Model& a, const Model& b, EvalTextOptions& eval) {
  const auto start = std::chrono::steady_clock::now();
  if (a.config.vocab_size != b.config.vocab_size)
    throw_error(ErrorKind::Usage, "{} has {} tokens in its vocabulary and {} has {}: their next-token distributions "
                "cannot be compared", a.source_path, a.config.vocab_size, b.source_path, b.config.vocab_size);
  CompareReport r;
  r.tool_version = SLMOPT_VERSION;
  r.a = describe(a);
  r.b = describe(b);

  const std::vector<EvalWindow> windows = build_eval_windows(a, eval);
  const ModelRunner runner_a(a), runner_b(b);
  const ComparisonResult c = compare_models(runner_a, runner_b, windows);
  r.eval = to_eval_comparison(c, eval);
  r.a.nll = c.original.mean_nll;
  r.a.perplexity = c.original.perplexity;
  r.b.nll = c.candidate.mean_nll;
  r.b.perplexity = c.candidate.perplexity;
  const std::vector<EvalWindow> few(windows.begin(), windows.begin() + std::min<ptrdiff_t>(4, windows.size()));
  r.a.tokens_per_second = evaluate_perplexity(runner_a, few).tokens_per_second;
  r.b.tokens_per_second = evaluate_perplexity(runner_b, few).tokens_per_second;

  std::map<std::string, const Tensor*> in_b;
  for (const Tensor* t : b.ordered_tensors()) in_b[t->name()] = t;
  for (const Tensor* ta : a.ordered_tensors()) {
    auto it = in_b.find(ta->name());
    if (it == in_b.end()) {
      r.only_in_a.push_back(ta->name());
      continue;
    }
    const Tensor* tb = it->second;
    in_b.erase(it);
    if (ta->shape() != tb->shape()) {
      r.shape_mismatch.push_back(fmt::format("{} {} vs {}", ta->name(), shape_text(ta->shape()), shape_text(tb->shape())));
      continue;
    }
    TensorDifference d{ta->name(), ta->shape(), std::string(dtype_name(ta->dtype())), std::string(dtype_name(tb->dtype())),
                       relative_error(*ta, *tb, nullptr)};
    r.identical_tensors += d.relative_rms == 0;
    r.tensors.push_back(std::move(d));
  }
  for (const auto& [name, t] : in_b) r.only_in_b.push_back(name);
  std::stable_sort(r.tensors.begin(), r.tensors.end(), [](const TensorDifference& x, const TensorDifference& y) {
    return x.relative_rms != y.relative_rms ? x.relative_rms > y.relative_rms : x.name < y.name;
  });
  r.seconds = seconds_since(start);
  return r;
}

nlohmann::json compare_report_to_json(const CompareReport& r) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : r.tensors)
    tensors.push_back({{"name", t.name}, {"shape", t.shape}, {"type_a", t.type_a}, {"type_b", t.type_b},
                       {"relative_rms_difference", finite_or_string(t.relative_rms)}});
  nlohmann::json gates = nlohmann::json::array();
  for (const auto& g : r.gates) gates.push_back({{"name", g.name}, {"limit", g.limit}, {"value", g.value}, {"passed", g.passed}});
  const auto& e = r.eval;
  return {{"command", "compare"},
          {"tool_version", r.tool_version},
          {"a", model_json(r.a)},
          {"b", model_json(r.b)},
          {"eval", {{"text", e.text_path}, {"ctx", e.ctx}, {"windows", e.windows}, {"tokens_scored", e.tokens_scored},
                    {"ppl_increase_percent", e.ppl_increase_percent()}, {"mean_kl_a_b", e.mean_kl},
                    {"top1_agreement", e.top1_agreement}}},
          {"tensors", tensors},
          {"identical_tensors", r.identical_tensors},
          {"only_in_a", r.only_in_a},
          {"only_in_b", r.only_in_b},
          {"shape_mismatch", r.shape_mismatch},
          {"gates", gates},
          {"seconds", r.seconds}};
}

std::string compare_report_to_markdown(const CompareReport& r, int64_t top) {
  const auto& e = r.eval;
  std::string md = "# slmopt compare\n\n";
  md += "| | A | B |\n|---|---|---|\n";
  md += fmt::format("| model | `{}` ({}) | `{}` ({}) |\n", r.a.path, r.a.format, r.b.path, r.b.format);
  md += fmt::format("| size | {} | {} |\n", human_bytes(static_cast<double>(r.a.bytes)), human_bytes(static_cast<double>(r.b.bytes)));
  md += fmt::format("| parameters | {} | {} |\n", r.a.parameters, r.b.parameters);
  md += fmt::format("| bits/weight | {:.3f} | {:.3f} |\n", r.a.bits_per_weight, r.b.bits_per_weight);
  md += fmt::format("| perplexity | {:.4f} | {:.4f} ({:+.3f} %) |\n", r.a.perplexity, r.b.perplexity, e.ppl_increase_percent());
  md += fmt::format("| eval tokens/s | {:.0f} | {:.0f} |\n\n", r.a.tokens_per_second, r.b.tokens_per_second);
  md += fmt::format("KL(A‖B) {:.5f} nats/token, top-1 agreement {:.2f} % on {} tokens ({} windows of {} from `{}`).\n\n",
                    e.mean_kl, 100.0 * e.top1_agreement, e.tokens_scored, e.windows, e.ctx, e.text_path);
  md += fmt::format("## Tensors that differ most ({} shared, {} identical)\n\n", r.tensors.size(), r.identical_tensors);
  md += "| tensor | shape | A type | B type | relative RMS difference |\n|---|---|---|---|---|\n";
  for (size_t i = 0; i < r.tensors.size() && static_cast<int64_t>(i) < top; ++i) {
    const auto& t = r.tensors[i];
    md += fmt::format("| `{}` | {} | {} | {} | {} |\n", t.name, shape_text(t.shape), t.type_a, t.type_b,
                      std::isfinite(t.relative_rms) ? fmt::format("{:.5f}", t.relative_rms) : "inf");
  }
  const auto names = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& n : v) s += fmt::format("{}`{}`", s.empty() ? "" : ", ", n);
    return s.empty() ? std::string("none") : s;
  };
  md += fmt::format("\nOnly in A: {}.  \nOnly in B: {}.  \nDifferent shapes: {}.\n", names(r.only_in_a),
                    names(r.only_in_b), names(r.shape_mismatch));
  if (!r.gates.empty()) {
    md += "\n## Gates\n\n| gate | limit | value | result |\n|---|---|---|---|\n";
    for (const auto& g : r.gates)
      md += fmt::format("| {} | {:g} | {:.6g} | {} |\n", g.name, g.limit, g.value, g.passed ? "pass" : "FAIL");
  }
  return md;
}

}  // namespace slmopt::pipeline
