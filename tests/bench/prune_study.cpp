// The pruning and distillation study: prints Markdown tables of evaluation perplexity for
//   1. structured pruning of llama-5m-kjv — 25 % and 50 % of the attention heads, 25 % and 50 % of the FFN
//      channels — chosen by each importance score (masked loss, activation norm, random), with and without the
//      least-squares refit;
//   2. one distillation run: a student with half the layers (0,2 of 4) before training, after training on the
//      teacher's top-k soft labels (KL + CE), and after the same number of steps of plain cross-entropy.
// Everything is seeded, so a rerun prints the same numbers (training: torch on CPU, same thread count).
//
// Protocols. Calibration (importance scores, refit): sample_calibration_windows over kjv-calib.txt, seed 1.
// Evaluation: evaluate_perplexity over make_eval_windows of kjv-eval.txt at ctx 256 (text/dataset.h).
// Heads are removed as query heads within GQA groups with per-layer counts chosen globally (CountPolicy::
// PerLayer; llama-5m-kjv has 2 query heads per KV group, so 25 % = one head per group in two of the four
// layers, 50 % = one head per group everywhere); plus 50 % as whole KV groups. FFN channels: the same count
// in every layer (what HF configs hold).
//
// Usage: prune_study [--model DIR] [--calib FILE] [--eval FILE] [--loss-windows N] [--calib-windows N]
//                    [--seqlen N] [--eval-windows N] [--no-prune] [--no-distill] [--steps N] [--batch N] [--lr X] [--work DIR] [--python PATH]
//                    [--methods loss,activation,random] [--ridge X]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/distill/recipe.h"
#include "slmopt/eval/perplexity.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/prune/importance.h"
#include "slmopt/prune/refit.h"
#include "slmopt/prune/structured.h"
#include "slmopt/text/dataset.h"
#include "slmopt/text/tokenizer.h"

