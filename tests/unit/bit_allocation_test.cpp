// Size-matched bit allocation (quant/bit_allocation.h) on a small random llama: the mix stays within llama.cpp's
// preset bytes, a tensor made sensitive on purpose gets more bits, and the result is the same at any thread count.
#include <gtest/gtest.h>

#include <iostream>
#include <random>

#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/quant/bit_allocation.h"
#include "slmopt/quant/importance.h"
#include "synthetic_llama.h"

namespace slmopt {
namespace {

double bpw(DType d) { return 8.0 * static_cast<double>(traits(d).block_bytes) / static_cast<double>(traits(d).block_size); }

std::vector<std::vector<int32_t>> random_windows(int64_t vocab, int count, int length) {
  std::mt19937 rng(7);
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(count));
  for (auto& w : out)
    for (int i = 0; i < length; ++i) w.push_back(static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab)));
  return out;
}

// Rows of 256 so the K-quants apply; two blocks and a small vocabulary keep the probes cheap.
Model small_model() { return testing::make_random_llama(testing::llama_config(256, 256, 2, 4, 2, 64, 256), 11); }

// The K-quants only: their encoders are fast (the i-quant codebook searches would take most of the test's time).
const std::vector<DType> kKQuants = {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

// Multiplies one tensor by `factor`: its output error (and the KL it causes) grows, its relative error does not.
Model scaled(const Model& m, const std::string& name, float factor) {
  Model out = m;
  const Tensor& t = m.tensor(name);
  std::vector<float> v = t.to_f32();
  for (float& x : v) x *= factor;
  out.set(Tensor::from_f32_as(name, t.shape(), v, t.dtype()));
  return out;
}

AllocationResult allocate(const Model& m, QuantPreset preset) {
  const auto windows = random_windows(m.config.vocab_size, 4, 48);
  const ImportanceMatrix imp = collect_importance(ModelRunner(m), windows);
  TypeSelectionOptions sel;
  sel.preset = preset;
  return allocate_to_size(m, sel, imp, windows, {4, Encoder::Fast, kKQuants});
}

const TensorAllocation& find(const AllocationResult& r, const std::string& name) {
  for (const auto& t : r.tensors)
    if (t.name == name) return t;
  throw std::runtime_error("no tensor " + name);
}

TEST(BitAllocation, StaysWithinBudgetAndGivesASensitiveTensorMoreBits) {
  const std::string target = "model.layers.1.mlp.down_proj.weight";
  const Model plain = small_model();
  const AllocationResult a = allocate(plain, QuantPreset::Q3_K_M);
  const AllocationResult b = allocate(scaled(plain, target, 6.0f), QuantPreset::Q3_K_M);
  for (const AllocationResult* r : {&a, &b}) {
    // The budget is llama.cpp's Q3_K_M mix, recomputed here from the tensors' shapes and types.
    TypeSelectionOptions llama;
    llama.preset = QuantPreset::Q3_K_M;
    llama.has_importance = true;
    llama.narrow_rows = NarrowRows::Llama;
    uint64_t budget = 0, chosen = 0;
    for (const auto& c : select_tensor_types(plain, llama))
      budget += (Tensor::bytes_for(plain.tensor(c.name).shape(), c.dtype) + 31) / 32 * 32;
    for (const auto& t : r->tensors) chosen += (Tensor::bytes_for(plain.tensor(t.name).shape(), t.chosen) + 31) / 32 * 32;
    EXPECT_EQ(r->budget_bytes, budget);
    EXPECT_EQ(r->chosen_bytes, chosen);
    EXPECT_LE(r->chosen_bytes, r->budget_bytes);
    EXPECT_GT(r->chosen_bytes, r->budget_bytes * 97 / 100);  // the budget is used, not left over
    EXPECT_LE(r->predicted_kl_chosen, r->predicted_kl_preset);
    EXPECT_EQ(r->probes, 16);  // 7 linears × 2 blocks, embedding, head: one probe each
    for (const auto& t : r->tensors) {
      if (t.fixed) continue;
      EXPECT_GT(t.probe_kl, 0) << t.name;
      bool listed = false;
      for (const auto& c : t.candidates) listed = listed || c.dtype == t.chosen;
      EXPECT_TRUE(listed) << t.name;
    }
  }
  const TensorAllocation& before = find(a, target);
  const TensorAllocation& after = find(b, target);
  std::cout << "[ allocate ] " << target << ": probe KL " << before.probe_kl << " -> " << after.probe_kl << ", type "
            << dtype_name(before.chosen) << " -> " << dtype_name(after.chosen) << "; bytes " << b.chosen_bytes << " of "
            << b.budget_bytes << "\n";
  EXPECT_GT(after.probe_kl, 4 * before.probe_kl);
  EXPECT_GT(bpw(after.chosen), bpw(before.chosen)) << dtype_name(before.chosen) << " -> " << dtype_name(after.chosen);
  // The bytes it gains come from the other tensors.
  uint64_t others_a = 0, others_b = 0;
  for (size_t i = 0; i < a.tensors.size(); ++i)
    if (a.tensors[i].name != target) {
      others_a += Tensor::bytes_for(plain.tensor(a.tensors[i].name).shape(), a.tensors[i].chosen);
      others_b += Tensor::bytes_for(plain.tensor(b.tensors[i].name).shape(), b.tensors[i].chosen);
    }
  EXPECT_LT(others_b, others_a);
  // The override list names exactly the reallocated tensors.
  EXPECT_EQ(b.overrides().size(), 16u);
}

TEST(BitAllocation, IdenticalAtOneAndTwoThreads) {
  const Model m = small_model();
  set_thread_count(1);
  const AllocationResult one = allocate(m, QuantPreset::Q4_K_M);
  set_thread_count(2);
  const AllocationResult two = allocate(m, QuantPreset::Q4_K_M);
  set_thread_count(0);
  ASSERT_EQ(one.tensors.size(), two.tensors.size());
  EXPECT_EQ(one.predicted_kl_chosen, two.predicted_kl_chosen);
  EXPECT_EQ(one.chosen_bytes, two.chosen_bytes);
  for (size_t i = 0; i < one.tensors.size(); ++i) {
    EXPECT_EQ(one.tensors[i].chosen, two.tensors[i].chosen) << one.tensors[i].name;
    EXPECT_EQ(one.tensors[i].probe_kl, two.tensors[i].probe_kl) << one.tensors[i].name;
  }
  EXPECT_LE(one.chosen_bytes, one.budget_bytes);
}

TEST(BitAllocation, UserOverridesStayAndFloatPresetsAreRefused) {
  const Model m = small_model();
  const auto windows = random_windows(m.config.vocab_size, 2, 32);
  const ImportanceMatrix imp = collect_importance(ModelRunner(m), windows);
  TypeSelectionOptions sel;
  sel.preset = QuantPreset::F16;
  EXPECT_THROW(allocate_to_size(m, sel, imp, windows), Error);
  sel.preset = QuantPreset::Q4_K_M;
  EXPECT_THROW(allocate_to_size(m, sel, imp, {}), Error);
  sel.overrides.push_back(parse_type_for("blk.*.attn_q.weight=q8_0"));
  const AllocationResult r = allocate_to_size(m, sel, imp, windows, {2, Encoder::Fast, kKQuants});
  for (const auto& t : r.tensors)
    if (t.name.find("q_proj") != std::string::npos) {
      EXPECT_TRUE(t.fixed);
      EXPECT_EQ(t.chosen, DType::Q8_0);
    }
  EXPECT_LE(r.chosen_bytes, r.budget_bytes);
}

}  // namespace
}  // namespace slmopt
