// Each family's test config (tests/families/<family>/config.json): a random-weight checkpoint written in the
// family's Hugging Face form, loaded back through its name table, run by ModelRunner, and compared with the
// independent double-precision reference of the decoder description (forward_reference.h). Sequences are longer
// than the configs' sliding windows (8) so local layers are exercised; a Phi-3.5 variant with a short
// original_max_position_embeddings exercises LongRoPE's switch to the long factors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "forward_reference.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/hf.h"
#include "slmopt/ir/decoder_tensors.h"
#include "test_support.h"

namespace slmopt {
namespace {

std::string family_config_path(const std::string& family) {
  return testing::source_dir() + "/tests/families/" + family + "/config.json";
}

// Every tensor the description implies, with deterministic values in [-0.5, 0.5) stored as BF16; norm weights
// near 1 (or near 0 for (1 + w) norms) so activations keep a useful scale through the layers.
Model random_model(const Config& config, uint32_t seed) {
  Model m;
  m.config = config;
  for (const ExpectedTensor& e : decoder_tensors(config)) {
    int64_t n = 1;
    for (int64_t d : e.shape) n *= d;
    const bool norm = e.name.find("norm") != std::string::npos && e.name.find("bias") == std::string::npos;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) {
      const float r = static_cast<float>((seed = seed * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
      x = norm ? (config.norm_unit_offset ? 0.2f * r : 1.0f + 0.2f * r) : r;
    }
    m.set(Tensor::from_f32_as(e.name, e.shape, v, DType::BF16));
  }
  m.validate();
  return m;
}

std::vector<int32_t> tokens_for(const Config& c, size_t n, uint32_t seed) {
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>((seed = seed * 1664525u + 1013904223u) >> 8) % static_cast<int32_t>(c.vocab_size);
  return t;
}

// |got − want| ≤ rel_tol · max|want| for every logit.
void expect_reference(const Model& model, size_t n, uint32_t seed) {
  const std::vector<int32_t> tokens = tokens_for(model.config, n, seed);
  const RowMatrix got = ModelRunner(model).logits(tokens);
  const testing::DoubleRows want = testing::reference_logits(model, tokens);
  double scale = 0, worst = 0;
  for (const auto& row : want)
    for (double v : row) scale = std::max(scale, std::abs(v));
  ASSERT_GT(scale, 1e-3);
  for (size_t t = 0; t < want.size(); ++t)
    for (size_t v = 0; v < want[t].size(); ++v)
      worst = std::max(worst, std::abs(static_cast<double>(got(static_cast<int64_t>(t), static_cast<int64_t>(v))) - want[t][v]));
  EXPECT_LE(worst, 1e-5 * scale) << "max |Δlogit| " << worst << " of max |logit| " << scale;
  ::testing::Test::RecordProperty("max_abs_dlogit", std::to_string(worst));
}

Model round_trip(const Config& config, const std::string& name, uint32_t seed) {
  const std::string dir = testing::scratch_dir("hf_forward_" + name) + "/m";
  write_hf_model(random_model(config, seed), dir);
  return load_hf_model(dir);
}

class HfFamilyForward : public ::testing::TestWithParam<std::string> {};

TEST_P(HfFamilyForward, LoadedCheckpointMatchesTheReference) {
  const std::string family = GetParam();
  const Config c = parse_hf_config(read_text_file(family_config_path(family)), family_config_path(family));
  expect_reference(round_trip(c, family, 7), 20, 11);
}

INSTANTIATE_TEST_SUITE_P(Families, HfFamilyForward,
                         ::testing::Values("phi2", "phi3-mini-4k", "phi3.5-mini", "phi4-mini", "qwen3", "gemma2",
                                           "gemma3-1b", "smollm2", "smollm3", "llama3.2", "granite3", "olmo2",
                                           "mistral", "gpt2"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           std::string s = param_info.param;
                           std::replace(s.begin(), s.end(), '.', '_');
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

// LongRoPE switches to the long factors once the sequence passes original_max_position_embeddings.
TEST(HfFamilyForwardLongRope, LongFactorsBeyondTheOriginalContext) {
  nlohmann::json j = nlohmann::json::parse(read_text_file(family_config_path("phi3.5-mini")));
  j["original_max_position_embeddings"] = 16;
  j["max_position_embeddings"] = 512;
  const Config c = parse_hf_config(j.dump(), "phi3.5-long/config.json");
  ASSERT_EQ(c.rope_scaling.original_max_position, 16);
  expect_reference(round_trip(c, "phi3_5_long", 9), 20, 12);
}

}  // namespace
}  // namespace slmopt