namespace slmopt {
namespace {

struct Args {
  std::string source = SLMOPT_SOURCE_DIR;
  std::string model, calib, eval, work = "/tmp/slmopt_prune_study";
  std::string python = "/usr/bin/python3";  // Debian's python3-torch lives there
  int64_t loss_windows = 4, calib_windows = 32, seqlen = 128, eval_windows = 0, steps = 120, batch = 8;
  double lr = 2e-3;
  std::vector<std::string> methods{"loss", "activation", "random"};
  double ridge = RefitOptions{}.ridge;
  bool prune = true, distill = true;
};

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    out.push_back(text.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::optional<int32_t> bos_of(const Model& m) {
  if (m.vocab.add_bos && m.vocab.bos_id) return *m.vocab.bos_id;
  return std::nullopt;
}

void prune_tables(const Args& a, const Model& model, const std::vector<int32_t>& calib,
                  const std::vector<EvalWindow>& eval) {
  const ModelRunner original(model);
  const auto loss_windows = sample_calibration_windows(calib, a.loss_windows, a.seqlen, 1, bos_of(model));
  const auto calib_windows = sample_calibration_windows(calib, a.calib_windows, a.seqlen, 1, bos_of(model));
  const double base = evaluate_perplexity(original, eval).perplexity;
  fmt::print("\n## Structured pruning of {} ({} eval windows, {} tokens scored)\n\n", model.config.name, eval.size(),
             evaluate_perplexity(original, eval).tokens_scored);
  fmt::print("Unpruned perplexity: {:.3f}. Importance on {} calibration windows of {} tokens (masked loss) or {} "
             "(activation); refit on {} windows.\n\n",
             base, a.loss_windows, a.seqlen, a.calib_windows, a.calib_windows);

  std::map<std::string, ImportanceScores> scores;
  for (const auto& name : a.methods) {
    const auto method = parse_importance_method(name);
    if (!method) throw_error(ErrorKind::Usage, "unknown importance method '{}'", name);
    const auto t0 = std::chrono::steady_clock::now();
    const auto& windows = *method == ImportanceMethod::MaskedLoss ? loss_windows : calib_windows;
    scores[name] = compute_importance(original, windows, {*method, 1});
    fmt::print("- scores `{}`: {:.1f} s\n", name, seconds_since(t0));
    std::fflush(stdout);
  }

  struct Cut {
    std::string label;
    PruneSpec spec;
  };
  std::vector<Cut> cuts;
  {
    PruneSpec s;
    s.counts = CountPolicy::PerLayer;
    s.head_ratio = 0.25;
    cuts.push_back({"heads −25 % (query heads, per-layer)", s});
    s.head_ratio = 0.5;
    cuts.push_back({"heads −50 % (query heads)", s});
    PruneSpec g;
    g.head_unit = HeadUnit::KvGroups;
    g.head_ratio = 0.5;
    cuts.push_back({"heads −50 % (whole KV groups)", g});
    PruneSpec f;
    f.ffn_ratio = 0.25;
    cuts.push_back({"FFN −25 %", f});
    f.ffn_ratio = 0.5;
    cuts.push_back({"FFN −50 %", f});
  }
  fmt::print("\n| cut | params |");
  for (const auto& m : a.methods) fmt::print(" {} | {} + refit |", m, m);
  fmt::print("\n|---|---|");
  for (size_t i = 0; i < a.methods.size(); ++i) fmt::print("---|---|");
  fmt::print("\n");
  for (const auto& cut : cuts) {
    std::string row;
    int64_t params = 0;
    for (const auto& method : a.methods) {
      const PrunePlan plan = plan_pruning(model.config, scores.at(method), cut.spec);
      Model pruned = model;
      apply_prune_plan(pruned, plan);
      params = pruned.parameter_count();
      const double plain = evaluate_perplexity(ModelRunner(pruned), eval).perplexity;
      refit_pruned_model(original, pruned, plan, calib_windows, {a.ridge});
      const double refit = evaluate_perplexity(ModelRunner(pruned), eval).perplexity;
      row += fmt::format(" {:.2f} | {:.2f} |", plain, refit);
    }
    fmt::print("| {} | {:.2f} M |{}\n", cut.label, static_cast<double>(params) / 1e6, row);
    std::fflush(stdout);
  }
}

void distill_table(const Args& a, const Model& teacher, const std::vector<int32_t>& calib,
                   const std::vector<EvalWindow>& eval) {
  DistillExportOptions o;
  o.out_dir = a.work + "/export";
  o.teacher_path = a.model;
  o.student_layers = {0, 2};
  o.labels.ctx = 128;
  o.labels.top_k = 32;
  o.labels.corpus_path = a.calib;
  o.hyper.steps = a.steps;
  o.hyper.batch_windows = a.batch;
  o.hyper.learning_rate = a.lr;
  o.hyper.temperature = 2.0;
  o.hyper.kl_weight = 0.5;
  o.hyper.ce_weight = 0.5;
  auto t0 = std::chrono::steady_clock::now();
  const DistillExportResult r = distill_export(teacher, teacher, calib, o);
  const double export_s = seconds_since(t0);
  const double teacher_ppl = evaluate_perplexity(ModelRunner(teacher), eval).perplexity;
  const double student_ppl = evaluate_perplexity(ModelRunner(load_model(r.student_dir)), eval).perplexity;
  fmt::print("\n## Distillation: student = layers 0,2 of {} ({:.2f} M parameters)\n\n", teacher.config.name,
             static_cast<double>(r.student_parameters) / 1e6);
  fmt::print("Soft labels: {} windows of {} tokens from kjv-calib.txt, top-{} F32, {:.1f} s. Training: {} steps of "
             "{} windows, AdamW lr {} (warm-up + cosine), T = {}, loss = {}·T²·KL + {}·CE; torch CPU, 2 threads.\n\n",
             r.manifest.windows, r.manifest.ctx, r.manifest.top_k, export_s, a.steps, o.hyper.batch_windows,
             o.hyper.learning_rate, o.hyper.temperature, o.hyper.kl_weight, o.hyper.ce_weight);
  fmt::print("| model | eval perplexity | training time |\n|---|---|---|\n");
  fmt::print("| teacher (4 layers) | {:.2f} | |\n| student, layers 0,2, untrained | {:.2f} | |\n", teacher_ppl,
             student_ppl);
  for (const bool ce_only : {false, true}) {
    const std::string out = a.work + (ce_only ? "/student_ce" : "/student_kd");
    const std::string cmd = fmt::format("{} {}/scripts/distill_train.py {} {} --threads 2 --log-every 100{}", a.python,
                                        a.source, o.out_dir, out, ce_only ? " --ce-only" : "");
    t0 = std::chrono::steady_clock::now();
    if (std::system(cmd.c_str()) != 0) throw_error(ErrorKind::Internal, "training failed: {}", cmd);
    const double train_s = seconds_since(t0);
    const double ppl = evaluate_perplexity(ModelRunner(load_model(out)), eval).perplexity;
    fmt::print("| student after {} steps of {} | {:.2f} | {:.0f} s |\n", a.steps,
               ce_only ? "plain CE" : "KD (KL + CE)", ppl, train_s);
    std::fflush(stdout);
  }
}

int run(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw_error(ErrorKind::Usage, "{} needs a value", flag);
      return argv[++i];
    };
    if (flag == "--model") a.model = value();
    else if (flag == "--calib") a.calib = value();
    else if (flag == "--eval") a.eval = value();
    else if (flag == "--loss-windows") a.loss_windows = std::stoll(value());
    else if (flag == "--calib-windows") a.calib_windows = std::stoll(value());
    else if (flag == "--seqlen") a.seqlen = std::stoll(value());
    else if (flag == "--eval-windows") a.eval_windows = std::stoll(value());
    else if (flag == "--steps") a.steps = std::stoll(value());
    else if (flag == "--work") a.work = value();
    else if (flag == "--batch") a.batch = std::stoll(value());
    else if (flag == "--lr") a.lr = std::stod(value());
    else if (flag == "--python") a.python = value();
    else if (flag == "--methods") a.methods = split_commas(value());
    else if (flag == "--ridge") a.ridge = std::stod(value());
    else if (flag == "--no-prune") a.prune = false;
    else if (flag == "--no-distill") a.distill = false;
    else throw_error(ErrorKind::Usage, "unknown option {}", flag);
  }
  if (a.model.empty()) a.model = a.source + "/models/llama-5m-kjv";
  if (a.calib.empty()) a.calib = a.source + "/models/data/kjv-calib.txt";
  if (a.eval.empty()) a.eval = a.source + "/models/data/kjv-eval.txt";
  const Model model = load_model(a.model);
  const Tokenizer tokenizer(model.vocab);
  const auto calib = tokenize_file(tokenizer, a.calib);
  const auto eval_corpus = tokenize_file(tokenizer, a.eval);
  const auto eval = make_eval_windows(eval_corpus, std::min<int64_t>(model.config.max_position, 256), bos_of(model),
                                      a.eval_windows);
  fmt::print("# Pruning and distillation study\n\nModel {}, calibration {} ({} tokens), evaluation {} ({} tokens).\n",
             a.model, a.calib, calib.size(), a.eval, eval_corpus.size());
  if (a.prune) prune_tables(a, model, calib, eval);
  if (a.distill) distill_table(a, model, calib, eval);
  return 0;
}

}  // namespace
}  // namespace slmopt

int main(int argc, char** argv) {
  try {
    return slmopt::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prune_study: %s\n", e.what());
    return 1;
  }
}
