// The GGUF registry on every family's description (synthetic_families.h): each model is written in the form
// llama.cpp's graph for its architecture loads (names, keys, layout transforms checked against llama.cpp's
// sources here, by value) and reads back to the same description and the same tensors — bit for bit for F32,
// except Gemma's norms, which GGUF stores as 1 + w (the subtraction back is exact, the addition rounds once:
// |Δ| ≤ 2⁻²⁴). Descriptions llama.cpp's graph would compute differently are refused, naming what differs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/gguf_format.h"
#include "slmopt/ir/tensor_names.h"
#include "synthetic_families.h"
#include "test_support.h"

namespace slmopt {
namespace {

using testing::FamilyCase;

bool near(double a, double b) { return std::abs(a - b) <= 1e-6 * std::max({1.0, std::abs(a), std::abs(b)}); }

// The description as the forward pass reads it (GGUF holds floats as f32, and some fields have equivalent
// spellings, e.g. an empty per-layer list and one with every layer set).
void expect_same_description(const Config& a, const Config& b) {
  EXPECT_EQ(a.family, b.family);
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.max_position, b.max_position);
  for (int64_t l = 0; l < a.num_layers; ++l) {
    EXPECT_EQ(a.heads(l), b.heads(l)) << l;
    EXPECT_EQ(a.kv_heads(l), b.kv_heads(l)) << l;
    EXPECT_EQ(a.ffn(l), b.ffn(l)) << l;
    EXPECT_EQ(a.layer_is_sliding(l), b.layer_is_sliding(l)) << l;
    EXPECT_EQ(a.layer_uses_rope(l), b.layer_uses_rope(l)) << l;
    EXPECT_TRUE(near(a.layer_rope_theta(l), b.layer_rope_theta(l))) << l;
    EXPECT_EQ(a.layer_rope_scaled(l), b.layer_rope_scaled(l)) << l;
  }
  EXPECT_TRUE(near(a.norm_eps, b.norm_eps)) << a.norm_eps << " " << b.norm_eps;
  EXPECT_TRUE(near(a.rope_theta, b.rope_theta));
  EXPECT_EQ(a.rope_scaling.type, b.rope_scaling.type);
  if (a.rope_scaling.type != RopeScalingType::None) {
    EXPECT_TRUE(near(a.rope_scaling.factor, b.rope_scaling.factor));
  }
  if (a.rope_scaling.type == RopeScalingType::Llama3 || a.rope_scaling.type == RopeScalingType::LongRope) {
    EXPECT_EQ(a.rope_scaling.original_max_position, b.rope_scaling.original_max_position);
  }
  if (a.rope_scaling.type == RopeScalingType::Llama3) {
    EXPECT_TRUE(near(a.rope_scaling.low_freq_factor, b.rope_scaling.low_freq_factor));
    EXPECT_TRUE(near(a.rope_scaling.high_freq_factor, b.rope_scaling.high_freq_factor));
  }
  if (a.rope_scaling.type == RopeScalingType::LongRope) {
    EXPECT_TRUE(near(a.rope_scaling.attention_factor, b.rope_scaling.attention_factor));
    ASSERT_EQ(a.rope_scaling.short_factor.size(), b.rope_scaling.short_factor.size());
    ASSERT_EQ(a.rope_scaling.long_factor.size(), b.rope_scaling.long_factor.size());
    for (size_t i = 0; i < a.rope_scaling.short_factor.size(); ++i) {
      EXPECT_TRUE(near(a.rope_scaling.short_factor[i], b.rope_scaling.short_factor[i])) << i;
      EXPECT_TRUE(near(a.rope_scaling.long_factor[i], b.rope_scaling.long_factor[i])) << i;
    }
  }
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.attention_out_bias, b.attention_out_bias);
  EXPECT_EQ(a.mlp_bias, b.mlp_bias);
  EXPECT_EQ(a.norm_kind, b.norm_kind);
  EXPECT_EQ(a.norm_bias, b.norm_bias);
  EXPECT_EQ(a.norm_unit_offset, b.norm_unit_offset);
  EXPECT_EQ(a.norm_placement, b.norm_placement);
  EXPECT_EQ(a.residual_layout, b.residual_layout);
  EXPECT_EQ(a.mlp_kind, b.mlp_kind);
  EXPECT_EQ(a.qk_norm, b.qk_norm);
  EXPECT_EQ(a.position_kind, b.position_kind);
  EXPECT_EQ(a.rotary_dims(), b.rotary_dims());
  EXPECT_TRUE(near(a.attention_scale(), b.attention_scale())) << a.attention_scale() << " " << b.attention_scale();
  EXPECT_TRUE(near(a.attn_softcap, b.attn_softcap));
  EXPECT_TRUE(near(a.final_logit_softcap, b.final_logit_softcap));
  EXPECT_EQ(a.sliding_window > 0, b.sliding_window > 0);
  if (a.sliding_window > 0) {
    EXPECT_EQ(a.sliding_window, b.sliding_window);
  }
  EXPECT_TRUE(near(a.embedding_scale, b.embedding_scale));
  EXPECT_TRUE(near(a.residual_scale, b.residual_scale));
  EXPECT_TRUE(near(a.logit_scale, b.logit_scale));
  EXPECT_EQ(a.lm_head_bias, b.lm_head_bias);
}

