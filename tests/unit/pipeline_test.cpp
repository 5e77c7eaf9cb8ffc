// The pipeline layer without the binary: the stage registry's tables (every option named once, with help and a
// default of its declared type), option checks, recipe errors naming file, line and key, calibration injection,
// and the Pareto front.
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "slmopt/core/error.h"
#include "slmopt/pipeline/manifest.h"
#include "slmopt/pipeline/recipe.h"
#include "slmopt/pipeline/stage.h"
#include "test_support.h"

namespace slmopt::pipeline {
namespace {

TEST(StageRegistry, ListsEveryStageOnceWithWellFormedOptions) {
  std::set<std::string> names;
  for (const auto& stage : stage_registry()) {
    EXPECT_TRUE(names.insert(stage.name).second) << stage.name;
    EXPECT_FALSE(stage.summary.empty()) << stage.name;
    std::set<std::string> options;
    for (const auto& o : stage.options) {
      EXPECT_TRUE(options.insert(o.name).second) << stage.name << ": " << o.name << " twice";
      EXPECT_FALSE(o.help.empty()) << stage.name << ": " << o.name;
      // The recipe key is the long flag: what `--help` shows is what a recipe writes.
      if (!o.positional()) {
        EXPECT_NE(o.flags.find("--" + o.name), std::string::npos) << o.flags;
      }
      const OptionValues defaults(stage.options);
      switch (o.kind) {
        case OptionKind::String: EXPECT_NO_THROW(defaults.str(o.name)); break;
        case OptionKind::Int: EXPECT_NO_THROW(defaults.i64(o.name)); break;
        case OptionKind::Float: EXPECT_NO_THROW(defaults.f64(o.name)); break;
        case OptionKind::Flag: EXPECT_NO_THROW(defaults.flag(o.name)); break;
        case OptionKind::List: EXPECT_NO_THROW(defaults.list(o.name)); break;
      }
      if (!o.excludes.empty()) {
        EXPECT_NE(stage.find_option(o.excludes), nullptr) << o.excludes;
      }
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"quantize", "prune", "distill-export", "compile", "eval"}));
  // Stage-specific defaults come from the table: prune calibrates on 32 windows of 128 tokens, quantize on 128.
  EXPECT_EQ(OptionValues(find_stage("prune")->options).i64("calib-samples"), 32);
  EXPECT_EQ(OptionValues(find_stage("quantize")->options).i64("calib-samples"), 128);
  EXPECT_EQ(find_stage("prune")->invalidates, Invalidates::Weights);
  EXPECT_EQ(find_stage("quantize")->invalidates, Invalidates::Nothing);
}

TEST(OptionValues, WrongTypeOrUnknownNameIsAnInternalError) {
  const OptionValues v(find_stage("quantize")->options);
  EXPECT_EQ(v.str("type"), "q4_k_m");
  EXPECT_EQ(v.i64("group-size"), 128);
  try {
    (void)v.i64("type");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Internal);
  }
  EXPECT_THROW((void)v.str("no-such-option"), Error);
}

TEST(OptionChecks, RangeAndSignAndMembers) {
  const OptionSpec ratio = float_option("ffn-ratio", 0, "x").with_check(OptionCheck::Range, 0, 1);
  EXPECT_NO_THROW(check_option_value(ratio, 0.5, "here"));
  try {
    check_option_value(ratio, 1.5, "r.yaml:3: key 'ffn-ratio'");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_STREQ(e.what(), "r.yaml:3: key 'ffn-ratio': 1.5 is outside [0, 1]");
  }
  EXPECT_THROW(check_option_value(int_option("block", 1, "x").with_check(OptionCheck::Positive), int64_t{0}, "w"), Error);
  EXPECT_THROW(check_option_value(int_option("b", 32, "x").with_members({"16", "32"}), int64_t{48}, "w"), Error);
  EXPECT_NO_THROW(check_option_value(int_option("b", 32, "x").with_members({"16", "32"}), int64_t{16}, "w"));
}

TEST(ParetoFront, KeepsTheUndominatedSizeKlPairs) {
  // (bytes, KL): a is smallest, c most accurate, b dominated by a, d has no KL.
  const auto front = pareto_front({1.0, 2.0, 3.0, 0.5}, {0.3, 0.4, 0.1, std::nullopt});
  EXPECT_EQ(front, (std::vector<bool>{true, false, true, false}));
  // Equal points do not dominate each other.
  EXPECT_EQ(pareto_front({1, 1}, {0.2, 0.2}), (std::vector<bool>{true, true}));
}

