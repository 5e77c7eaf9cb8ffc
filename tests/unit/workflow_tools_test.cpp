// The workflow tools' library parts without the binary: the tool registry's tables, every stage option a recipe
// can reach (stages through `stages:`, quantize and compile through `targets:`), hand-checked sampling steps,
// and model patches that lie (impossible counts, copies outside OLD, trailing bytes) refused with nothing written.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "slmopt/core/error.h"
#include "slmopt/core/sha256.h"
#include "slmopt/exec/generate.h"
#include "slmopt/io/model_delta.h"
#include "slmopt/pipeline/plan.h"
#include "slmopt/pipeline/recipe.h"
#include "slmopt/pipeline/stage.h"
#include "slmopt/pipeline/tool.h"
#include "test_support.h"

namespace slmopt {
namespace {

namespace fs = std::filesystem;
using namespace pipeline;

TEST(ToolRegistry, ListsEveryToolOnceWithWellFormedOptions) {
  std::set<std::string> names;
  for (const auto& tool : tool_registry()) {
    EXPECT_TRUE(names.insert(tool.name).second) << tool.name;
    EXPECT_FALSE(tool.summary.empty()) << tool.name;
    EXPECT_EQ(find_stage(tool.name), nullptr) << tool.name << " is also a stage";
    std::set<std::string> options;
    for (const auto& o : tool.options) {
      EXPECT_TRUE(options.insert(o.name).second) << tool.name << ": " << o.name << " twice";
      EXPECT_FALSE(o.help.empty()) << tool.name << ": " << o.name;
      if (!o.positional()) {
        EXPECT_NE(o.flags.find("--" + o.name), std::string::npos) << o.flags;
      }
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"compare", "plan", "generate", "delta", "patch"}));
}

// A YAML scalar that passes the option's checks.
std::string valid_value(const OptionSpec& o, const std::string& existing_file) {
  if (!o.members.empty()) return o.members.front();
  if (o.check == OptionCheck::ExistingFile || o.check == OptionCheck::ExistingPath) return existing_file;
  switch (o.kind) {
    case OptionKind::Flag: return "true";
    case OptionKind::List: return "[x]";
    case OptionKind::Int:
    case OptionKind::Float:
      if (o.check == OptionCheck::Range) return std::to_string(static_cast<int64_t>(std::ceil(o.min)));
      return "1";
    case OptionKind::String: break;
  }
  return "x";
}

TEST(Recipe, EveryStageOptionIsReachableFromARecipe) {
  const std::string dir = slmopt::testing::scratch_dir("recipe_reachable");
  const std::string model = slmopt::testing::model_path("llama-5m-kjv");
  const std::string file = model + "/config.json";
  for (const auto& stage : stage_registry()) {
    for (const auto& o : stage.options) {
      if (o.scope == OptionScope::Cli) continue;
      const std::string entry = o.name + ": " + valid_value(o, file);
      std::string yaml = "model: " + model + "\noutput: out\n";
      if (stage.name == "quantize" || stage.name == "compile")
        yaml += "targets:\n  - {name: t, stage: " + stage.name + ", format: " +
                (o.name == "format" ? std::string("gguf") : stage.name == "quantize" ? "gguf, type: q8_0" : "onnx") +
                (o.name == "format" ? "" : ", " + entry) + "}\n";
      else
        yaml += "stages:\n  - " + stage.name + ": {" + entry + "}\ntargets:\n  - {name: t, format: gguf, type: q8_0}\n";
      const std::string path = dir + "/r.yaml";
      std::ofstream(path) << yaml;
      try {
        const Recipe r = parse_recipe(path, "");
        const RecipeStep& step = stage.name == "quantize" || stage.name == "compile" ? r.targets.at(0) : r.stages.at(0);
        EXPECT_TRUE(step.values.given(o.name)) << stage.name << ": " << o.name;
      } catch (const Error& e) {
        // Only the quantize cross-checks may refuse a lone key (an integer grid needs calibration, ...): the key
        // itself must have been accepted, so the message is not about the key.
        const std::string what = e.what();
        EXPECT_EQ(what.find("key '" + o.name + "'"), std::string::npos) << stage.name << ": " << what;
        EXPECT_EQ(what.find("unknown key"), std::string::npos) << stage.name << ": " << what;
      }
    }
  }
}

TEST(Sampling, TemperatureTopKAndTopPPickTheHandComputedTokens) {
  // Probabilities at temperature 1: exp(logit) normalised = {0.1, 0.2, 0.3, 0.4} (logits ln p).
  const std::vector<float> logits = {std::log(0.1f), std::log(0.2f), std::log(0.3f), std::log(0.4f)};
  SamplingOptions o;
  EXPECT_EQ(sample_token(logits, o, 0.99), 3);  // temperature 0: argmax whatever the draw
  o.temperature = 1;
  // Sorted by probability: 3 (0.4), 2 (0.3), 1 (0.2), 0 (0.1); cumulative 0.4, 0.7, 0.9, 1.0.
  EXPECT_EQ(sample_token(logits, o, 0.0), 3);
  EXPECT_EQ(sample_token(logits, o, 0.39), 3);
  EXPECT_EQ(sample_token(logits, o, 0.41), 2);
  EXPECT_EQ(sample_token(logits, o, 0.89), 1);
  EXPECT_EQ(sample_token(logits, o, 0.95), 0);
  o.top_k = 2;  // {3, 2} renormalised: 4/7, 3/7
  EXPECT_EQ(sample_token(logits, o, 0.56), 3);
  EXPECT_EQ(sample_token(logits, o, 0.58), 2);
  EXPECT_EQ(sample_token(logits, o, 0.9999), 2);
  o.top_k = 0;
  o.top_p = 0.65;  // the smallest prefix reaching 0.65: {3, 2}
  EXPECT_EQ(sample_token(logits, o, 0.9999), 2);
  o.top_p = 0.3;  // {3} alone
  EXPECT_EQ(sample_token(logits, o, 0.9999), 3);
  o.top_p = 1;
  o.temperature = 0.5;  // p ∝ p_i^2 = {0.01, 0.04, 0.09, 0.16} / 0.30: token 3 holds 0.5333
  EXPECT_EQ(sample_token(logits, o, 0.53), 3);
  EXPECT_EQ(sample_token(logits, o, 0.54), 2);
  // Ties go to the lower id, greedy or sampled.
  const std::vector<float> tie = {1.0f, 2.0f, 2.0f};
  EXPECT_EQ(sample_token(tie, SamplingOptions{}, 0.0), 1);
  o.temperature = 1;
  o.top_k = 1;
  EXPECT_EQ(sample_token(tie, o, 0.5), 1);
}

TEST(Plan, KvBytesFollowTheFormulaPerLayer) {
  Config c;
  c.num_layers = 3;
  c.num_kv_heads = 2;
  c.head_dim = 64;
  EXPECT_EQ(kv_cache_bytes(c, 256, 2), uint64_t{3} * 2 * 64 * 2 * 256 * 2);
  c.layer_num_kv_heads = {2, 1, 0};  // a pruned model: per-layer KV heads
  EXPECT_EQ(kv_cache_bytes(c, 10, 4), uint64_t{3} * 64 * 2 * 10 * 4);
}

// --- patches ------------------------------------------------------------------------------------------------

void put(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}

// A patch header for OLD = `old_bytes` and a NEW of `new_size` bytes with hash `new_hash`.
std::string header(const std::string& old_bytes, uint64_t new_size, const Sha256Digest& new_hash, uint64_t count) {
  std::string s(kPatchMagic, 8);
  put(s, kPatchVersion, 4);
  put(s, 0, 4);
  put(s, old_bytes.size(), 8);
  const Sha256Digest oh = sha256(old_bytes.data(), old_bytes.size());
  s.append(reinterpret_cast<const char*>(oh.data()), 32);
  put(s, new_size, 8);
  s.append(reinterpret_cast<const char*>(new_hash.data()), 32);
  put(s, count, 8);
  return s;
}

struct PatchCase {
  std::string dir, old_path, patch_path, out_path;
  explicit PatchCase(const std::string& name) : dir(slmopt::testing::scratch_dir(name)) {
    old_path = dir + "/old.bin";
    patch_path = dir + "/p.slmpatch";
    out_path = dir + "/new.bin";
    std::ofstream(old_path, std::ios::binary) << old_bytes();
    fs::remove(out_path);
  }
  static std::string old_bytes() { return "0123456789abcdef"; }
  std::string apply(const std::string& patch) const {
    std::ofstream(patch_path, std::ios::binary) << patch;
    try {
      apply_patch(old_path, patch_path, out_path);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what();
      EXPECT_FALSE(fs::exists(out_path)) << "an output was left behind";
      for (const auto& entry : fs::directory_iterator(dir))  // nor a temporary
        EXPECT_EQ(entry.path().filename().string().find("new.bin"), std::string::npos) << entry.path();
      return e.what();
    }
    return "(applied)";
  }
};

TEST(Patch, AppliesAWellFormedHandWrittenPatch) {
  PatchCase c("patch_ok");
  const std::string want = "89abXY";
  std::string p = header(PatchCase::old_bytes(), want.size(), sha256(want.data(), want.size()), 2);
  p.push_back(0);  // copy OLD[8, 12) = "89ab"
  put(p, 8, 8);
  put(p, 4, 8);
  const Sha256Digest h1 = sha256("89ab", 4);
  p.append(reinterpret_cast<const char*>(h1.data()), 32);
  p.push_back(1);  // carry "XY"
  put(p, 2, 8);
  const Sha256Digest h2 = sha256("XY", 2);
  p.append(reinterpret_cast<const char*>(h2.data()), 32);
  p += "XY";
  EXPECT_EQ(c.apply(p), "(applied)");
  std::ifstream in(c.out_path, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), want);
}

