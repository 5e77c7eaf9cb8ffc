// Type selection for the GGUF presets: llama.cpp's rules on known configurations, the row-length fallback,
// overrides, and a cross-check of every preset against libllama's own choice (llama_quant_compute_types).
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "ggml_reference.h"
#include "slmopt/core/error.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/quant/type_selection.h"

namespace slmopt {
namespace {

Config llama_config(int64_t layers, int64_t hidden, int64_t ffn, int64_t heads, int64_t kv_heads, int64_t vocab,
                    bool tied) {
  Config c;
  c.family = "llama";
  c.hidden_size = hidden;
  c.intermediate_size = ffn;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = hidden / heads;
  c.vocab_size = vocab;
  c.max_position = 256;
  c.tie_word_embeddings = tied;
  return c;
}

// Every tensor of a llama checkpoint for `c`, in the IR's canonical names and [out, in] shapes.
std::vector<TensorDesc> llama_tensors(const Config& c, DType dtype = DType::BF16) {
  const int64_t q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  std::vector<TensorDesc> t = {{names::kEmbedTokens, {c.vocab_size, c.hidden_size}, dtype}};
  for (int64_t l = 0; l < c.num_layers; ++l) {
    t.push_back({names::attn_norm(l), {c.hidden_size}, dtype});
    t.push_back({names::q_proj(l), {q, c.hidden_size}, dtype});
    t.push_back({names::k_proj(l), {kv, c.hidden_size}, dtype});
    t.push_back({names::v_proj(l), {kv, c.hidden_size}, dtype});
    t.push_back({names::o_proj(l), {c.hidden_size, q}, dtype});
    t.push_back({names::ffn_norm(l), {c.hidden_size}, dtype});
    t.push_back({names::gate_proj(l), {c.intermediate_size, c.hidden_size}, dtype});
    t.push_back({names::up_proj(l), {c.intermediate_size, c.hidden_size}, dtype});
    t.push_back({names::down_proj(l), {c.hidden_size, c.intermediate_size}, dtype});
  }
  t.push_back({names::kFinalNorm, {c.hidden_size}, dtype});
  if (!c.tie_word_embeddings) t.push_back({names::kLmHead, {c.vocab_size, c.hidden_size}, dtype});
  return t;
}

DType type_of(const std::vector<TypeChoice>& choices, const std::string& name) {
  for (const auto& c : choices)
    if (c.name == name) return c.dtype;
  ADD_FAILURE() << "no choice for " << name;
  return DType::F32;
}

// llama.cpp's fallbacks unless told otherwise (most tests here pin llama.cpp's rules).
std::vector<TypeChoice> choose(const Config& c, QuantPreset preset, std::vector<TypeOverride> overrides = {},
                               NarrowRows narrow = NarrowRows::Llama) {
  TypeSelectionOptions o;
  o.preset = preset;
  o.narrow_rows = narrow;
  o.overrides = std::move(overrides);
  return select_tensor_types(c, llama_tensors(c), o);
}

TEST(TypeSelection, PresetsCarryLlamaFileTypes) {
  const std::vector<std::pair<std::string, int>> expected = {
      {"F32", 0},     {"F16", 1},     {"Q4_0", 2},    {"Q4_1", 3},    {"Q8_0", 7},    {"Q5_0", 8},
      {"Q5_1", 9},    {"Q2_K", 10},   {"Q3_K_S", 11}, {"Q3_K_M", 12}, {"Q3_K_L", 13}, {"Q4_K_S", 14},
      {"Q4_K_M", 15}, {"Q5_K_S", 16}, {"Q5_K_M", 17}, {"Q6_K", 18},   {"BF16", 32},
      // llama.h's LLAMA_FTYPE_MOSTLY_IQ*
      {"IQ2_XXS", 19}, {"IQ2_XS", 20}, {"IQ3_XS", 22}, {"IQ3_XXS", 23}, {"IQ1_S", 24}, {"IQ3_S", 26},
      {"IQ3_M", 27},   {"IQ2_S", 28},  {"IQ2_M", 29},  {"IQ4_XS", 30},  {"IQ1_M", 31}};
  EXPECT_EQ(quant_presets().size(), expected.size());
  for (const auto& [name, ftype] : expected) {
    const auto p = preset_from_name(name);
    ASSERT_TRUE(p.has_value()) << name;
    EXPECT_EQ(preset_info(*p).gguf_file_type, ftype) << name;
  }
  EXPECT_EQ(preset_from_name("q4_k_m"), QuantPreset::Q4_K_M);
  EXPECT_EQ(preset_info(QuantPreset::Q3_K_L).base, DType::Q3_K);
  EXPECT_FALSE(preset_from_name("Q4_K").has_value());
}

TEST(TypeSelection, Q4_K_MUsesMoreBitsInLayersTwoAndThreeOfFour) {
  // llama-5m-kjv's shape: use_more_bits(i, 4) holds for i = 2 ((2 - 0) % 3 == 2) and i = 3 (>= 7*4/8).
  const Config c = llama_config(4, 256, 768, 4, 2, 4096, false);
  const auto choices = choose(c, QuantPreset::Q4_K_M);
  for (int64_t l = 0; l < 4; ++l) {
    const DType more = l >= 2 ? DType::Q6_K : DType::Q4_K;
    EXPECT_EQ(type_of(choices, names::v_proj(l)), more) << l;
    EXPECT_EQ(type_of(choices, names::down_proj(l)), more) << l;
    EXPECT_EQ(type_of(choices, names::q_proj(l)), DType::Q4_K);
    EXPECT_EQ(type_of(choices, names::k_proj(l)), DType::Q4_K);
    EXPECT_EQ(type_of(choices, names::o_proj(l)), DType::Q4_K);
    EXPECT_EQ(type_of(choices, names::gate_proj(l)), DType::Q4_K);
    EXPECT_EQ(type_of(choices, names::up_proj(l)), DType::Q4_K);
    EXPECT_EQ(type_of(choices, names::attn_norm(l)), DType::F32);
  }
  EXPECT_EQ(type_of(choices, names::kLmHead), DType::Q6_K);
  EXPECT_EQ(type_of(choices, names::kEmbedTokens), DType::Q4_K);
  EXPECT_EQ(type_of(choices, names::kFinalNorm), DType::F32);
}

TEST(TypeSelection, Q5_K_MUsesMoreBitsInFirstLastEighthAndEveryThirdLayerOfThirtyTwo) {
  const Config c = llama_config(32, 4096, 11008, 32, 32, 32000, false);
  const auto choices = choose(c, QuantPreset::Q5_K_M);
  const std::set<int64_t> more = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
  for (int64_t l = 0; l < 32; ++l) {
    const DType expected = more.count(l) ? DType::Q6_K : DType::Q5_K;
    EXPECT_EQ(type_of(choices, names::v_proj(l)), expected) << l;
    EXPECT_EQ(type_of(choices, names::down_proj(l)), expected) << l;
    EXPECT_EQ(type_of(choices, names::up_proj(l)), DType::Q5_K) << l;
  }
  // Q4_K_M picks the same layers.
  const auto q4 = choose(c, QuantPreset::Q4_K_M);
  for (int64_t l = 0; l < 32; ++l)
    EXPECT_EQ(type_of(q4, names::v_proj(l)), more.count(l) ? DType::Q6_K : DType::Q4_K) << l;
}

TEST(TypeSelection, SmallMixRules) {
  const Config c = llama_config(32, 4096, 11008, 32, 8, 32000, false);  // GQA 4
  const auto q2 = choose(c, QuantPreset::Q2_K);
  EXPECT_EQ(type_of(q2, names::v_proj(5)), DType::Q4_K);  // n_gqa >= 4
  EXPECT_EQ(type_of(q2, names::down_proj(5)), DType::Q3_K);
  EXPECT_EQ(type_of(q2, names::o_proj(5)), DType::Q3_K);
  EXPECT_EQ(type_of(q2, names::q_proj(5)), DType::Q2_K);
  const auto q3m = choose(c, QuantPreset::Q3_K_M);
  EXPECT_EQ(type_of(q3m, names::v_proj(1)), DType::Q5_K);
  EXPECT_EQ(type_of(q3m, names::v_proj(2)), DType::Q4_K);
  EXPECT_EQ(type_of(q3m, names::down_proj(1)), DType::Q5_K);  // 1 < 32/16
  EXPECT_EQ(type_of(q3m, names::down_proj(2)), DType::Q4_K);
  EXPECT_EQ(type_of(q3m, names::o_proj(2)), DType::Q4_K);
  const auto q4s = choose(c, QuantPreset::Q4_K_S);
  EXPECT_EQ(type_of(q4s, names::v_proj(3)), DType::Q5_K);
  EXPECT_EQ(type_of(q4s, names::v_proj(4)), DType::Q4_K);
  EXPECT_EQ(type_of(q4s, names::down_proj(3)), DType::Q5_K);
  EXPECT_EQ(type_of(q4s, names::down_proj(4)), DType::Q4_K);
}

TEST(TypeSelection, FallsBackOn128WideRows) {
  // tinystories-656k's shape: hidden 128, FFN 384, tied embeddings, 2 layers.
  const Config c = llama_config(2, 128, 384, 8, 4, 2048, true);
  const auto q4km = choose(c, QuantPreset::Q4_K_M);
  EXPECT_EQ(type_of(q4km, names::q_proj(0)), DType::Q5_0);     // Q4_K → Q5_0
  EXPECT_EQ(type_of(q4km, names::down_proj(0)), DType::Q5_0);  // 384 is not a multiple of 256 either
  EXPECT_EQ(type_of(q4km, names::down_proj(1)), DType::Q8_0);  // use_more_bits(1, 2): Q6_K → Q8_0
  EXPECT_EQ(type_of(q4km, names::kEmbedTokens), DType::Q8_0);  // tied embedding as output, 128 % 256 != 0
  const auto q5ks = choose(c, QuantPreset::Q5_K_S);
  EXPECT_EQ(type_of(q5ks, names::up_proj(1)), DType::Q5_1);
  const auto q2 = choose(c, QuantPreset::Q2_K);
  EXPECT_EQ(type_of(q2, names::q_proj(0)), DType::Q4_0);
  EXPECT_EQ(type_of(q2, names::v_proj(0)), DType::Q4_0);  // Q3_K (n_gqa 2) → Q4_0
  const auto q3s = choose(c, QuantPreset::Q3_K_S);
  EXPECT_EQ(type_of(q3s, names::gate_proj(0)), DType::Q4_0);
  const auto q6 = choose(c, QuantPreset::Q6_K);
  EXPECT_EQ(type_of(q6, names::o_proj(1)), DType::Q8_0);
  // No 32-element type fits a row of 100: F16 (llama.cpp would refuse the tensor).
  Config odd = llama_config(1, 100, 256, 4, 4, 64, false);
  odd.head_dim = 25;
  const auto q80 = choose(odd, QuantPreset::Q8_0);
  EXPECT_EQ(type_of(q80, names::q_proj(0)), DType::F16);
  EXPECT_EQ(type_of(q80, names::down_proj(0)), DType::Q8_0);  // rows of 256
}

// The default for narrow rows: the 32-element type of the preset's size class (type_selection.h).
TEST(TypeSelection, NarrowRowsStayInTheSizeClass) {
  const Config c = llama_config(2, 128, 384, 8, 4, 2048, true);  // tinystories-656k
  const auto q4km = choose(c, QuantPreset::Q4_K_M, {}, NarrowRows::SizeClass);
  EXPECT_EQ(type_of(q4km, names::q_proj(0)), DType::Q5_0);       // Q4_K → Q5_0 (IQ4_NL: 3× the KL, measured)
  EXPECT_EQ(type_of(q4km, names::down_proj(1)), DType::Q8_0);    // Q6_K → Q8_0
  EXPECT_EQ(type_of(q4km, names::kEmbedTokens), DType::Q8_0);    // tied output: Q6_K → Q8_0
  const auto q2 = choose(c, QuantPreset::Q2_K, {}, NarrowRows::SizeClass);
  EXPECT_EQ(type_of(q2, names::q_proj(0)), DType::IQ4_NL);       // Q2_K → IQ4_NL, not Q4_0
  const auto q5ks = choose(c, QuantPreset::Q5_K_S, {}, NarrowRows::SizeClass);
  EXPECT_EQ(type_of(q5ks, names::up_proj(1)), DType::Q5_0);      // Q5_K → Q5_0, not Q5_1
  const auto iq2 = choose(c, QuantPreset::IQ2_XS, {}, NarrowRows::SizeClass);
  EXPECT_EQ(type_of(iq2, names::gate_proj(0)), DType::IQ4_NL);
  EXPECT_EQ(type_of(iq2, names::kEmbedTokens), DType::Q5_0);     // IQ2 mix output Q5_K → Q5_0, not Q8_0
  const auto all = choose(c, QuantPreset::IQ2_XS, {}, NarrowRows::SizeClass);
  const auto it = std::find_if(all.begin(), all.end(), [](const TypeChoice& t) { return t.name == names::q_proj(0); });
  ASSERT_NE(it, all.end());
  EXPECT_NE(it->reason.find("iq4_nl instead of iq2_xs (row of 128 is not a multiple of 256; the 32-element type of "
                            "its size class)"), std::string::npos) << it->reason;
  // 576-wide rows (SmolLM2-135M): 576 = 2.25 × 256, the same choice.
  const Config smol = llama_config(2, 576, 1536, 9, 3, 4096, true);
  EXPECT_EQ(type_of(choose(smol, QuantPreset::Q3_K_M, {}, NarrowRows::SizeClass), names::gate_proj(0)), DType::IQ4_NL);
  EXPECT_EQ(type_of(choose(smol, QuantPreset::Q3_K_M, {}, NarrowRows::SizeClass), names::o_proj(0)), DType::Q5_0);  // Q4_K
  EXPECT_EQ(type_of(choose(smol, QuantPreset::IQ3_XXS, {}, NarrowRows::SizeClass), names::up_proj(0)), DType::IQ4_NL);
}

TEST(TypeSelection, OutputTensorTypes) {
  const Config untied = llama_config(4, 256, 768, 4, 2, 4096, false);
  for (const QuantPreset p : {QuantPreset::Q4_0, QuantPreset::Q4_1, QuantPreset::Q5_0, QuantPreset::Q5_1,
                              QuantPreset::Q2_K, QuantPreset::Q3_K_S, QuantPreset::Q4_K_S, QuantPreset::Q5_K_M,
                              QuantPreset::Q6_K}) {
    const auto choices = choose(untied, p);
    EXPECT_EQ(type_of(choices, names::kLmHead), DType::Q6_K) << preset_info(p).name;
    EXPECT_EQ(type_of(choices, names::kEmbedTokens), preset_info(p).base) << preset_info(p).name;
  }
  EXPECT_EQ(type_of(choose(untied, QuantPreset::Q8_0), names::kLmHead), DType::Q8_0);
  EXPECT_EQ(type_of(choose(untied, QuantPreset::F16), names::kLmHead), DType::F16);
  EXPECT_EQ(type_of(choose(untied, QuantPreset::BF16), names::kLmHead), DType::BF16);
  EXPECT_EQ(type_of(choose(untied, QuantPreset::F32), names::q_proj(0)), DType::F32);
  const Config tied = llama_config(4, 256, 768, 4, 2, 4096, true);
  EXPECT_EQ(type_of(choose(tied, QuantPreset::Q4_K_M), names::kEmbedTokens), DType::Q6_K);
}

TEST(TypeSelection, OverridesTakeThePlaceOfTheRules) {
  const Config c = llama_config(4, 256, 768, 4, 2, 4096, false);
  const auto choices = choose(c, QuantPreset::Q4_K_M,
                              {parse_keep("lm_head.weight"), parse_type_for("*.mlp.down_proj.weight=q8_0"),
                               parse_type_for("blk.0.attn_v.weight=f16"), parse_type_for("re:layers\\.1\\.self_attn=q5_k"),
                               parse_type_for("*down_proj*=q2_k")});
  EXPECT_EQ(type_of(choices, names::kLmHead), DType::BF16);            // kept as loaded
  EXPECT_EQ(type_of(choices, names::down_proj(3)), DType::Q8_0);       // first match wins over the later q2_k
  EXPECT_EQ(type_of(choices, names::v_proj(0)), DType::F16);           // GGUF-name glob
  EXPECT_EQ(type_of(choices, names::v_proj(1)), DType::Q5_K);          // regex on the canonical name
  EXPECT_EQ(type_of(choices, names::q_proj(1)), DType::Q5_K);
  EXPECT_EQ(type_of(choices, names::v_proj(3)), DType::Q6_K);          // untouched: the preset's rule
  EXPECT_EQ(type_of(choices, names::attn_norm(1)), DType::F32);        // 1-D tensors are not overridden
  // An override still meets the row-length fallback.
  const Config narrow = llama_config(2, 128, 384, 8, 4, 2048, true);
  EXPECT_EQ(type_of(choose(narrow, QuantPreset::Q8_0, {parse_type_for("*q_proj*=q4_k")}), names::q_proj(0)),
            DType::Q5_0);
  EXPECT_TRUE(override_matches("blk.?.ffn_down.*", names::down_proj(7)));
  EXPECT_FALSE(override_matches("blk.?.ffn_down.*", names::down_proj(12)));
  EXPECT_EQ(gguf_tensor_name(names::o_proj(12)), "blk.12.attn_output.weight");
  EXPECT_EQ(gguf_tensor_name(names::ffn_norm(2)), "blk.2.ffn_norm.weight");
}

TEST(TypeSelection, RejectsBadOverrideSpecs) {
  for (const char* spec : {"", "=q4_k", "*down*", "*down*=", "*down*=q9_z", "*=i32", "re:([=q4_k"}) {
    try {
      parse_type_for(spec);
      ADD_FAILURE() << "accepted '" << spec << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage) << spec;
      EXPECT_NE(std::string(e.what()).find("--type-for"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(parse_keep(""), Error);
}

// The rules that depend on an importance matrix (the llama.cpp oracle below runs without one), read from
// llama-quant.cpp: IQ3_XXS keeps IQ3_XXS on attn_v and ffn_down with one (IQ3_S / Q4_K-Q3_K without), IQ4_XS
// gives the first eighth of ffn_down Q5_K only without one.
TEST(TypeSelection, IQuantRulesWithAndWithoutImportance) {
  const Config c = llama_config(16, 256, 768, 4, 2, 4096, false);
  const auto tensors = llama_tensors(c);
  auto pick = [&](QuantPreset p, bool importance) {
    TypeSelectionOptions o;
    o.preset = p;
    o.has_importance = importance;
    return select_tensor_types(c, tensors, o);
  };
  const auto with = pick(QuantPreset::IQ3_XXS, true), without = pick(QuantPreset::IQ3_XXS, false);
  EXPECT_EQ(type_of(with, names::v_proj(3)), DType::IQ3_XXS);
  EXPECT_EQ(type_of(without, names::v_proj(3)), DType::IQ3_S);
  EXPECT_EQ(type_of(with, names::down_proj(0)), DType::IQ3_XXS);
  EXPECT_EQ(type_of(without, names::down_proj(0)), DType::Q4_K);
  EXPECT_EQ(type_of(without, names::down_proj(5)), DType::Q3_K);
  EXPECT_EQ(type_of(with, names::q_proj(5)), DType::IQ2_S);
  EXPECT_EQ(type_of(with, names::o_proj(5)), DType::IQ3_S);
  EXPECT_EQ(type_of(with, names::kLmHead), DType::Q5_K);
  EXPECT_EQ(type_of(pick(QuantPreset::IQ4_XS, true), names::down_proj(1)), DType::IQ4_XS);
  EXPECT_EQ(type_of(pick(QuantPreset::IQ4_XS, false), names::down_proj(1)), DType::Q5_K);
  EXPECT_EQ(type_of(pick(QuantPreset::IQ4_XS, false), names::down_proj(2)), DType::IQ4_XS);
  // Rows that are not a multiple of 256 fall back to IQ4_NL (tinystories-656k: 128-wide).
  const Config narrow = llama_config(2, 128, 384, 8, 4, 2048, true);
  EXPECT_EQ(type_of(select_tensor_types(narrow, llama_tensors(narrow), {QuantPreset::IQ2_M, {}, true, NarrowRows::Llama}),
                    names::gate_proj(0)),
            DType::IQ4_NL);
}

// libllama's own choice for the same tensors must agree with slmopt's, for every preset.
TEST(TypeSelection, MatchesLlamaCppForEveryPreset) {
  SLMOPT_REQUIRE_LLAMA_CPP();
  struct Shape {
    const char* what;
    Config config;
  };
  Config seventy = llama_config(80, 8192, 28672, 64, 8, 32000, false);
  const std::vector<Shape> shapes = {
      {"llama-5m-kjv", llama_config(4, 256, 768, 4, 2, 4096, false)},
      {"tinystories-656k", llama_config(2, 128, 384, 8, 4, 2048, true)},
      {"7B, no GQA", llama_config(32, 4096, 11008, 32, 32, 32000, false)},
      {"8B, GQA 4", llama_config(32, 4096, 14336, 32, 8, 128256, false)},
      {"1B, 16 layers, tied", llama_config(16, 2048, 8192, 32, 8, 128256, true)},
      {"70B", seventy},
      {"12 layers", llama_config(12, 768, 2048, 12, 4, 32000, false)},
  };
  for (const auto& shape : shapes) {
    const auto tensors = llama_tensors(shape.config);
    std::vector<testing::GgufTensorShape> gguf;
    for (const auto& t : tensors)
      gguf.push_back({gguf_tensor_name(t.name), t.shape.back(), t.shape.size() > 1 ? t.shape[0] : 1});
    testing::LlamaModelShape ms{static_cast<uint32_t>(shape.config.hidden_size),
                                static_cast<uint32_t>(shape.config.intermediate_size),
                                static_cast<uint32_t>(shape.config.num_layers),
                                static_cast<uint32_t>(shape.config.num_heads),
                                static_cast<uint32_t>(shape.config.num_kv_heads),
                                static_cast<uint32_t>(shape.config.head_dim)};
    for (const auto& preset : quant_presets()) {
      TypeSelectionOptions o;
      o.preset = preset.preset;
      o.narrow_rows = NarrowRows::Llama;
      const auto ours = select_tensor_types(shape.config, tensors, o);
      const auto theirs = testing::llama_tensor_types(ms, gguf, preset.gguf_file_type);
      int compared = 0;
      for (size_t i = 0; i < tensors.size(); ++i) {
        if (theirs[i] < 0) {  // llama.cpp leaves it alone: a norm; slmopt stores F32
          EXPECT_EQ(ours[i].dtype, DType::F32) << tensors[i].name;
          continue;
        }
        ++compared;
        EXPECT_EQ(traits(ours[i].dtype).ggml_type, theirs[i])
            << shape.what << ", " << preset.name << ": " << tensors[i].name << " (" << gguf[i].name << ") slmopt "
            << dtype_name(ours[i].dtype) << " [" << ours[i].reason << "]";
      }
      EXPECT_EQ(compared, 2 + 7 * shape.config.num_layers - (shape.config.tie_word_embeddings ? 1 : 0));
    }
  }
}

}  // namespace
}  // namespace slmopt
