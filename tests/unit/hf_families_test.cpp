// The Hugging Face side of the family files (src/io/families/<name>.cpp): each family's real config.json keys (shrunk sizes, in
// tests/families/<family>/config.json) load into the decoder description with hand-checked values; config.json
// and checkpoints written from a description read back identical (fused Phi-3 tensors included, split into views
// of the mapped file at load); bad or unsupported keys give one error naming the key.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/hf_gptq.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/ir/decoder_tensors.h"
#include "slmopt/ir/random_weights.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/quant/int_grid.h"
#include "expect_helpers.h"
#include "test_support.h"

namespace slmopt {
namespace {

using slmopt::testing::expect_error;
using slmopt::testing::scratch_dir;

std::string family_config_path(const std::string& family) {
  return std::string(SLMOPT_SOURCE_DIR) + "/tests/families/" + family + "/config.json";
}

nlohmann::json family_json(const std::string& family) {
  return nlohmann::json::parse(read_text_file(family_config_path(family)));
}

Config load_config(const std::string& family) {
  return parse_hf_config(read_text_file(family_config_path(family)), family_config_path(family));
}

Config parse(const nlohmann::json& j) { return parse_hf_config(j.dump(), "dir/config.json"); }

const std::vector<std::string> kFamilies = {"phi2",   "phi3-mini-4k", "phi3.5-mini", "phi4-mini", "qwen3",
                                            "gemma2", "gemma3-1b",    "smollm2",     "smollm3",   "llama3.2",
                                            "granite3", "olmo2",      "mistral"};

// ---- config.json → description (values checked by hand against the configs and transformers' code) ----------

TEST(HfFamilies, Phi2) {
  const Config c = load_config("phi2");
  EXPECT_EQ(c.family, "phi2");
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.rotary_dims(), 12);  // int(32 · 0.4) = int(12.8)
  EXPECT_EQ(c.norm_kind, NormKind::LayerNorm);
  EXPECT_TRUE(c.norm_bias);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-5);  // layer_norm_eps
  EXPECT_EQ(c.residual_layout, ResidualLayout::Parallel);
  EXPECT_EQ(c.mlp_kind, MlpKind::GeluTanh);
  EXPECT_TRUE(c.attention_bias && c.attention_out_bias && c.mlp_bias && c.lm_head_bias);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.vocab_size, 51200);
  EXPECT_EQ(c.sliding_window, 0);
}

TEST(HfFamilies, Phi3Mini4k) {
  const Config c = load_config("phi3-mini-4k");
  EXPECT_EQ(c.family, "phi3");
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.rotary_dims(), 32);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::None);
  EXPECT_EQ(c.sliding_window, 2047);  // every layer local
  EXPECT_TRUE(c.layer_sliding.empty());
  EXPECT_TRUE(c.layer_is_sliding(1));
  EXPECT_FALSE(c.attention_bias || c.mlp_bias || c.tie_word_embeddings);
}

TEST(HfFamilies, Phi35MiniLongRope) {
  const Config c = load_config("phi3.5-mini");
  const RopeScaling& s = c.rope_scaling;
  EXPECT_EQ(s.type, RopeScalingType::LongRope);
  EXPECT_EQ(s.original_max_position, 4096);
  EXPECT_DOUBLE_EQ(s.factor, 32.0);  // 131072 / 4096
  // sqrt(1 + ln 32 / ln 4096) = sqrt(1 + 5/12)
  EXPECT_NEAR(s.attention_factor, std::sqrt(17.0 / 12.0), 1e-15);
  ASSERT_EQ(s.short_factor.size(), 16u);
  ASSERT_EQ(s.long_factor.size(), 16u);
  EXPECT_DOUBLE_EQ(s.long_factor[15], 63.54999923706055);
  EXPECT_EQ(c.sliding_window, 262144);
  nlohmann::json j = family_json("phi3.5-mini");
  j["rope_scaling"]["type"] = "su";  // Phi-3's first name for LongRoPE
  EXPECT_EQ(parse(j).rope_scaling.type, RopeScalingType::LongRope);
  j["rope_scaling"]["attention_factor"] = 1.5;
  EXPECT_DOUBLE_EQ(parse(j).rope_scaling.attention_factor, 1.5);
}

