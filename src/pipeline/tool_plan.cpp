// The plan tool: `slmopt plan MODEL --budget-mb N [--ctx C] --text FILE [--write-recipe FILE]` (pipeline/plan.h).
#include <cstdio>

#include <fmt/format.h>

#include "tools.h"
#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/pipeline/plan.h"
#include "slmopt/pipeline/stage_report.h"

namespace slmopt::pipeline {
namespace {

nlohmann::json result_json(const PlanResult& r, const PlanOptions& o) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& c : r.candidates)
    list.push_back({{"name", c.name}, {"type", c.preset}, {"type_for", c.type_for}, {"weight_bytes", c.weight_bytes},
                    {"method", c.method}, {"kv_bytes", c.kv_bytes}, {"total_bytes", c.total_bytes()}, {"bits_per_weight", c.bits_per_weight},
                    {"mean_kl", c.mean_kl}, {"top1_agreement", c.top1_agreement}, {"perplexity", c.ppl},
                    {"fits", c.fits}});
  return {{"budget_mb", o.budget_mb},
          {"ctx", r.ctx},
          {"kv_element_bytes", o.kv_element_bytes},
          {"reference_perplexity", r.reference_ppl},
          {"tokens_scored", r.tokens_scored},
          {"importance_runs", r.importance_runs},
          {"importance_seconds", r.importance_seconds},
          {"candidates", list},
          {"winner", r.winner >= 0 ? nlohmann::json(r.candidates[static_cast<size_t>(r.winner)].name) : nlohmann::json()}};
}

// Sizes in MB (10^6 bytes), the budget's unit.
void print_table(const PlanResult& r, const PlanOptions& o) {
  std::printf("budget %g MB for weights + KV cache at ctx %lld; reference perplexity %.4f on %lld tokens\n",
              o.budget_mb, (long long)r.ctx, r.reference_ppl, (long long)r.tokens_scored);
  if (r.importance_runs > 0)
    std::printf("importance matrix: collected once (%.1f s), used by every candidate (method imatrix)\n",
                r.importance_seconds);
  std::printf("%-16s %-8s %11s %9s %11s %7s %9s %8s %10s  %s\n", "candidate", "method", "weights MB", "KV MB",
              "total MB", "bpw", "KL", "top-1", "perplexity", "fits");
  for (size_t i = 0; i < r.candidates.size(); ++i) {
    const auto& c = r.candidates[i];
    std::printf("%-16s %-8s %11.3f %9.3f %11.3f %7.3f %9.5f %7.2f%% %10.4f  %s%s\n", c.name.c_str(), c.method.c_str(),
                static_cast<double>(c.weight_bytes) / 1e6, static_cast<double>(c.kv_bytes) / 1e6,
                static_cast<double>(c.total_bytes()) / 1e6, c.bits_per_weight, c.mean_kl,
                100.0 * c.top1_agreement, c.ppl, c.fits ? "yes" : "no",
                static_cast<int>(i) == r.winner ? "  <- lowest KL that fits" : "");
  }
}

void run_plan(const OptionValues& v) {
  PlanOptions o;
  o.budget_mb = v.f64("budget-mb");
  o.ctx = v.i64("ctx");
  o.kv_element_bytes = v.str("kv-type") == "f32" ? 4 : 2;
  o.eval.text_path = v.str("text");
  o.eval.tokens_path = v.str("tokens");
  o.eval.ctx = v.i64("eval-ctx");
  o.eval.max_windows = v.i64("max-windows");
  if (!o.eval.given()) throw_error(ErrorKind::Usage, "plan needs an evaluation text: --text FILE or --tokens FILE");
  o.calib = calibration_from_values(v);
  for (size_t b = 0, e; b < v.str("presets").size(); b = e + 1) {
    e = v.str("presets").find(',', b);
    if (e == std::string::npos) e = v.str("presets").size();
    if (e > b) o.presets.push_back(v.str("presets").substr(b, e - b));
  }
  const Model model = load_model(v.str("MODEL"));
  const PlanResult r = plan_quantization(model, o);
  if (v.flag("json")) print_json(result_json(r, o));
  else print_table(r, o);
  if (r.winner < 0) {
    uint64_t smallest = UINT64_MAX;
    for (const auto& c : r.candidates) smallest = std::min(smallest, c.total_bytes());
    throw_error(ErrorKind::Gate, "no candidate fits {:g} MB at ctx {} (the smallest needs {:.3f} MB); raise "
                "--budget-mb or lower --ctx", o.budget_mb, r.ctx, static_cast<double>(smallest) / 1e6);
  }
  if (!v.str("write-recipe").empty()) {
    write_file_atomic(v.str("write-recipe"), plan_recipe_yaml(r, o, v.str("MODEL"), v.str("write-recipe")));
    if (!v.flag("json")) std::printf("wrote %s (run it with: slmopt run %s)\n", v.str("write-recipe").c_str(),
                                     v.str("write-recipe").c_str());
  }
}

}  // namespace

ToolInfo plan_tool() {
  ToolInfo t;
  t.name = "plan";
  t.summary = "Lowest-KL GGUF preset or type mix within a memory budget (weights + KV cache)";
  t.footer = "Candidates: every GGUF preset (F16 down to Q2_K), and each below Q8_0 again with the output head and "
             "embeddings kept at Q8_0 (--type-for), each quantized in memory (RTN) and compared with the input on "
             "the evaluation windows. Memory = tensor bytes + KV cache (layers x kv_heads x head_dim x 2 x ctx x "
             "element size); MB = 10^6 bytes. With --calib, the importance matrix is collected once and every candidate "
             "rounds with it, the i-quant presets included. Exits with code 6 when nothing fits.";
  OptionSpec text = string_option("text", "", "Evaluation text (UTF-8), tokenized with the model's tokenizer")
                        .with_check(OptionCheck::ExistingFile).as_path().excluding("tokens");
  t.options = {positional_option("MODEL", "Hugging Face folder, .gguf or .onnx file"),
               float_option("budget-mb", 0, "Memory budget in MB (10^6 bytes) for weights + KV cache").mandatory()
                   .with_check(OptionCheck::Positive),
               int_option("ctx", 0, "Context length the KV cache must hold (default: the model's)")
                   .with_check(OptionCheck::NonNegative),
               string_option("kv-type", "f16", "KV cache element type: f16 (default, llama.cpp's) or f32")
                   .with_members({"f16", "f32"}),
               text,
               string_option("tokens", "", "Evaluation token ids instead of --text").with_check(OptionCheck::ExistingFile)
                   .as_path(),
               int_option("eval-ctx", 128, "Evaluation window length in tokens (default 128)")
                   .with_check(OptionCheck::Range, 2, 1 << 20),
               int_option("max-windows", 8, "Evaluate on at most this many windows (default 8; 0: all)")
                   .with_check(OptionCheck::NonNegative),
               string_option("write-recipe", "", "Write a recipe for the winner ('slmopt run' accepts it)").as_path(),
               string_option("presets", "", "Measure only these presets (comma-separated, e.g. q4_k_m,iq4_xs), "
                             "each also with +out8"),
               flag_option("json", "Print the candidates as JSON")};
  // Calibration text: one importance matrix for every candidate, and the i-quant presets that need it.
  for (auto& spec : calibration_option_specs(32, "Calibration windows for the importance matrix (default 32)", 0,
                                             "Tokens per calibration window (default: min(model context, 512))",
                                             "Seed for choosing calibration windows (default 0)"))
    t.options.push_back(spec);
  t.run = run_plan;
  return t;
}

}  // namespace slmopt::pipeline