bool is_norm(const std::string& name) {
  return name.size() > 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0;
}

void expect_same_tensors(const Model& a, const Model& b) {
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& [name, t] : a.tensors()) {
    const Tensor* u = b.find(name);
    ASSERT_NE(u, nullptr) << name;
    ASSERT_EQ(t.shape(), u->shape()) << name;
    ASSERT_EQ(t.dtype(), u->dtype()) << name;
    if (a.config.norm_unit_offset && is_norm(name)) {
      const std::vector<float> x = t.to_f32(), y = u->to_f32();
      for (size_t i = 0; i < x.size(); ++i) EXPECT_LE(std::abs(x[i] - y[i]), std::ldexp(1.0, -24)) << name << "[" << i << "]";
    } else {
      EXPECT_EQ(std::memcmp(t.data(), u->data(), t.nbytes()), 0) << name << " differs";
    }
  }
}

class GgufFamilies : public ::testing::TestWithParam<FamilyCase> {};

TEST_P(GgufFamilies, WritesLlamaCppsArchitectureAndReadsBackTheSameModel) {
  const FamilyCase fc = GetParam();
  const Model model = random_model(fc.config(), DType::F32, 5);
  const std::string path = testing::scratch_dir(std::string("gguf_families_") + fc.name) + "/m.gguf";
  write_gguf(model, path);

  const GgufFile file = GgufFile::open(path);
  EXPECT_EQ(file.require_string("general.architecture"), fc.gguf_architecture);
  const std::string a = fc.gguf_architecture;
  EXPECT_EQ(file.require_int(a + ".block_count"), model.config.num_layers);
  EXPECT_EQ(file.require_int(a + ".embedding_length"), 256);
  // The tokenizer-less model carries the placeholder token list llama.cpp needs to size its vocabulary.
  EXPECT_EQ(file.get_array("tokenizer.ggml.tokens", GgufType::String)->size(), 320u);

  const Model back = load_gguf(path);
  expect_same_description(model.config, back.config);
  expect_same_tensors(model, back);
  EXPECT_EQ(back.vocab.kind, VocabKind::None);

  // Written again from the model read back: the same bytes.
  write_gguf(back, path + ".again");
  EXPECT_EQ(read_text_file(path), read_text_file(path + ".again"));
}