std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::string recipe_error(const std::string& text) {
  const std::string dir = slmopt::testing::scratch_dir("pipeline_recipe");
  const std::string path = write_file(dir, "r.yaml", text);
  try {
    parse_recipe(path, dir + "/out");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    return e.what();
  }
  return "(no error)";
}

TEST(Recipe, ErrorsNameFileLineAndKey) {
  const std::string model = slmopt::testing::model_path("llama-5m-kjv");
  const std::string head = "model: " + model + "\n";
  const std::string target = "targets:\n  - {name: a, format: gguf, type: q8_0}\n";
  EXPECT_NE(recipe_error(head + "modle: x\n" + target).find("r.yaml:2: unknown key 'modle'"), std::string::npos);
  EXPECT_NE(recipe_error(head + "targets:\n  - {name: a, format: gguf, type: q8_0,\n     block: many}\n")
                .find("r.yaml:4: key 'block': expected integer, got 'many'"),
            std::string::npos);
  EXPECT_NE(recipe_error(head + "stages:\n  - prune: {ffn-ratio: -0.5}\n" + target)
                .find("r.yaml:3: key 'ffn-ratio': -0.5 is outside [0, 1]"),
            std::string::npos);
  EXPECT_NE(recipe_error(head + target + "gates: {max-kl: 0.1}\n").find("need an evaluation section"),
            std::string::npos);
  EXPECT_NE(recipe_error(head + "targets:\n  - {name: a, format: onnx, type: int4, method: gptq}\n").find("needs a calibration"),
            std::string::npos);
  EXPECT_NE(recipe_error(head + target + "  - {name: a, format: gguf, type: q4_0}\n").find("'a' is used twice"),
            std::string::npos);
}

TEST(Recipe, SectionsFillStagesAndTargetsUnlessTheySetTheKey) {
  const std::string dir = slmopt::testing::scratch_dir("pipeline_recipe_ok");
  const std::string calib = slmopt::testing::data_path("kjv-calib.txt");
  const std::string path = write_file(dir, "r.yaml",
      "model: " + slmopt::testing::model_path("llama-5m-kjv") + "\noutput: out\n"
      "calibration: {text: " + calib + ", samples: 4, seqlen: 64}\n"
      "evaluation: {text: " + calib + ", ctx: 32}\n"
      "stages:\n  - prune: {ffn-ratio: 0.25, calib-samples: 8}\n"
      "targets:\n  - {name: g, format: gguf, type: q4_k_m, method: gptq}\n"
      "  - {name: h, format: hf, type: int4, method: gptq, group-size: 32, type-for: [a=q8_0]}\n");
  const Recipe r = parse_recipe(path, "");
  EXPECT_EQ(r.output, (std::filesystem::path(dir) / "out").lexically_normal().string());
  ASSERT_EQ(r.stages.size(), 1u);
  EXPECT_EQ(r.stages[0].name, "1-prune");
  EXPECT_EQ(r.stages[0].values.i64("calib-samples"), 8);  // the stage's own key wins
  EXPECT_EQ(r.stages[0].values.i64("calib-seqlen"), 64);
  EXPECT_EQ(r.stages[0].values.str("eval"), "");           // stages are not evaluated, targets are
  ASSERT_EQ(r.targets.size(), 2u);
  EXPECT_EQ(r.targets[0].values.i64("calib-samples"), 4);
  EXPECT_EQ(r.targets[0].values.str("eval"), calib);
  EXPECT_EQ(r.targets[0].values.i64("ctx"), 32);
  EXPECT_EQ(r.targets[1].values.list("type-for"), std::vector<std::string>{"a=q8_0"});
  EXPECT_EQ(r.artifact_path(r.targets[0]), r.output + "/g.gguf");
  EXPECT_EQ(r.artifact_path(r.targets[1]), r.output + "/h");
  EXPECT_EQ(r.targets[1].values.str("output"), r.output + "/h");
  EXPECT_EQ(r.sha256.size(), 64u);
}

}  // namespace
}  // namespace slmopt::pipeline