TEST(Patch, RefusesCountsAndLengthsThatDoNotFit) {
  PatchCase c("patch_bad");
  const Sha256Digest any = sha256("", 0);
  // A piece count that cannot fit in the bytes that follow: refused before anything is allocated.
  EXPECT_NE(c.apply(header(PatchCase::old_bytes(), 4, any, uint64_t{1} << 60)).find("piece count"), std::string::npos);
  // A copy beyond OLD's end (offset + length overflowing 64 bits, too).
  for (const uint64_t offset : {uint64_t{10}, ~uint64_t{0} - 2}) {
    std::string p = header(PatchCase::old_bytes(), 8, any, 1);
    p.push_back(0);
    put(p, offset, 8);
    put(p, 8, 8);
    p.append(32, '\0');
    EXPECT_NE(c.apply(p).find("outside OLD"), std::string::npos) << offset;
  }
  // A carried length longer than NEW, and one longer than the patch.
  std::string p = header(PatchCase::old_bytes(), 4, any, 1);
  p.push_back(1);
  put(p, ~uint64_t{0}, 8);
  p.append(32, '\0');
  EXPECT_NE(c.apply(p).find("runs past NEW"), std::string::npos);
  p = header(PatchCase::old_bytes(), 100, any, 1);
  p.push_back(1);
  put(p, 100, 8);
  p.append(32, '\0');
  p += "short";
  EXPECT_NE(c.apply(p).find("truncated patch"), std::string::npos);
  // An unknown piece kind, an unknown version, trailing bytes, pieces that make too few bytes.
  p = header(PatchCase::old_bytes(), 0, any, 1);
  p.push_back(7);
  p.append(40, '\0');
  EXPECT_NE(c.apply(p).find("unknown kind 7"), std::string::npos);
  p = header(PatchCase::old_bytes(), 0, any, 0);
  p[8] = 2;
  EXPECT_NE(c.apply(p).find("version 2"), std::string::npos);
  EXPECT_NE(c.apply(header(PatchCase::old_bytes(), 0, any, 0) + "x").find("unexpected bytes"), std::string::npos);
  EXPECT_NE(c.apply(header(PatchCase::old_bytes(), 3, any, 0)).find("make 0 bytes, NEW has 3"), std::string::npos);
  // NEW's hash is checked last: all pieces fine, the whole wrong.
  EXPECT_NE(c.apply(header(PatchCase::old_bytes(), 0, sha256("x", 1), 0)).find("rebuilt file's sha256"),
            std::string::npos);
  // Made from another OLD: of another size, or of the same size with other bytes.
  EXPECT_NE(c.apply(header("other", 0, any, 0)).find("OLD has 16 bytes"), std::string::npos);
  EXPECT_NE(c.apply(header("0123456789abcdeX", 0, any, 0)).find("OLD's sha256"), std::string::npos);
}

}  // namespace
}  // namespace slmopt