INSTANTIATE_TEST_SUITE_P(Synthetic, GgufFamilies, ::testing::ValuesIn(testing::family_cases()),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

// Facts from llama.cpp's sources, per family, on the files slmopt writes.
TEST(GgufFamilies, Phi3StoresGateAndUpAsOneFfnUpAndLongRopeAsFactorTensors) {
  const Model model = random_model(testing::phi3_config(), DType::F32, 1);
  const std::string path = testing::scratch_dir("gguf_families_phi3_layout") + "/m.gguf";
  write_gguf(model, path);
  const GgufFile file = GgufFile::open(path);
  const GgufTensorInfo* up = file.find_tensor("blk.0.ffn_up.weight");
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->shape, (std::vector<int64_t>{1024, 256}));  // [gate; up] rows
  EXPECT_EQ(file.find_tensor("blk.0.ffn_gate.weight"), nullptr);
  const std::vector<float> fused = file.view(*up).to_f32();
  const std::vector<float> gate = model.tensor(names::gate_proj(0)).to_f32();
  const std::vector<float> up_rows = model.tensor(names::up_proj(0)).to_f32();
  EXPECT_TRUE(std::equal(gate.begin(), gate.end(), fused.begin()));
  EXPECT_TRUE(std::equal(up_rows.begin(), up_rows.end(), fused.begin() + static_cast<std::ptrdiff_t>(gate.size())));
  EXPECT_EQ(file.find_tensor("rope_factors_long.weight")->shape, (std::vector<int64_t>{24}));
  EXPECT_EQ(file.find_tensor("rope_factors_short.weight")->shape, (std::vector<int64_t>{24}));
  EXPECT_EQ(file.require_string("phi3.rope.scaling.type"), "longrope");
  EXPECT_EQ(file.require_int("phi3.rope.scaling.original_context_length"), 2048);
  EXPECT_EQ(file.require_int("phi3.rope.dimension_count"), 48);
  EXPECT_NEAR(file.require_float("phi3.rope.scaling.attn_factor"), std::sqrt(1.0 + std::log(8.0) / std::log(2048.0)), 1e-6);
}

TEST(GgufFamilies, GemmaStoresOnePlusWAndThePerLayerWindowPattern) {
  const Model model = random_model(testing::gemma3_config(), DType::F32, 2);
  const std::string path = testing::scratch_dir("gguf_families_gemma3_layout") + "/m.gguf";
  write_gguf(model, path);
  const GgufFile file = GgufFile::open(path);
  for (const auto& [canonical, gguf] : std::vector<std::pair<std::string, std::string>>{
           {names::attn_norm(1), "blk.1.attn_norm.weight"}, {names::q_norm(0), "blk.0.attn_q_norm.weight"},
           {names::attn_post_norm(2), "blk.2.post_attention_norm.weight"},
           {names::ffn_post_norm(5), "blk.5.post_ffw_norm.weight"}, {names::kFinalNorm, "output_norm.weight"}}) {
    const std::vector<float> w = model.tensor(canonical).to_f32();
    const std::vector<float> stored = file.view(*file.find_tensor(gguf)).to_f32();
    ASSERT_EQ(w.size(), stored.size()) << gguf;
    for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(stored[i], 1.0f + w[i]) << gguf << "[" << i << "]";
  }
  EXPECT_EQ(file.require_int("gemma3.attention.sliding_window"), 16);
  const auto* pattern = file.get_array("gemma3.attention.sliding_window_pattern", GgufType::Bool);
  ASSERT_NE(pattern, nullptr);
  std::vector<bool> local;
  for (const auto& v : *pattern) local.push_back(*v.to_bool());
  EXPECT_EQ(local, (std::vector<bool>{true, true, true, true, true, false}));
  EXPECT_NEAR(file.require_float("gemma3.rope.freq_base_swa"), 10000.0, 1e-3);
  EXPECT_NEAR(file.require_float("gemma3.rope.freq_base"), 1000000.0, 1e-1);
  EXPECT_EQ(file.require_string("gemma3.rope.scaling.type"), "linear");
  EXPECT_EQ(file.require_int("gemma3.attention.key_length"), 32);
  EXPECT_EQ(file.find_tensor("output.weight"), nullptr);
}