TEST(HfFamilies, Phi4Mini) {
  const Config c = load_config("phi4-mini");
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.rotary_dims(), 24);  // 0.75 · 32
  EXPECT_EQ(c.num_kv_heads, 1);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope_scaling.short_factor.size(), 12u);
  EXPECT_NEAR(c.rope_scaling.attention_factor, std::sqrt(17.0 / 12.0), 1e-15);
}

TEST(HfFamilies, Qwen3) {
  const Config c = load_config("qwen3");
  EXPECT_EQ(c.family, "qwen3");
  EXPECT_EQ(c.head_dim, 32);  // explicit, not hidden / heads = 16
  EXPECT_EQ(c.qk_norm, QkNormKind::PerHead);
  EXPECT_FALSE(c.attention_bias || c.attention_out_bias);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.sliding_window, 0);
  nlohmann::json j = family_json("qwen3");
  j.erase("head_dim");
  EXPECT_EQ(parse(j).head_dim, 128);  // Qwen3Config's default
  j["use_sliding_window"] = true;
  j["sliding_window"] = 16;
  j["max_window_layers"] = 1;
  const Config w = parse(j);
  EXPECT_EQ(w.sliding_window, 16);
  EXPECT_EQ(w.layer_sliding, (std::vector<uint8_t>{0, 1}));
}

TEST(HfFamilies, Gemma2) {
  const Config c = load_config("gemma2");
  EXPECT_EQ(c.family, "gemma2");
  EXPECT_TRUE(c.norm_unit_offset);
  EXPECT_EQ(c.norm_placement, NormPlacement::Sandwich);
  EXPECT_EQ(c.mlp_kind, MlpKind::GeGluTanh);
  EXPECT_DOUBLE_EQ(c.embedding_scale, 8.0);     // sqrt(64)
  EXPECT_DOUBLE_EQ(c.attention_scale(), 1.0 / std::sqrt(32.0));  // query_pre_attn_scalar 32 (= head_dim, as 2B/9B)
  EXPECT_DOUBLE_EQ(c.attn_softcap, 50.0);
  EXPECT_DOUBLE_EQ(c.final_logit_softcap, 30.0);
  EXPECT_EQ(c.sliding_window, 8);
  EXPECT_EQ(c.layer_sliding, (std::vector<uint8_t>{1, 0, 1, 0}));
  EXPECT_TRUE(c.tie_word_embeddings);  // Gemma2Config's default
  EXPECT_EQ(c.qk_norm, QkNormKind::None);
  nlohmann::json j = family_json("gemma2");
  j["query_pre_attn_scalar"] = 64;  // 27B-style: hidden / heads, not head_dim
  EXPECT_DOUBLE_EQ(parse(j).attention_scale(), 0.125);  // 64^-0.5, not head_dim 32's
  j["final_logit_softcapping"] = nullptr;  // null turns soft-capping off; an omitted key means 30
  j.erase("attn_logit_softcapping");
  const Config k = parse(j);
  EXPECT_EQ(k.final_logit_softcap, 0.0);
  EXPECT_EQ(k.attn_softcap, 50.0);
}

