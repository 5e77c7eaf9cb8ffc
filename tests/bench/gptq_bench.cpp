// Accuracy and speed of calibrated quantization on the bundled models, printed as Markdown tables:
//   1. per model and integer grid (int4 g32, int4 g128, int3 g128): RTN vs GPTQ vs AWQ vs AWQ+GPTQ — perplexity
//      on the held-out eval text, its change from the float model, mean KL(float ‖ quantized) and top-1
//      agreement (eval/perplexity.h compare_models), the mean relative output error of the linears on calibration
//      data and that of RTN on the same grid, calibration and solver seconds, GPTQ GFLOP/s;
//   2. GGUF grids (llama.cpp presets through type_selection.h, block linears only; embedding and head stay float
//      here, the GGUF writer quantizes them as usual): "rtn" = nearest level on the encoder's own block scales,
//      "gptq" = GPTQ choosing the codes on those same scales ("act-order": GPTQ with act-order, static groups);
//   3. the GPTQ solver alone on random [rows, cols] weights: wall and CPU seconds, GFLOP/s;
//   4. peak resident memory of the process.
// Calibration: models/data/<model>-calib.txt, 32 windows of 256 tokens (seed 1); evaluation: <model>-eval.txt,
// windows of 256 tokens (at most 32).
// Usage: gptq_bench [threads] [source dir] [kjv|tinystories|solver]   (one part only). A plain program, not a Google
// Benchmark: every figure is one deterministic run.
#include <sys/resource.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "slmopt/core/log.h"
#include "slmopt/core/parallel.h"
#include "slmopt/eval/perplexity.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/hf.h"
#include "slmopt/quant/calibration.h"
#include "slmopt/quant/gptq.h"
#include "slmopt/quant/type_selection.h"
#include "slmopt/text/dataset.h"
#include "slmopt/text/tokenizer.h"

using namespace slmopt;

namespace {

struct Bench {
  std::string model_dir, calib, eval;
};

void run_model(const std::string& root, const std::string& name, const std::string& data_prefix) {
  const Model original = load_hf_model(root + "/models/" + name);
  const Tokenizer tok(original.vocab);
  const auto bos = original.vocab.bos_id;
  const auto windows = sample_calibration_windows(tokenize_file(tok, root + "/models/data/" + data_prefix + "-calib.txt"),
                                                  32, 256, 1, bos);
  const auto eval = make_eval_windows(tokenize_file(tok, root + "/models/data/" + data_prefix + "-eval.txt"), 256, bos, 32);
  const ModelRunner reference(original);
  const PerplexityResult base = evaluate_perplexity(reference, eval);
  std::printf("\n### %s (float perplexity %.4f on %lld eval tokens; calibration %zu x 256 tokens)\n\n", name.c_str(),
              base.perplexity, static_cast<long long>(base.tokens_scored), windows.size());
  std::printf("| grid | method | ppl | Δppl | KL | top-1 | rel. out. err | RTN err | calib s | solver s | GPTQ GFLOP/s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  auto row = [&](const std::string& grid, CalibrationMethod method, const TargetChooser& choose,
                 bool act_order = false) {
    Model model = original;
    CalibrationOptions options;
    options.method = method;
    options.gptq.act_order = act_order;
    options.progress = false;
    const CalibrationResult r = quantize_calibrated(model, windows, choose, options);
    const ComparisonResult cmp = compare_models(reference, ModelRunner(model), eval);
    double err = 0, rtn = 0;
    for (const LinearReport& l : r.report.linears) err += l.error, rtn += l.rtn_error;
    const double n = static_cast<double>(r.report.linears.size());
    const double gflops = r.report.solver_flops > 0 ? r.report.solver_flops / r.report.gptq_seconds / 1e9 : 0;
    std::printf("| %s | %s | %.4f | %+.4f | %.5f | %.4f | %.4f | %.4f | %.2f | %.2f | %.2f |\n", grid.c_str(),
                (calibration_method_name(method) + std::string(act_order ? " act-order" : "")).c_str(),
                cmp.candidate.perplexity, cmp.candidate.perplexity - base.perplexity,
                cmp.mean_kl, cmp.top1_agreement, err / n, rtn / n, r.report.calibration_seconds,
                r.report.solver_seconds, gflops);
    std::fflush(stdout);
  };
  for (const IntGridSpec spec : {IntGridSpec{4, 32, false}, IntGridSpec{4, 128, false}, IntGridSpec{3, 128, false}})
    for (auto method : {CalibrationMethod::Rtn, CalibrationMethod::Gptq, CalibrationMethod::Awq,
                        CalibrationMethod::AwqGptq}) {
      row(spec.describe(), method, uniform_int_grid(spec));
      if (method == CalibrationMethod::Gptq) row(spec.describe(), method, uniform_int_grid(spec), true);
    }
  for (QuantPreset preset : {QuantPreset::Q4_0, QuantPreset::Q4_K_M, QuantPreset::Q3_K_M}) {
    TypeSelectionOptions selection;
    selection.preset = preset;
    const TargetChooser choose = gguf_preset_targets(original, selection);
    for (auto method : {CalibrationMethod::Rtn, CalibrationMethod::Gptq})
      row(std::string(preset_info(preset).name), method, choose);
    row(std::string(preset_info(preset).name), CalibrationMethod::Gptq, choose, true);
  }
}

// CPU time of the whole process (all threads): on a shared machine wall time says little about the solver.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void solver_speed() {
  std::printf("\n### GPTQ solver alone (int4 g128, act-order, random weights, H from 2048 random rows)\n\n");
  std::printf("| rows x cols | wall s | CPU s | GFLOP/s (wall) | GFLOP per CPU-second |\n|---|---|---|---|---|\n");
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{768, 256}, {256, 768}, {2048, 1024}, {1024, 2048}}) {
    std::mt19937 rng(3);
    std::normal_distribution<float> normal;
    std::vector<float> w(static_cast<size_t>(rows * cols));
    for (float& v : w) v = normal(rng);
    RowMatrix x(2048, cols);
    for (int64_t i = 0; i < x.size(); ++i) x.data()[i] = normal(rng);
    InputStatistics stats(cols);
    stats.add(x);
    IntWeightGrid grid(rows, cols, {4, 128, false});
    GptqOptions options;
    options.act_order = true;
    GptqStats s;
    const Eigen::MatrixXd h = stats.hessian();
    const double cpu0 = cpu_seconds();
    gptq_quantize(w, h, grid, options, &s);
    const double cpu = cpu_seconds() - cpu0;
    std::printf("| %lld x %lld | %.3f | %.3f | %.2f | %.2f |\n", static_cast<long long>(rows),
                static_cast<long long>(cols), s.seconds, cpu, s.flops / s.seconds / 1e9, s.flops / cpu / 1e9);
  }
}

}  // namespace

int main(int argc, char** argv) {
  setup_logging(-1);
  if (argc > 1) set_thread_count(std::stoi(argv[1]));
  const std::string root = argc > 2 ? argv[2] : SLMOPT_SOURCE_DIR;
  std::printf("## slmopt calibrated quantization (%d threads)\n", thread_count());
  const std::string only = argc > 3 ? argv[3] : "";
  if (only.empty() || only == "kjv") run_model(root, "llama-5m-kjv", "kjv");
  if (only.empty() || only == "tinystories") run_model(root, "tinystories-656k", "tinystories");
  if (only.empty() || only == "solver") solver_speed();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("\npeak RSS: %.1f MiB\n", static_cast<double>(usage.ru_maxrss) / 1024.0);
  return 0;
}