TEST(GgufFamilies, NormalRopeArchitecturesRegroupQkRowsAndNeoxOnesKeepThem) {
  for (const auto& [config, regrouped] : {std::pair{testing::smollm3_config(), true}, {testing::granite_config(), true},
                                          {testing::qwen3_config(), false}, {testing::olmo2_config(), false}}) {
    const Model model = random_model(config, DType::F32, 3);
    const std::string path = testing::scratch_dir("gguf_families_rows") + "/m.gguf";
    write_gguf(model, path);
    const GgufFile file = GgufFile::open(path);
    const std::vector<float> q = model.tensor(names::q_proj(0)).to_f32();
    const std::vector<float> stored = file.view(*file.find_tensor("blk.0.attn_q.weight")).to_f32();
    // Row 1 of head 0 in llama.cpp's order is Hugging Face's row head_dim/2 (the pair partner of row 0).
    const size_t in = 256, hf_row = regrouped ? 32 : 1;
    EXPECT_TRUE(std::equal(stored.begin() + in, stored.begin() + 2 * in, q.begin() + static_cast<std::ptrdiff_t>(hf_row * in)))
        << config.family;
  }
}

TEST(GgufFamilies, MultipliersSoftCapsAndRequiredHeadsUseLlamaCppsKeys) {
  {
    const Model model = random_model(testing::granite_config(), DType::F32, 4);
    const std::string path = testing::scratch_dir("gguf_families_granite_keys") + "/m.gguf";
    write_gguf(model, path);
    const GgufFile file = GgufFile::open(path);
    EXPECT_NEAR(file.require_float("granite.logit_scale"), 8.0, 1e-6);  // logits are divided by it
    EXPECT_NEAR(file.require_float("granite.embedding_scale"), 12.0, 1e-6);
    EXPECT_NEAR(file.require_float("granite.residual_scale"), 0.22, 1e-6);
    EXPECT_NEAR(file.require_float("granite.attention.scale"), 0.015625, 1e-9);
  }
  {
    const Model model = random_model(testing::gemma2_config(), DType::F32, 4);
    const std::string path = testing::scratch_dir("gguf_families_gemma2_keys") + "/m.gguf";
    write_gguf(model, path);
    const GgufFile file = GgufFile::open(path);
    EXPECT_NEAR(file.require_float("gemma2.attn_logit_softcapping"), 50.0, 1e-6);
    EXPECT_NEAR(file.require_float("gemma2.final_logit_softcapping"), 30.0, 1e-6);
    EXPECT_EQ(file.get_array("gemma2.attention.sliding_window_pattern", GgufType::Bool)->size(), 4u);
  }
  {
    // OLMo-2's loader requires output.weight: a tied model gets a copy, and reads back tied.
    Config config = testing::olmo2_config();
    config.tie_word_embeddings = true;
    const Model model = random_model(config, DType::F32, 4);
    const std::string path = testing::scratch_dir("gguf_families_olmo2_tied") + "/m.gguf";
    write_gguf(model, path);
    const GgufFile file = GgufFile::open(path);
    ASSERT_NE(file.find_tensor("output.weight"), nullptr);
    EXPECT_TRUE(load_gguf(path).config.tie_word_embeddings);
  }
  {
    const Model model = random_model(testing::phi2_config(), DType::F32, 4);
    const std::string path = testing::scratch_dir("gguf_families_phi2_keys") + "/m.gguf";
    write_gguf(model, path);
    const GgufFile file = GgufFile::open(path);
    EXPECT_TRUE(file.metadata().has("phi2.attention.layer_norm_epsilon"));
    EXPECT_EQ(file.require_int("phi2.rope.dimension_count"), 32);
    for (const char* name : {"output.bias", "output_norm.bias", "blk.1.attn_norm.bias", "blk.0.ffn_up.bias"})
      EXPECT_NE(file.find_tensor(name), nullptr) << name;
    EXPECT_EQ(file.find_tensor("blk.0.ffn_norm.weight"), nullptr);  // one norm feeds both branches
  }
}

TEST(GgufFamilies, LlamaShapedModelsTheirGraphCannotSizeGoOutAsDeci) {
  // A uniform head cut leaves heads × head_dim < hidden, which qwen2's attn_output {hidden, hidden} cannot hold.
  Config config = testing::qwen2_config();
  config.head_dim = 32;
  const Model model = random_model(config, DType::F32, 8);
  const std::string path = testing::scratch_dir("gguf_families_deci") + "/m.gguf";
  write_gguf(model, path);
  EXPECT_EQ(GgufFile::open(path).require_string("general.architecture"), "deci");
  const Model back = load_gguf(path);
  expect_same_description(model.config, back.config);
  expect_same_tensors(model, back);
}