TEST(HfFamilies, Gemma3) {
  const Config c = load_config("gemma3-1b");
  EXPECT_EQ(c.family, "gemma3");
  EXPECT_EQ(c.qk_norm, QkNormKind::PerHead);
  EXPECT_EQ(c.layer_sliding, (std::vector<uint8_t>{1, 1, 1, 1, 1, 0}));  // sliding_window_pattern 6
  EXPECT_EQ(c.sliding_window, 8);
  EXPECT_DOUBLE_EQ(c.layer_rope_theta(0), 1e4);  // rope_local_base_freq
  EXPECT_DOUBLE_EQ(c.layer_rope_theta(5), 1e6);
  EXPECT_DOUBLE_EQ(c.attention_scale(), 1.0 / std::sqrt(32.0));
  EXPECT_EQ(c.attn_softcap, 0.0);
  EXPECT_EQ(c.final_logit_softcap, 0.0);
  EXPECT_DOUBLE_EQ(c.embedding_scale, 8.0);
  nlohmann::json j = family_json("gemma3-1b");
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 8.0}};  // Gemma-3 4B: global layers only
  const Config s = parse(j);
  EXPECT_FALSE(s.layer_rope_scaled(0));
  EXPECT_TRUE(s.layer_rope_scaled(5));
  j.erase("sliding_window_pattern");
  j["layer_types"] = {"sliding_attention", "full_attention", "sliding_attention", "full_attention",
                      "sliding_attention", "sliding_attention"};
  EXPECT_EQ(parse(j).layer_sliding, (std::vector<uint8_t>{1, 0, 1, 0, 1, 1}));
  // transformers ≥ 5: rope_parameters per layer type.
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j.erase("rope_local_base_freq");
  j["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}, {"rope_theta", 500000.0}}},
                          {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 20000.0}}}};
  const Config v5 = parse(j);
  EXPECT_DOUBLE_EQ(v5.layer_rope_theta(1), 500000.0);
  EXPECT_DOUBLE_EQ(v5.layer_rope_theta(0), 20000.0);
}

TEST(HfFamilies, SmolLM2AndLlama32OnTheLlamaPath) {
  const Config s = load_config("smollm2");
  EXPECT_EQ(s.family, "llama");
  EXPECT_EQ(s.head_dim, 32);
  EXPECT_TRUE(s.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(s.rope_theta, 100000.0);
  const Config l = load_config("llama3.2");
  EXPECT_EQ(l.rope_scaling.type, RopeScalingType::Llama3);
  EXPECT_DOUBLE_EQ(l.rope_scaling.factor, 32.0);
  EXPECT_EQ(l.rope_scaling.original_max_position, 8192);
  EXPECT_EQ(l.head_dim, 16);
}

TEST(HfFamilies, SmolLM3) {
  const Config c = load_config("smollm3");
  EXPECT_EQ(c.family, "smollm3");
  EXPECT_EQ(c.layer_no_rope, (std::vector<uint8_t>{0, 0, 0, 1}));  // config's 1 = "uses RoPE"
  EXPECT_FALSE(c.layer_uses_rope(3));
  EXPECT_TRUE(c.layer_uses_rope(2));
  EXPECT_DOUBLE_EQ(c.rope_theta, 5e6);
  EXPECT_EQ(c.sliding_window, 0);
  nlohmann::json j = family_json("smollm3");
  j.erase("no_rope_layers");
  j["no_rope_layer_interval"] = 2;
  EXPECT_EQ(parse(j).layer_no_rope, (std::vector<uint8_t>{0, 1, 0, 1}));
}

TEST(HfFamilies, Granite) {
  const Config c = load_config("granite3");
  EXPECT_EQ(c.family, "granite");
  EXPECT_DOUBLE_EQ(c.embedding_scale, 12.0);
  EXPECT_DOUBLE_EQ(c.residual_scale, 0.22);
  EXPECT_DOUBLE_EQ(c.attention_scale(), 0.015625);
  EXPECT_DOUBLE_EQ(c.logit_scale, 0.125);  // 1 / logits_scaling 8
  nlohmann::json j = family_json("granite3");
  j.erase("attention_multiplier");
  EXPECT_DOUBLE_EQ(parse(j).attention_scale(), 1.0);  // GraniteConfig's default, not 1/sqrt(head_dim)
}

TEST(HfFamilies, Olmo2) {
  const Config c = load_config("olmo2");
  EXPECT_EQ(c.family, "olmo2");
  EXPECT_EQ(c.norm_placement, NormPlacement::Post);
  EXPECT_EQ(c.qk_norm, QkNormKind::Whole);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-6);
  EXPECT_FALSE(c.tie_word_embeddings);
}

