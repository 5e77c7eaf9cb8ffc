// The compare tool: `slmopt compare A B --text FILE` (pipeline/compare.h), with quantize's gates and exit code.
#include <cstdio>

#include "tools.h"
#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/pipeline/compare.h"
#include "slmopt/pipeline/stage_report.h"

namespace slmopt::pipeline {
namespace {

void add_compare_gates(CompareReport& r, double max_ppl_increase, double max_kl) {
  if (max_ppl_increase >= 0) {
    const double v = r.eval.ppl_increase_percent();
    r.gates.push_back({"max-ppl-increase", max_ppl_increase, v, v <= max_ppl_increase});
  }
  if (max_kl >= 0) r.gates.push_back({"max-kl", max_kl, r.eval.mean_kl, r.eval.mean_kl <= max_kl});
}

void print_summary(const CompareReport& r, int64_t top) {
  const auto row = [](const char* what, const std::string& a, const std::string& b) {
    std::printf("%-16s %-24s %-24s\n", what, a.c_str(), b.c_str());
  };
  row("", "A", "B");
  row("format", r.a.format, r.b.format);
  row("size", human_bytes(static_cast<double>(r.a.bytes)), human_bytes(static_cast<double>(r.b.bytes)));
  row("bits/weight", fmt::format("{:.3f}", r.a.bits_per_weight), fmt::format("{:.3f}", r.b.bits_per_weight));
  row("perplexity", fmt::format("{:.4f}", r.a.perplexity),
      fmt::format("{:.4f} ({:+.3f} %)", r.b.perplexity, r.eval.ppl_increase_percent()));
  row("eval tokens/s", fmt::format("{:.0f}", r.a.tokens_per_second), fmt::format("{:.0f}", r.b.tokens_per_second));
  std::printf("KL(A||B) %.5f nats/token, top-1 agreement %.2f %% on %lld tokens\n", r.eval.mean_kl,
              100.0 * r.eval.top1_agreement, (long long)r.eval.tokens_scored);
  std::printf("tensors: %zu shared (%lld identical), %zu only in A, %zu only in B, %zu with different shapes\n",
              r.tensors.size(), (long long)r.identical_tensors, r.only_in_a.size(), r.only_in_b.size(),
              r.shape_mismatch.size());
  for (size_t i = 0; i < r.tensors.size() && static_cast<int64_t>(i) < top; ++i) {
    const auto& t = r.tensors[i];
    if (t.relative_rms == 0) break;
    std::printf("  %-52s %-6s -> %-6s rel. RMS diff %.5f\n", t.name.c_str(), t.type_a.c_str(), t.type_b.c_str(),
                t.relative_rms);
  }
  for (const auto& g : r.gates)
    std::printf("gate %s: %.6g (limit %g) %s\n", g.name.c_str(), g.value, g.limit, g.passed ? "pass" : "FAIL");
}

void run_compare(const OptionValues& v) {
  EvalTextOptions eval = eval_from_values(v, "--text");
  if (!eval.given()) throw_error(ErrorKind::Usage, "compare needs an evaluation text: --text FILE or --tokens FILE");
  const Model a = load_model(v.str("A"));
  const Model b = load_model(v.str("B"));
  CompareReport r = compare_checkpoints(a, b, eval);
  add_compare_gates(r, v.f64("max-ppl-increase"), v.f64("max-kl"));
  const int64_t top = v.i64("top");
  if (!v.str("report").empty()) {
    std::string base = v.str("report");
    if (base.size() > 5 && base.compare(base.size() - 5, 5, ".json") == 0) base.resize(base.size() - 5);
    write_file_atomic(base + ".json", compare_report_to_json(r).dump(2) + "\n");
    write_file_atomic(base + ".md", compare_report_to_markdown(r, top));
  }
  if (v.flag("json")) print_json(compare_report_to_json(r));
  else print_summary(r, top);
  for (const auto& g : r.gates)
    if (!g.passed)
      throw_error(ErrorKind::Gate, "gate {} failed: {:.6g} > {:g} (the report was written)", g.name, g.value, g.limit);
}

}  // namespace

ToolInfo compare_tool() {
  ToolInfo t;
  t.name = "compare";
  t.summary = "A/B report of two model versions: perplexity, KL, top-1 agreement, sizes, speed, changed tensors";
  t.footer = std::string("KL(A||B) and top-1 agreement compare the next-token distributions position by position; "
                         "the windows are cut with A's tokenizer. ") + kEvalProtocolHelp;
  t.options = {positional_option("A", "The baseline model (Hugging Face folder, .gguf or .onnx file)"),
               positional_option("B", "The candidate model (any format)")};
  for (auto& spec : eval_option_specs("--text")) t.options.push_back(spec);
  t.options.push_back(int_option("top", 10, "Tensors listed in the summary and the Markdown table (default 10)")
                          .with_check(OptionCheck::NonNegative));
  t.options.push_back(string_option("report", "", "Write the report to PATH.json and PATH.md").as_path());
  t.options.push_back(float_option("max-ppl-increase", -1, "Exit with code 6 when B's perplexity is more than PCT % "
                                   "above A's (the report is still written)"));
  t.options.push_back(float_option("max-kl", -1, "Exit with code 6 when mean KL(A||B) exceeds X nats/token"));
  t.options.push_back(flag_option("json", "Print the report as JSON on stdout"));
  t.run = run_compare;
  return t;
}

}  // namespace slmopt::pipeline