// convert_hf_to_gguf.py keeps Phi-3's qkv_proj fused (blk.N.attn_qkv), which llama.cpp's loader accepts for every
// architecture: the reader splits it back into q/k/v.
TEST(GgufFamilies, ReaderSplitsAConvertersFusedAttnQkv) {
  const Model model = random_model(testing::phi3_config(), DType::F32, 9);
  const std::string dir = testing::scratch_dir("gguf_families_fused_qkv");
  write_gguf(model, dir + "/split.gguf");
  const GgufFile split = GgufFile::open(dir + "/split.gguf");
  std::vector<GgufTensorPlan> plans;
  std::vector<Tensor> tensors;
  for (const auto& info : split.tensors()) {
    const std::string& n = info.name;
    if (n.find(".attn_k.") != std::string::npos || n.find(".attn_v.") != std::string::npos) continue;
    Tensor t = split.view(info);
    if (n.find(".attn_q.") != std::string::npos) {
      const std::string blk = n.substr(0, n.find("attn_q."));
      t = Tensor::from_f32(blk + "attn_qkv.weight", {512, 256}, [&] {
        std::vector<float> rows;
        for (const char* part : {"attn_q.weight", "attn_k.weight", "attn_v.weight"}) {
          const std::vector<float> v = split.view(blk + part).to_f32();
          rows.insert(rows.end(), v.begin(), v.end());
        }
        return rows;
      }());
    }
    plans.push_back({t.name(), t.shape(), t.dtype()});
    tensors.push_back(std::move(t));
  }
  write_gguf_file(dir + "/fused.gguf", split.metadata(), plans, [&](size_t i) { return tensors[i]; });
  ASSERT_NE(GgufFile::open(dir + "/fused.gguf").find_tensor("blk.1.attn_qkv.weight"), nullptr);
  const Model back = load_gguf(dir + "/fused.gguf");
  expect_same_description(model.config, back.config);
  expect_same_tensors(model, back);
}

void expect_refused(Config config, const std::string& needle) {
  const Model model = random_model(config, DType::F32, 6);
  const std::string path = testing::scratch_dir("gguf_families_refused") + "/m.gguf";
  try {
    write_gguf(model, path);
    ADD_FAILURE() << "expected a refusal mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(GgufFamilies, RefusesDescriptionsLlamaCppsGraphWouldComputeDifferently) {
  Config gemma = testing::gemma2_config();
  gemma.attn_scale = 1.0 / std::sqrt(256.0);  // query_pre_attn_scalar ≠ head_dim outside the 27B shape
  expect_refused(gemma, "attention scale");
  Config smol = testing::smollm3_config();
  smol.layer_no_rope = {0, 1, 0, 1};
  expect_refused(smol, "layer 1");
  Config qwen3 = testing::qwen3_config();
  qwen3.layer_num_heads = {4, 2};
  qwen3.layer_num_kv_heads = {2, 2};
  expect_refused(qwen3, "per-layer widths");
  Config olmo_narrow = testing::olmo2_config();
  olmo_narrow.head_dim = 32;
  expect_refused(olmo_narrow, "heads × head_dim");
  Config llama = testing::llama32_config();
  llama.sliding_window = 64;
  llama.layer_sliding = {1, 0, 1};
  expect_refused(llama, "sliding");
  Config olmo = testing::olmo2_config();
  olmo.attn_softcap = 20;
  expect_refused(olmo, "soft-capping");
  Config phi3 = testing::phi3_config();
  phi3.name = "Phi-3.5-mini-pruned";  // llama.cpp's name check wants </s>, <unk>, <s>, <|endoftext|>
  expect_refused(phi3, "</s>");
}

}  // namespace
}  // namespace slmopt
