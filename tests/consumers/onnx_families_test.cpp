// The one ONNX graph builder against ONNX Runtime (onnxruntime-node, CPU) for every family of the decoder
// description: a small random-weight model per family (the family's block shape at shrunk sizes), exported as
// F32, run in ORT and compared with the double-precision reference in tests/unit/forward_reference.h:
// - logits of a 24-token sequence (longer than the 8-key sliding windows), the whole sequence in one run and token
//   by token through the KV cache: max |Δ| ≤ 1e-4 × logit range, argmax identical on every position;
// - greedy decoding of 27 tokens after a 5-token prompt (32 in all, four windows): ORT with its cache = ORT by
//   full recompute = the reference's greedy tokens;
// - F16, INT8 (QDQ) and INT4 (MatMulNBits, float activations) exports: ORT's logits match the reference run on
//   the same rounded / dequantized weights (same bounds);
// - --fused-ops (GroupQueryAttention): the same checks where the contrib op can express the family, and a clear
//   refusal where it cannot.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

#include "forward_reference.h"
#include "ort_consumer.h"
#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/onnx_export.h"
#include "slmopt/io/onnx_import.h"
#include "slmopt/ir/decoder_tensors.h"
#include "slmopt/ir/random_weights.h"
#include "slmopt/quant/int_quantize.h"
#include "test_support.h"