// GPT-2's own keys (openai-community/gpt2's config.json, shrunk): n_inner null means 4 · n_embd, no RoPE keys.
TEST(HfFamilies, Gpt2) {
  const Config c = load_config("gpt2");
  EXPECT_EQ(c.family, "gpt2");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.intermediate_size, 256);
  EXPECT_EQ(c.max_position, 128);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-5);
  EXPECT_EQ(c.norm_kind, NormKind::LayerNorm);
  EXPECT_TRUE(c.norm_bias);
  EXPECT_EQ(c.position_kind, PositionKind::Learned);
  EXPECT_EQ(c.mlp_kind, MlpKind::GeluTanh);
  EXPECT_TRUE(c.attention_bias && c.attention_out_bias && c.mlp_bias);
  EXPECT_TRUE(c.tie_word_embeddings);
  // Written back with GPT-2's keys, not Llama's.
  const nlohmann::json out = nlohmann::json::parse(hf_config_json(c, Vocab{}, std::nullopt));
  EXPECT_EQ(out["architectures"][0], "GPT2LMHeadModel");
  EXPECT_EQ(out["model_type"], "gpt2");
  for (const char* key : {"n_embd", "n_head", "n_layer", "n_positions", "n_ctx", "n_inner", "layer_norm_epsilon",
                          "activation_function", "vocab_size"})
    EXPECT_TRUE(out.contains(key)) << key;
  for (const char* key : {"hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size"})
    EXPECT_FALSE(out.contains(key)) << key;
  EXPECT_TRUE(out["n_inner"].is_null());
  nlohmann::json j = family_json("gpt2");
  j["n_inner"] = 100;
  EXPECT_EQ(parse(j).intermediate_size, 100);
}

TEST(HfFamilies, MistralSlidingWindow) {
  const Config c = load_config("mistral");
  EXPECT_EQ(c.sliding_window, 8);
  EXPECT_TRUE(c.layer_sliding.empty());
  nlohmann::json j = family_json("mistral");
  j["sliding_window"] = nullptr;
  EXPECT_EQ(parse(j).sliding_window, 0);
  j.erase("sliding_window");
  EXPECT_EQ(parse(j).sliding_window, 4096);  // MistralConfig's default
}

TEST(HfFamilies, Qwen2UseSlidingWindow) {
  nlohmann::json j = family_json("qwen3");
  j["architectures"] = {"Qwen2ForCausalLM"};
  j["model_type"] = "qwen2";
  j.erase("head_dim");
  EXPECT_EQ(parse(j).sliding_window, 0);
  j["use_sliding_window"] = true;
  j["sliding_window"] = 32;
  j["max_window_layers"] = 0;
  const Config c = parse(j);
  EXPECT_EQ(c.sliding_window, 32);
  EXPECT_TRUE(c.layer_sliding.empty());  // every layer local
  EXPECT_TRUE(c.attention_bias);
}

// ---- bad keys: one error naming the key -----------------------------------------------------------------------

