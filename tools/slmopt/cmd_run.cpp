// slmopt run RECIPE.yaml [-o DIR] [--emit ninja|make] [--assemble] [--json]: a whole workflow from one recipe
// (pipeline/recipe.h). The driver only parses and forwards.
#include <filesystem>

#include "commands.h"
#include "slmopt/pipeline/recipe.h"

namespace slmopt::driver {

CommandSpec run_command() {
  return {"run", "Run a YAML recipe: stages, every target, manifest.json and a combined report (or emit a build file)",
          [](CLI::App& sub, const GlobalOptions&) -> std::function<void()> {
            auto o = std::make_shared<pipeline::RunOptions>();
            sub.add_option("RECIPE", o->recipe, "Recipe file (YAML; keys in README, section 'slmopt run')")->required();
            sub.add_option("-o,--output", o->output, "Output folder (overrides the recipe's 'output')");
            sub.add_option("--emit", o->emit,
                           "Write OUTPUT/build.ninja (ninja) or OUTPUT/Makefile (make) with one edge per stage and "
                           "target instead of running")
                ->check(CLI::IsMember({"ninja", "make"}));
            sub.add_flag("--assemble", o->assemble,
                         "Only hash the written targets and write manifest.json and report.{json,md} (the last edge "
                         "of an emitted build file)");
            sub.add_flag("--json", o->json, "Print the combined report as JSON on stdout");
            sub.footer("Exit code 6 when a target fails a gate (all artifacts, the manifest and the report are still "
                       "written). Same recipe and inputs give byte-identical artifacts and manifest at any -t.");
            return [o] {
              std::error_code ec;
              const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
              o->slmopt_path = ec ? std::string("slmopt") : self.string();
              pipeline::run_recipe(*o);
            };
          }};
}

}  // namespace slmopt::driver