namespace slmopt {
namespace {

using testing::scratch_dir;

constexpr int64_t kWindow = 8;

// A Llama-shaped base: 3 layers, 4 query heads over 2 KV heads of 16 values, 97 tokens.
Config base_config() {
  Config c;
  c.family = "llama";
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_layers = 3;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 16;
  c.vocab_size = 97;
  c.max_position = 64;
  c.norm_eps = 1e-5;
  return c;
}

struct FamilyCase {
  const char* name;
  std::function<Config()> config;
};

// Each family's block shape (its modelling file and config.json conventions) at test sizes, edge values chosen
// to make each feature bite (small soft-caps, windows of 8). The Family tag only names the Hugging Face config
// written into the ONNX metadata; the graph reads the description.
const FamilyCase kFamilies[] = {
    {"llama32",
     [] {
       Config c = base_config();
       c.rope_theta = 500000;
       c.rope_scaling.type = RopeScalingType::Llama3;
       c.rope_scaling.factor = 32;
       c.rope_scaling.original_max_position = 16;  // small, so that all three frequency bands occur
       c.tie_word_embeddings = true;
       return c;
     }},
    {"llama_hd8",  // head_dim 8: GroupQueryAttention rejects it (issue 12 defect 3)
     [] {
       Config c = base_config();
       c.head_dim = 8;
       return c;
     }},
    {"smollm2",
     [] {
       Config c = base_config();
       c.rope_theta = 100000;
       c.tie_word_embeddings = true;
       return c;
     }},
    {"mistral",
     [] {
       Config c = base_config();
       c.family = "mistral";
       c.sliding_window = kWindow;
       return c;
     }},
    {"qwen2",
     [] {
       Config c = base_config();
       c.family = "qwen2";
       c.attention_bias = true;
       return c;
     }},
    {"qwen3",
     [] {
       Config c = base_config();
       c.family = "qwen3";
       c.head_dim = 32;  // Qwen3 sets head_dim apart from hidden / heads
       c.qk_norm = QkNormKind::PerHead;
       c.norm_eps = 1e-6;
       c.tie_word_embeddings = true;
       return c;
     }},
    {"phi2",
     [] {
       Config c = base_config();
       c.family = "phi2";
       c.num_kv_heads = 4;
       c.norm_kind = NormKind::LayerNorm;
       c.norm_bias = true;
       c.residual_layout = ResidualLayout::Parallel;
       c.mlp_kind = MlpKind::GeluTanh;
       c.head_dim = 32;
       c.rotary_dim = 16;  // partial_rotary_factor 0.5 (Phi-2: 0.4, 32 of 80)
       c.attention_bias = true;
       c.attention_out_bias = true;
       c.mlp_bias = true;
       c.lm_head_bias = true;
       return c;
     }},
    {"phi2_rot6",  // partial rotary that GroupQueryAttention cannot express (6 of 16 values)
     [] {
       Config c = base_config();
       c.family = "phi2";
       c.num_kv_heads = 4;
       c.norm_kind = NormKind::LayerNorm;
       c.norm_bias = true;
       c.residual_layout = ResidualLayout::Parallel;
       c.mlp_kind = MlpKind::GeluTanh;
       c.rotary_dim = 6;
       c.attention_bias = true;
       c.attention_out_bias = true;
       c.mlp_bias = true;
       c.lm_head_bias = true;  // PhiForCausalLM always has one; its config.json cannot say otherwise
       return c;
     }},
    {"phi3",
     [] {
       Config c = base_config();
       c.family = "phi3";
       c.rope_scaling.type = RopeScalingType::LongRope;
       c.rope_scaling.original_max_position = 32;
       c.rope_scaling.factor = 2;  // max_position / original_max_position
       c.rope_scaling.attention_factor = std::sqrt(1 + std::log(2.0) / std::log(32.0));
       for (int i = 0; i < 8; ++i) {
         c.rope_scaling.short_factor.push_back(1.0 + 0.05 * i);
         c.rope_scaling.long_factor.push_back(1.0 + 0.6 * i);
       }
       c.sliding_window = kWindow;  // Phi-3-mini's sliding_window, on every layer
       return c;
     }},
    {"gemma2",
     [] {
       Config c = base_config();
       c.family = "gemma2";
       c.norm_eps = 1e-6;
       c.norm_unit_offset = true;
       c.norm_placement = NormPlacement::Sandwich;
       c.mlp_kind = MlpKind::GeGluTanh;
       c.attn_scale = 1 / std::sqrt(24.0);  // query_pre_attn_scalar 24
       c.attn_softcap = 5;                   // small, so that the cap bends the random scores
       c.final_logit_softcap = 3;
       c.sliding_window = kWindow;
       c.layer_sliding = {1, 0, 1};  // even layers local
       c.embedding_scale = 8;        // sqrt(hidden_size)
       c.tie_word_embeddings = true;
       return c;
     }},
    {"gemma3",
     [] {
       Config c = base_config();
       c.family = "gemma3";
       c.norm_eps = 1e-6;
       c.norm_unit_offset = true;
       c.norm_placement = NormPlacement::Sandwich;
       c.mlp_kind = MlpKind::GeGluTanh;
       c.qk_norm = QkNormKind::PerHead;
       c.attn_scale = 1 / std::sqrt(16.0);
       c.sliding_window = kWindow;
       c.layer_sliding = {1, 1, 0};  // sliding_window_pattern: every third layer global
       c.rope_theta = 1000000;
       c.rope_local_theta = 10000;
       c.rope_scaling.type = RopeScalingType::Linear;  // global layers only
       c.rope_scaling.factor = 8;
       c.embedding_scale = 8;
       c.tie_word_embeddings = true;
       return c;
     }},
    {"smollm3",
     [] {
       Config c = base_config();
       c.family = "smollm3";
       c.num_layers = 4;
       c.layer_no_rope = {0, 0, 0, 1};  // no_rope_layer_interval 4
       c.rope_theta = 2000000;
       c.tie_word_embeddings = true;
       return c;
     }},
    {"granite",
     [] {
       Config c = base_config();
       c.family = "granite";
       c.embedding_scale = 12;
       c.residual_scale = 0.22;
       c.attn_scale = 0.015625;
       c.logit_scale = 1.0 / 8;
       c.tie_word_embeddings = true;
       return c;
     }},
    {"olmo2",
     [] {
       Config c = base_config();
       c.family = "olmo2";
       c.norm_eps = 1e-6;
       c.norm_placement = NormPlacement::Post;
       c.qk_norm = QkNormKind::Whole;
       c.rope_theta = 500000;
       return c;
     }},
    {"gpt2",
     [] {
       Config c = base_config();
       c.family = "gpt2";  // GPT-2 now loads onto canonical names and exports through the one builder
       c.architecture = "GPT2LMHeadModel";
       c.num_kv_heads = 4;
       c.position_kind = PositionKind::Learned;
       c.norm_kind = NormKind::LayerNorm;
       c.norm_bias = true;
       c.mlp_kind = MlpKind::GeluTanh;
       c.attention_bias = true;
       c.attention_out_bias = true;
       c.mlp_bias = true;
       c.tie_word_embeddings = true;
       return c;
     }},
};

std::vector<int32_t> random_ids(size_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(n);
  for (int32_t& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  return ids;
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

struct Agreement {
  double max_diff = 0, range = 0;
  int64_t argmax_agree = 0, rows = 0;
};

Agreement compare(const testing::DoubleRows& reference, const RowMatrix& got) {
  Agreement a;
  a.rows = static_cast<int64_t>(reference.size());
  double lo = 1e300, hi = -1e300;
  for (int64_t r = 0; r < a.rows; ++r) {
    const auto& row = reference[static_cast<size_t>(r)];
    size_t best_ref = 0, best_got = 0;
    for (size_t j = 0; j < row.size(); ++j) {
      lo = std::min(lo, row[j]);
      hi = std::max(hi, row[j]);
      a.max_diff = std::max(a.max_diff, std::abs(row[j] - static_cast<double>(got(r, static_cast<int64_t>(j)))));
      if (row[j] > row[best_ref]) best_ref = j;
      if (got(r, static_cast<int64_t>(j)) > got(r, static_cast<int64_t>(best_got))) best_got = j;
    }
    a.argmax_agree += best_ref == best_got;
  }
  a.range = hi - lo;
  return a;
}

// Float graphs: max |Δ| ≤ `bound` × logit range (1e-4) and argmax on every row; looser graphs state their own
// bound and the share of rows whose argmax must agree.
void expect_agreement(const testing::DoubleRows& reference, const RowMatrix& got, const std::string& what,
                      double bound = 1e-4, double argmax_share = 1.0) {
  const Agreement a = compare(reference, got);
  EXPECT_LE(a.max_diff, bound * a.range) << what << ": max |Δ| " << a.max_diff << ", logit range " << a.range;
  EXPECT_GE(static_cast<double>(a.argmax_agree), argmax_share * static_cast<double>(a.rows))
      << what << ": argmax agrees on " << a.argmax_agree << " of " << a.rows;
  std::printf("[ family %-22s] max |Δlogit| %.3g (%.2g × range %.3g), argmax %lld/%lld\n", what.c_str(), a.max_diff,
              a.max_diff / a.range, a.range, static_cast<long long>(a.argmax_agree), static_cast<long long>(a.rows));
}

// Full and stepwise logits and greedy decoding of `model`'s export against the reference.
void check_export(const Model& model, const std::string& dir, const std::string& label, bool fused) {
  OnnxExportOptions options;
  options.fused_ops = fused;
  const std::string onnx = dir + "/model.onnx";
  export_onnx(model, onnx, options);

  const std::vector<int32_t> ids = random_ids(24, model.config.vocab_size, 7);
  testing::write_token_json(dir + "/ids.json", ids);
  const testing::DoubleRows expected = testing::reference_logits(model, ids);
  const int64_t vocab = model.config.vocab_size, n = static_cast<int64_t>(ids.size());
  for (const char* mode : {"full", "step"}) {
    const std::string out = dir + "/logits_" + mode + ".f32";
    testing::run_ort_harness("--model " + quoted(onnx) + " --tokens " + quoted(dir + "/ids.json") + " --mode " + mode +
                             " --logits-out " + quoted(out));
    expect_agreement(expected, testing::read_logits(out, n, vocab), label + " " + mode);
  }

  const std::vector<int32_t> prompt = random_ids(5, vocab, 11);
  testing::write_token_json(dir + "/prompt.json", prompt);
  const auto gen = testing::run_ort_harness("--model " + quoted(onnx) + " --tokens " + quoted(dir + "/prompt.json") +
                                            " --generate 27");
  const auto cached = gen["cached"].get<std::vector<int32_t>>();
  EXPECT_EQ(cached, gen["recompute"].get<std::vector<int32_t>>()) << label << ": ORT cache ≠ ORT recompute";
  const std::vector<int32_t> reference = testing::reference_greedy(model, prompt, 27);
  EXPECT_EQ(cached, reference) << label << ": ORT greedy tokens ≠ reference";
  size_t same = 0;
  for (size_t i = 0; i < std::min(cached.size(), reference.size()); ++i) same += cached[i] == reference[i];
  std::printf("[ family %-22s] greedy 27 tokens: cache = recompute %s, = reference %zu/27\n", label.c_str(),
              cached == gen["recompute"].get<std::vector<int32_t>>() ? "yes" : "NO", same);
}

// What GroupQueryAttention rejects (measured in ORT, see onnx_export_fused.cpp); empty when a fused graph runs.
std::string fused_refusal_expected(const Config& c) {
  if (c.head_dim % 16 != 0) return "head_dim not a multiple of 16";
  if (c.position_kind == PositionKind::Rope && c.rotary_dims() % 16 != 0) return "rotary width not a multiple of 16";
  return "";
}

class OrtFamilies : public ::testing::TestWithParam<FamilyCase> {};

TEST_P(OrtFamilies, Fp32ExportMatchesReferenceFullStepAndGreedy) {
  SLMOPT_REQUIRE_ORT();
  const Model model = random_model(GetParam().config(), DType::F32, 1234);
  check_export(model, scratch_dir(std::string("ort_family_") + GetParam().name), GetParam().name, false);
}

TEST_P(OrtFamilies, FusedExportMatchesReferenceOrRefuses) {
  SLMOPT_REQUIRE_ORT();
  const Model model = random_model(GetParam().config(), DType::F32, 1234);
  const std::string dir = scratch_dir(std::string("ort_family_fused_") + GetParam().name);
  const Config& c = model.config;
  if (!fused_refusal_expected(c).empty()) {
    OnnxExportOptions options;
    options.fused_ops = true;
    try {
      export_onnx(model, dir + "/model.onnx", options);
      ADD_FAILURE() << "a fused export of " << GetParam().name << " should be refused";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--fused-ops cannot express"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("multiple of 16"), std::string::npos) << e.what();
      EXPECT_FALSE(std::filesystem::exists(dir + "/model.onnx"));
    }
    return;
  }
  check_export(model, dir, std::string(GetParam().name) + " fused", true);
}

TEST_P(OrtFamilies, QuantizedExportsMatchReferenceOnTheirWeights) {
  SLMOPT_REQUIRE_ORT();
  const Model model = random_model(GetParam().config(), DType::F32, 1234);
  const std::string dir = scratch_dir(std::string("ort_family_quant_") + GetParam().name);
  const std::vector<int32_t> ids = random_ids(20, model.config.vocab_size, 3);
  testing::write_token_json(dir + "/ids.json", ids);
  struct Case {
    const char* name;
    OnnxWeightType type;
    IntQuantizeOptions quant;  // bits 0: F16
  };
  for (const Case& c : {Case{"f16", OnnxWeightType::F16, {0, 0, true}}, Case{"int8", OnnxWeightType::Int8, {8, 0, true}},
                        Case{"int4", OnnxWeightType::Int4, {4, 32, false}}}) {
    OnnxExportOptions options;
    options.weight_type = c.type;
    options.accuracy_level = 0;  // MatMulNBits in float, so the reference on dequantized weights is exact
    IntQuantizedWeights quantized;
    Model reference = model;
    if (c.quant.bits != 0) {
      quantized = quantize_linear_weights_rtn(model, c.quant);
      options.quantized = &quantized;
      reference = with_dequantized_weights(model, quantized);
    } else {  // every matrix (linears and tables) travels as fp16
      for (const Tensor* t : model.ordered_tensors())
        if (t->rank() == 2) reference.set(Tensor::from_f32_as(t->name(), t->shape(), t->to_f32(), DType::F16));
    }
    const std::string path = dir + "/" + c.name + "/model.onnx";
    export_onnx(model, path, options);
    testing::run_ort_harness("--model " + quoted(path) + " --tokens " + quoted(dir + "/ids.json") + " --logits-out " +
                             quoted(dir + "/" + c.name + ".f32"));
    // INT8 (DequantizeLinear → MatMul) comes out of ORT ≈ 1 % of the logit range away from float arithmetic on
    // the dequantized weights on every family, the bundled llama models included (the pre-existing NLL check
    // allows 1 %). The whole difference is ORT's graph optimizer: the llama32 file run with
    // graphOptimizationLevel 'disabled' differs from 'all' by 0.323, the full Δ measured here (INT4: 0).
    // F16 and INT4 at accuracy_level 0 agree to rounding.
    const bool int8 = c.type == OnnxWeightType::Int8;
    expect_agreement(testing::reference_logits(reference, ids),
                     testing::read_logits(dir + "/" + c.name + ".f32", 20, model.config.vocab_size),
                     std::string(GetParam().name) + " " + c.name, int8 ? 0.03 : 1e-4, int8 ? 0.9 : 1.0);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, OrtFamilies, ::testing::ValuesIn(kFamilies),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

// LongRoPE beyond original_max_position: a 40-token run (positions up to 39 ≥ 32) uses the long factors, as
// Hugging Face's Phi-3 does for a call whose positions pass the original context.
TEST(OrtFamiliesLongRope, RunPastOriginalContextUsesLongFactors) {
  SLMOPT_REQUIRE_ORT();
  const auto* phi3 = std::find_if(std::begin(kFamilies), std::end(kFamilies),
                                  [](const FamilyCase& f) { return std::string(f.name) == "phi3"; });
  const Model model = random_model(phi3->config(), DType::F32, 99);
  ASSERT_EQ(model.config.rope_scaling.type, RopeScalingType::LongRope);
  const std::string dir = scratch_dir("ort_family_phi3_long");
  OnnxExportOptions options;
  export_onnx(model, dir + "/model.onnx", options);
  const std::vector<int32_t> ids = random_ids(40, model.config.vocab_size, 5);
  testing::write_token_json(dir + "/ids.json", ids);
  testing::run_ort_harness("--model " + quoted(dir + "/model.onnx") + " --tokens " + quoted(dir + "/ids.json") +
                           " --logits-out " + quoted(dir + "/l.f32"));
  expect_agreement(testing::reference_logits(model, ids),
                   testing::read_logits(dir + "/l.f32", 40, model.config.vocab_size), "phi3 longrope 40");
}

// ---- the real config.json of each family (tests/families, shrunk sizes), read by the Hugging Face loader ----

const char* const kFamilyConfigs[] = {"phi2",     "phi3-mini-4k", "phi3.5-mini", "phi4-mini", "qwen3",
                                      "gemma2",   "gemma3-1b",    "smollm2",     "smollm3",   "llama3.2",
                                      "granite3", "olmo2",        "mistral",   "gpt2"};

class OrtFamilyConfigs : public ::testing::TestWithParam<const char*> {};

// The family's config.json → description → random weights → ONNX: ORT full/step logits and greedy decoding
// against the reference, the fused graph (or its refusal), and load_onnx restoring the same model.
TEST_P(OrtFamilyConfigs, ExportRunsInOrtAndReimports) {
  SLMOPT_REQUIRE_ORT();
  const std::string folder = testing::source_dir() + "/tests/families/" + GetParam();
  Config config = parse_hf_config(read_text_file(folder + "/config.json"), folder + "/config.json");
  // Only the length of the baked RoPE tables depends on max_position (the LongRoPE factors and attention_factor
  // are already derived from the file's values); 256 positions keep the files small.
  config.max_position = std::min<int64_t>(config.max_position, 256);
  const Model model = random_model(config, DType::F32, 4321);
  const std::string dir = scratch_dir(std::string("ort_family_config_") + GetParam());
  check_export(model, dir + "/f32", std::string(GetParam()), false);

  const std::string why = fused_refusal_expected(model.config);
  if (why.empty()) {
    check_export(model, dir + "/fused", std::string(GetParam()) + " fused", true);
  } else {
    OnnxExportOptions options;
    options.fused_ops = true;
    EXPECT_THROW(export_onnx(model, dir + "/fused/model.onnx", options), Error) << why;
    EXPECT_FALSE(std::filesystem::exists(dir + "/fused/model.onnx"));
  }

  // load_onnx: the same description (as config.json states it) and the same weights; (1 + w) norm weights come
  // back within a float rounding of 1 (folded into the file, unfolded on import).
  const Model back = load_onnx(dir + "/f32/model.onnx");
  EXPECT_EQ(hf_config_json(back.config, back.vocab, std::nullopt), hf_config_json(model.config, model.vocab, std::nullopt));
  EXPECT_EQ(back.tensors().size(), model.tensors().size());
  for (const auto& [name, t] : model.tensors()) {
    ASSERT_TRUE(back.has(name)) << name;
    const std::vector<float> a = t.to_f32(), b = back.tensor(name).to_f32();
    ASSERT_EQ(a.size(), b.size()) << name;
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
    EXPECT_LE(worst, model.config.norm_unit_offset ? 1.2e-7 : 0.0) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, OrtFamilyConfigs, ::testing::ValuesIn(kFamilyConfigs), [](const auto& param_info) {
  std::string n = param_info.param;
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
});

}  // namespace
}  // namespace slmopt