TEST(HfFamilies, BadKeysNameTheKey) {
  auto with = [](const std::string& family, const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = family_json(family);
    j[key] = value;
    return j;
  };
  auto expect = [](const nlohmann::json& j, ErrorKind kind, std::vector<std::string> needles) {
    needles.push_back("dir/config.json");
    expect_error([&] { parse(j); }, kind, needles);
  };
  expect(with("gemma2", "hidden_activation", "gelu"), ErrorKind::Unsupported, {"hidden_activation 'gelu'"});
  expect(with("phi2", "hidden_act", "relu"), ErrorKind::Unsupported, {"hidden_act 'relu'"});
  expect(with("phi2", "qk_layernorm", true), ErrorKind::Unsupported, {"qk_layernorm"});
  expect(with("phi2", "partial_rotary_factor", 0.3), ErrorKind::BadInput, {"partial_rotary_factor", "even"});
  expect(with("phi4-mini", "mlp_bias", true), ErrorKind::Unsupported, {"mlp_bias"});
  expect(with("gemma3-1b", "layer_types", {"full_attention"}), ErrorKind::BadInput, {"layer_types"});
  expect(with("qwen3", "layer_types", {"chunked_attention", "full_attention"}), ErrorKind::Unsupported,
         {"layer_types", "chunked_attention"});
  expect(with("smollm3", "no_rope_layers", {1, 1}), ErrorKind::BadInput, {"no_rope_layers"});
  expect(with("smollm3", "no_rope_layers", {1, 1, 2, 0}), ErrorKind::BadInput, {"no_rope_layers", "0 or 1"});
  expect(with("granite3", "logits_scaling", 0), ErrorKind::BadInput, {"logits_scaling"});
  expect(with("gemma2", "query_pre_attn_scalar", -1), ErrorKind::BadInput, {"query_pre_attn_scalar"});
  expect(with("gemma2", "use_bidirectional_attention", true), ErrorKind::Unsupported,
         {"use_bidirectional_attention"});
  expect(with("mistral", "sliding_window", 0), ErrorKind::BadInput, {"sliding_window"});
  expect(with("gpt2", "activation_function", "relu"), ErrorKind::Unsupported, {"activation_function 'relu'"});
  expect(with("gpt2", "reorder_and_upcast_attn", true), ErrorKind::Unsupported, {"reorder_and_upcast_attn"});
  expect(with("gpt2", "n_head", 5), ErrorKind::BadInput, {"n_embd", "n_head"});
  nlohmann::json longrope = family_json("phi3.5-mini");
  longrope["rope_scaling"]["short_factor"] = {1.0, 1.0};
  expect(longrope, ErrorKind::BadInput, {"rope_scaling.short_factor", "16"});
  longrope = family_json("phi3.5-mini");
  longrope["rope_scaling"].erase("long_factor");
  expect(longrope, ErrorKind::BadInput, {"rope_scaling.long_factor is missing"});
  expect(with("llama3.2", "rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}), ErrorKind::Unsupported,
         {"rope_scaling", "yarn"});
  expect(with("gemma3-1b", "architectures", {"Gemma3ForConditionalGeneration"}), ErrorKind::Unsupported,
         {"Gemma3ForConditionalGeneration", "Gemma3ForCausalLM"});
}

// ---- description → config.json → description ------------------------------------------------------------------

TEST(HfFamilies, ConfigJsonRoundTrips) {
  for (const std::string& family : kFamilies) {
    SCOPED_TRACE(family);
    Config c = load_config(family);
    c.name = family;
    const std::string text = hf_config_json(c, Vocab{}, DType::BF16);  // refuses what would not read back
    Config back = parse_hf_config(text, "written");
    back.name = family;
    EXPECT_EQ(back.family, c.family);
    EXPECT_EQ(back.architecture, c.architecture);
    EXPECT_EQ(hf_config_json(back, Vocab{}, DType::BF16), text);
  }
}

TEST(HfFamilies, WritingRefusesWhatTheClassCannotExpress) {
  Config mistral = load_config("mistral");
  mistral.layer_sliding = {1, 0};
  expect_error([&] { hf_config_json(mistral, Vocab{}, std::nullopt); }, ErrorKind::Unsupported,
               {"MistralForCausalLM", "sliding window"});
  Config gemma = load_config("gemma2");
  gemma.qk_norm = QkNormKind::PerHead;
  expect_error([&] { hf_config_json(gemma, Vocab{}, std::nullopt); }, ErrorKind::Unsupported,
               {"Gemma2ForCausalLM", "q/k norm"});
  Config phi = load_config("phi3-mini-4k");
  phi.attention_bias = true;
  expect_error([&] { hf_config_json(phi, Vocab{}, std::nullopt); }, ErrorKind::Unsupported,
               {"Phi3ForCausalLM", "q/k/v biases"});
}

// ---- checkpoints: write → read is bit-identical; fused tensors split into views --------------------------------

// The project's fixture generator (what `slmopt dev random-checkpoint` writes), BF16 as released checkpoints.
Model random_model(const Config& config) {
  Model m = slmopt::random_model(config, DType::BF16, 1);
  m.validate();
  return m;
}

std::set<std::string> stored_names(const std::string& dir) {
  std::set<std::string> out;
  for (const Tensor& t : read_safetensors_checkpoint(dir).tensors) out.insert(t.name());
  return out;
}

TEST(HfFamilies, CheckpointsRoundTripBitIdentical) {
  for (const std::string& family : kFamilies) {
    SCOPED_TRACE(family);
    Config c = load_config(family);
    c.name = family;
    const Model m = random_model(c);
    const std::string dir = scratch_dir("hf_families_" + family);
    write_hf_model(m, dir + "/a");
    const Model back = load_hf_model(dir + "/a");
    EXPECT_EQ(hf_config_json(back.config, Vocab{}, std::nullopt), hf_config_json(m.config, Vocab{}, std::nullopt));
    ASSERT_EQ(back.tensors().size(), m.tensors().size());
    for (const auto& [name, t] : m.tensors()) {
      const Tensor* b = back.find(name);
      ASSERT_NE(b, nullptr) << name;
      EXPECT_EQ(b->dtype(), t.dtype()) << name;
      EXPECT_EQ(b->shape(), t.shape()) << name;
      ASSERT_EQ(b->nbytes(), t.nbytes()) << name;
      EXPECT_EQ(std::memcmp(b->data(), t.data(), t.nbytes()), 0) << name;
    }
    // Written again from what was read: the same bytes.
    write_hf_model(back, dir + "/b");
    EXPECT_EQ(read_text_file(dir + "/a/model.safetensors"), read_text_file(dir + "/b/model.safetensors"));
    EXPECT_EQ(read_text_file(dir + "/a/config.json"), read_text_file(dir + "/b/config.json"));
  }
}

TEST(HfFamilies, CheckpointsUseTheFamilysNames) {
  auto written = [](const std::string& family) {
    Config c = load_config(family);
    c.name = family;
    const std::string dir = scratch_dir("hf_names_" + family) + "/m";
    write_hf_model(random_model(c), dir);
    return stored_names(dir);
  };
  const std::set<std::string> phi2 = written("phi2");
  for (const char* n : {"model.layers.1.self_attn.dense.weight", "model.layers.1.self_attn.dense.bias",
                        "model.layers.0.mlp.fc1.weight", "model.layers.0.mlp.fc2.bias", "model.final_layernorm.weight",
                        "model.final_layernorm.bias", "lm_head.bias", "model.layers.0.input_layernorm.bias"})
    EXPECT_TRUE(phi2.count(n)) << n;
  EXPECT_EQ(phi2.size(), 3u + 2u + 2u * 14u);  // embed, final norm w/b, head w/b; 14 per layer

  const std::set<std::string> phi3 = written("phi3-mini-4k");
  EXPECT_TRUE(phi3.count("model.layers.0.self_attn.qkv_proj.weight"));
  EXPECT_TRUE(phi3.count("model.layers.0.mlp.gate_up_proj.weight"));
  EXPECT_FALSE(phi3.count("model.layers.0.self_attn.q_proj.weight"));

  const std::set<std::string> gemma = written("gemma3-1b");
  for (const char* n : {"model.layers.0.post_attention_layernorm.weight", "model.layers.0.pre_feedforward_layernorm.weight",
                        "model.layers.0.post_feedforward_layernorm.weight", "model.layers.0.self_attn.q_norm.weight"})
    EXPECT_TRUE(gemma.count(n)) << n;
  EXPECT_FALSE(gemma.count("lm_head.weight"));  // tied

  const std::set<std::string> olmo = written("olmo2");
  EXPECT_TRUE(olmo.count("model.layers.1.post_feedforward_layernorm.weight"));
  EXPECT_FALSE(olmo.count("model.layers.1.input_layernorm.weight"));
}

// The canonical roles of Gemma's HF norm names: the HF post_attention_layernorm is on the attention output.
TEST(HfFamilies, GemmaNormRolesMapByTable) {
  Config c = load_config("gemma2");
  c.name = "g";
  const Model m = random_model(c);
  const std::string dir = scratch_dir("hf_gemma_roles") + "/m";
  write_hf_model(m, dir);
  std::map<std::string, Tensor> stored;
  for (Tensor& t : read_safetensors_checkpoint(dir).tensors) stored.emplace(t.name(), std::move(t));
  auto same = [&](const std::string& hf, const std::string& canonical) {
    const Tensor& a = stored.at(hf);
    const Tensor& b = m.tensor(canonical);
    return a.nbytes() == b.nbytes() && std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
  };
  EXPECT_TRUE(same("model.layers.1.post_attention_layernorm.weight", names::attn_post_norm(1)));
  EXPECT_TRUE(same("model.layers.1.pre_feedforward_layernorm.weight", names::ffn_norm(1)));
  EXPECT_TRUE(same("model.layers.1.post_feedforward_layernorm.weight", names::ffn_post_norm(1)));
}

// The pathname of the file mapping that contains address p, from /proc/self/maps ("" when none).
std::string mapping_of(const uint8_t* p) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const auto addr = reinterpret_cast<uintptr_t>(p);
  while (std::getline(maps, line)) {
    uintptr_t begin = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &begin, &end) != 2) continue;
    if (addr >= begin && addr < end) {
      const size_t slash = line.find('/');
      return slash == std::string::npos ? "" : line.substr(slash);
    }
  }
  return "";
}

