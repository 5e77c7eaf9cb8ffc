// random_model: the fixtures the family and scale tests stand on. They must be reproducible at any thread count,
// name-keyed (one tensor's values do not depend on which others exist), and have the documented scales.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/ir/decoder_tensors.h"
#include "slmopt/ir/random_weights.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

Config small_config() {
  Config c;
  c.architecture = "LlamaForCausalLM";
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 16;
  c.vocab_size = 100;
  c.max_position = 128;
  return c;
}

std::vector<float> values(const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  t.rows_to_f32(0, t.rank() == 1 ? 1 : t.dim(0), v.data());
  return v;
}

TEST(RandomWeights, SameBytesAtAnyThreadCount) {
  const Config c = small_config();
  set_thread_count(1);
  const Model one = random_model(c, DType::BF16, 7);
  set_thread_count(3);
  const Model three = random_model(c, DType::BF16, 7);
  set_thread_count(0);
  ASSERT_EQ(one.tensors().size(), decoder_tensors(c).size());
  for (const auto& [name, t] : one.tensors()) {
    const Tensor& u = three.tensor(name);
    ASSERT_EQ(t.nbytes(), u.nbytes()) << name;
    EXPECT_EQ(std::memcmp(t.data(), u.data(), t.nbytes()), 0) << name;
  }
}

TEST(RandomWeights, TensorsDependOnNameAndSeedOnly) {
  Config c = small_config();
  const Model a = random_model(c, DType::F32, 1);
  c.num_layers = 3;  // another shape elsewhere must not move layer 0's values
  const Model b = random_model(c, DType::F32, 1);
  const Model other_seed = random_model(small_config(), DType::F32, 2);
  const std::string q = names::q_proj(0);
  EXPECT_EQ(values(a.tensor(q)), values(b.tensor(q)));
  EXPECT_NE(values(a.tensor(q)), values(other_seed.tensor(q)));
  EXPECT_NE(values(a.tensor(q)), values(a.tensor(names::k_proj(0))));
}

TEST(RandomWeights, ScalesAreAsDocumented) {
  Config c = small_config();
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.head_dim = 64;
  const Model m = random_model(c, DType::F32, 3);
  auto moments = [](const std::vector<float>& v) {
    double sum = 0, sq = 0;
    for (float x : v) sum += x, sq += static_cast<double>(x) * x;
    const double mean = sum / v.size();
    return std::pair{mean, std::sqrt(sq / v.size() - mean * mean)};
  };
  const auto [wm, ws] = moments(values(m.tensor(names::down_proj(0))));  // in = 512
  EXPECT_NEAR(wm, 0.0, 0.002);
  EXPECT_NEAR(ws, 1.0 / std::sqrt(512.0), 0.002);
  const auto [em, es] = moments(values(m.tensor(names::kEmbedTokens)));
  EXPECT_NEAR(em, 0.0, 0.02);
  EXPECT_NEAR(es, 1.0, 0.02);
  const auto [nm, ns] = moments(values(m.tensor(names::attn_norm(1))));
  EXPECT_NEAR(nm, 1.0, 0.03);
  EXPECT_NEAR(ns, 0.1, 0.03);

  c.norm_unit_offset = true;  // (1 + w) norms: w centred on 0, the effective gain still near 1
  const auto [om, os] = moments(values(random_model(c, DType::F32, 3).tensor(names::attn_norm(1))));
  EXPECT_NEAR(om, 0.0, 0.03);
  EXPECT_NEAR(os, 0.1, 0.03);
}

TEST(RandomWeights, RefusesQuantizedTypes) {
  EXPECT_THROW(random_model(small_config(), DType::Q4_0, 0), Error);
}

}  // namespace
}  // namespace slmopt
