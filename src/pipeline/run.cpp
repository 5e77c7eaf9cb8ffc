// `slmopt run RECIPE`: load the model once, run the recipe's stages in order on it, write every target from the
// result (calibration windows, importance matrices and GPTQ/AWQ results shared through the context), then hash
// everything into manifest.json and the combined report. With --emit, write a ninja or make file whose edges are
// the equivalent single-stage slmopt command lines instead (emit.cpp).
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "emit.h"
#include "slmopt/core/error.h"
#include "slmopt/core/log.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/pipeline/manifest.h"
#include "slmopt/pipeline/recipe.h"
#include "slmopt/pipeline/stage.h"
#include "slmopt/pipeline/stage_report.h"

namespace slmopt::pipeline {
namespace {

void print_summary(const AssembleResult& result, const Recipe& recipe) {
  std::printf("%-20s %-5s %-8s %-6s %10s %8s %10s %9s %9s %7s  %s\n", "target", "fmt", "type", "method", "bytes",
              "bits/w", "ppl", "d-ppl %", "mean KL", "top-1", "");
  for (const auto& t : result.report["targets"]) {
    const auto num = [&](const char* key, const char* format) {
      return t[key].is_number() ? fmt::format(fmt::runtime(format), t[key].get<double>()) : std::string("-");
    };
    std::printf("%-20s %-5s %-8s %-6s %10.0f %8.3f %10s %9s %9s %7s  %s%s\n", t["name"].get<std::string>().c_str(),
                t["format"].get<std::string>().c_str(), t["type"].get<std::string>().c_str(),
                t["method"].get<std::string>().c_str(), t["bytes"].get<double>(), t["bits_per_weight"].get<double>(),
                num("perplexity", "{:.4f}").c_str(), num("ppl_increase_percent", "{:+.2f}").c_str(),
                num("mean_kl", "{:.5f}").c_str(),
                t["top1_agreement"].is_number()
                    ? fmt::format("{:.2f}%", 100 * t["top1_agreement"].get<double>()).c_str()
                    : "-",
                t["pareto"].get<bool>() ? "front " : "", t["passed"].get<bool>() ? "" : "FAILED");
  }
  const std::filesystem::path dir(recipe.output);
  std::printf("manifest %s, report %s, %s\n", (dir / "manifest.json").c_str(), (dir / "report.json").c_str(),
              (dir / "report.md").c_str());
}

}  // namespace

void run_recipe(const RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const Recipe recipe = parse_recipe(options.recipe, options.output);
  if (!options.emit.empty()) {
    const std::string path = write_build_file(recipe, options);
    if (!options.json) std::printf("wrote %s\n", path.c_str());
    return;
  }

  nlohmann::json run_info = nlohmann::json::object();
  if (!options.assemble) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(recipe.output) / "reports", ec);
    if (ec) throw_error(ErrorKind::Io, "{}: cannot create the output folder ({})", recipe.output, ec.message());
    const auto load_start = std::chrono::steady_clock::now();
    Model checkpoint = load_model(recipe.model);
    checkpoint.validate();
    PipelineContext ctx(std::move(checkpoint));
    ctx.in_recipe = true;
    nlohmann::json seconds = {{"load", seconds_since(load_start)}};
    for (const auto& step : recipe.stages) {
      const auto t = std::chrono::steady_clock::now();
      spdlog::info("stage {}", step.name);
      find_stage(step.stage)->run(ctx, step.values);
      seconds[step.name] = seconds_since(t);
    }
    for (const auto& target : recipe.targets) {
      const auto t = std::chrono::steady_clock::now();
      spdlog::info("target {} -> {}", target.name, recipe.artifact_path(target));
      find_stage(target.stage)->run(ctx, target.values);
      seconds[target.name] = seconds_since(t);
    }
    seconds["total"] = seconds_since(start);
    // How often the shared calibration data was computed: once per distinct set of options and weights.
    run_info = {{"seconds", seconds},
                {"calibration_window_sets", ctx.calibration_runs},
                {"importance_matrices", ctx.importance_runs},
                {"gptq_awq_runs", ctx.gptq_runs}};
  }
  const AssembleResult result = assemble_outputs(recipe, run_info);
  if (options.json) print_json(result.report);
  else print_summary(result, recipe);
  if (!result.failed.empty())
    throw_error(ErrorKind::Gate, "gate failed: {} (artifacts, manifest and report were written)",
                fmt::join(result.failed, "; "));
}

}  // namespace slmopt::pipeline