TEST(HfFamilies, Phi3FusedTensorsLoadAsViews) {
  Config c = load_config("phi4-mini");  // GQA: q 3·32 rows, k and v 32 rows each
  c.name = "phi4";
  const Model m = random_model(c);
  const std::string dir = scratch_dir("hf_phi3_views") + "/m";
  write_hf_model(m, dir);
  const Model back = load_hf_model(dir);
  const Tensor& q = back.tensor(names::q_proj(1));
  const Tensor& k = back.tensor(names::k_proj(1));
  const Tensor& v = back.tensor(names::v_proj(1));
  EXPECT_EQ(q.shape(), (std::vector<int64_t>{96, 96}));
  EXPECT_EQ(k.shape(), (std::vector<int64_t>{32, 96}));
  // Consecutive row blocks of one stored tensor: views, not copies.
  EXPECT_EQ(q.data() + q.nbytes(), k.data());
  EXPECT_EQ(k.data() + k.nbytes(), v.data());
  EXPECT_NE(mapping_of(k.data()).find("model.safetensors"), std::string::npos);  // inside the mapped file
  const Tensor& gate = back.tensor(names::gate_proj(0));
  EXPECT_EQ(gate.data() + gate.nbytes(), back.tensor(names::up_proj(0)).data());
}

TEST(HfFamilies, BadCheckpointTensorsAreNamed) {
  Config c = load_config("phi3-mini-4k");
  c.name = "phi3";
  const std::string dir = scratch_dir("hf_phi3_bad");
  write_hf_model(random_model(c), dir + "/m");
  // The same checkpoint described with fewer KV heads: qkv_proj's rows no longer add up.
  nlohmann::json j = family_json("phi3-mini-4k");
  j["num_key_value_heads"] = 2;
  write_file_atomic(dir + "/m/config.json", j.dump());
  expect_error([&] { load_hf_model(dir + "/m"); }, ErrorKind::BadInput,
               {"model.layers.0.self_attn.qkv_proj.weight", "[384, 128]", "[256, 128]"});

  // A stray tensor under a Llama name the Phi-3 table does not have.
  Model stray = random_model(load_config("smollm2"));
  stray.config.name = "s";
  write_hf_model(stray, dir + "/s");
  write_file_atomic(dir + "/s/config.json", family_json("phi3-mini-4k").dump());
  expect_error([&] { load_hf_model(dir + "/s"); }, ErrorKind::BadInput, {"does not use", "self_attn.q_proj.weight"});
}

// GPTQ/AWQ checkpoints use the family's names too: Phi-3's fused qkv_proj / gate_up_proj carry the stacked codes
// of their parts, Phi-2's dense / fc1 / fc2 its renamed linears; reading splits the codes back per canonical part.
TEST(HfFamilies, QuantizedCheckpointsUseTheFamilysNames) {
  for (const std::string family : {"phi4-mini", "phi2"}) {
    for (HfQuantFormat format : {HfQuantFormat::Gptq, HfQuantFormat::Awq}) {
      SCOPED_TRACE(family + " " + hf_quant_format_name(format));
      Config c = load_config(family);
      c.name = family;
      Model m = random_model(c);
      std::map<std::string, HfIntWeight> q;
      for (int64_t l = 0; l < c.num_layers; ++l)
        for (const std::string& name : {names::q_proj(l), names::k_proj(l), names::v_proj(l), names::o_proj(l),
                                        names::gate_proj(l), names::up_proj(l), names::down_proj(l)}) {
          if (!m.has(name)) continue;  // Phi-2 has no gate
          const Tensor& t = m.tensor(name);
          const GridQuantizedWeight g = quantize_grid_rtn(t.to_f32(), t.rows(), t.cols(), {4, 32, false});
          q[name] = g.to_hf();
          m.set(Tensor::from_f32(name, t.shape(), g.dequantize()));
        }
      const std::string dir = scratch_dir(std::string("hf_quant_") + family + hf_quant_format_name(format)) + "/m";
      HfQuantizedWriteOptions options;
      options.format = format;
      options.float_type = DType::F32;
      write_hf_quantized(m, q, dir, options);
      const std::set<std::string> stored = stored_names(dir);
      if (family == "phi2") {
        EXPECT_TRUE(stored.count("model.layers.0.self_attn.dense.qweight"));
        EXPECT_TRUE(stored.count("model.layers.1.mlp.fc1.qweight"));
        EXPECT_TRUE(stored.count("model.final_layernorm.bias"));
      } else {
        EXPECT_TRUE(stored.count("model.layers.0.self_attn.qkv_proj.qweight"));
        EXPECT_TRUE(stored.count("model.layers.1.mlp.gate_up_proj.scales"));
        EXPECT_FALSE(stored.count("model.layers.0.self_attn.q_proj.qweight"));
      }
      std::map<std::string, HfIntWeight> codes;
      const Model back = load_hf_quantized(dir, &codes);
      ASSERT_EQ(codes.size(), q.size());
      for (const auto& [name, w] : q) {
        EXPECT_EQ(codes.at(name).codes, w.codes) << name;
        EXPECT_EQ(codes.at(name).zeros, w.zeros) << name;
        EXPECT_EQ(codes.at(name).scales, w.scales) << name;
        EXPECT_EQ(back.tensor(name).to_f32(), m.tensor(name).to_f32()) << name;
      }
      for (const auto& [name, t] : m.tensors()) EXPECT_EQ(back.tensor(name).to_f32(), t.to_f32()) << name;
    }
  }
}

}  // namespace
}  // namespace slmopt
