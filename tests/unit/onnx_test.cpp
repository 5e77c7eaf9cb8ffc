// ONNX export (and import) structure: Debian's ONNX 1.12 checker accepts every standard-op export, external data
// moves the weights out and stays valid, the graph interface carries the documented names and shapes, errors
// are clear; RTN integer quantization round-trips within its step size. Numerical agreement with ONNX Runtime
// is checked in tests/consumers/onnx_ort_test.cpp.
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "slmopt/core/error.h"
#include "slmopt/exec/rope.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/io/onnx_export.h"
#include "slmopt/io/onnx_folder.h"
#include "slmopt/io/onnx_import.h"
#include "slmopt/ir/rope_frequencies.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/quant/block_quantize.h"
#include "slmopt/quant/int_quantize.h"
#include "family_configs.h"
#include "slmopt/ir/random_weights.h"
#include "synthetic_llama.h"
#include "test_support.h"

namespace slmopt {
namespace {

using testing::model_path;
using testing::scratch_dir;

onnx::ModelProto read_proto(const std::string& path) {
  onnx::ModelProto proto;
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(proto.ParseFromIstream(&f)) << path;
  return proto;
}

// The checker, then strict shape inference with type checks (which catches element-type mismatches between
// nodes that the checker alone does not); logits must come out as [batch, sequence, vocab] float.
void expect_valid_onnx(const std::string& path, int64_t vocab) {
  EXPECT_NO_THROW(onnx::checker::check_model(path)) << path;
  onnx::ModelProto proto = read_proto(path);
  try {
    onnx::shape_inference::InferShapes(proto, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, true));
  } catch (const std::exception& e) {
    ADD_FAILURE() << path << ": shape inference failed: " << e.what();
    return;
  }
  const auto& logits = proto.graph().output(0).type().tensor_type();
  EXPECT_EQ(logits.elem_type(), onnx::TensorProto::FLOAT);
  ASSERT_EQ(logits.shape().dim_size(), 3);
  EXPECT_EQ(logits.shape().dim(2).dim_value(), vocab);
}

TEST(OnnxExport, StandardOpExportsPassTheOnnxCheckerAndShapeInference) {
  for (const char* source : {"tinystories-656k", "capp-gpt2-onnx/model.onnx"}) {
    SCOPED_TRACE(source);
    const Model model = load_model(model_path(source));
    const std::string dir = scratch_dir("onnx_checker");
    const IntQuantizedWeights int8 = quantize_linear_weights_rtn(model, {8, 0, true});
    for (OnnxWeightType type :
         {OnnxWeightType::F32, OnnxWeightType::F16, OnnxWeightType::Int8, OnnxWeightType::Int8Dynamic}) {
      OnnxExportOptions options;
      options.weight_type = type;
      options.quantized = &int8;
      const std::string path = dir + "/" + onnx_weight_type_name(type) + "/model.onnx";
      export_onnx(model, path, options);
      expect_valid_onnx(path, model.config.vocab_size);
    }
  }
}

// int8-dynamic stores its weights as uint8 so that ONNX Runtime multiplies u8·u8 (its u8·s8 kernels saturate on x86
// without VNNI: onnx_export_ops.cpp); the weight-only QDQ export keeps int8, the type ORT's QDQ fusions expect.
TEST(OnnxExport, Int8DynamicStoresUint8WeightsAndQdqInt8) {
  const Model model = load_model(model_path("tinystories-656k"));
  const std::string dir = scratch_dir("onnx_int8_storage");
  const IntQuantizedWeights int8 = quantize_linear_weights_rtn(model, {8, 0, true});
  for (const auto& [type, element] : {std::pair{OnnxWeightType::Int8Dynamic, onnx::TensorProto::UINT8},
                                      std::pair{OnnxWeightType::Int8, onnx::TensorProto::INT8}}) {
    SCOPED_TRACE(onnx_weight_type_name(type));
    OnnxExportOptions options;
    options.weight_type = type;
    options.quantized = &int8;
    const std::string path = dir + "/" + onnx_weight_type_name(type) + "/model.onnx";
    export_onnx(model, path, options);
    const onnx::ModelProto proto = read_proto(path);
    std::map<std::string, int32_t> element_of;
    for (const auto& t : proto.graph().initializer()) element_of[t.name()] = t.data_type();
    size_t weights = 0;
    for (const auto& [name, code] : int8) {
      ASSERT_TRUE(element_of.count(name)) << name;
      EXPECT_EQ(element_of[name], element) << name;
      EXPECT_EQ(element_of[name + "_zero_point"], element) << name;
      ++weights;
    }
    EXPECT_EQ(weights, 2u * 7u);  // unit/onnx_quantized_import_test.cpp reads both back as the same weights
  }
}

TEST(OnnxExport, GraphInterfaceHasDocumentedNamesAndSymbolicDims) {
  const Model model = load_model(model_path("llama-5m-kjv"));
  const std::string path = scratch_dir("onnx_interface") + "/model.onnx";
  const OnnxExportResult result = export_onnx(model, path);
  const onnx::ModelProto proto = read_proto(path);
  const auto& g = proto.graph();
  std::vector<std::string> inputs, outputs;
  for (const auto& i : g.input()) inputs.push_back(i.name());
  for (const auto& o : g.output()) outputs.push_back(o.name());
  ASSERT_EQ(inputs.size(), 3u + 2u * 4u);
  EXPECT_EQ(inputs[0], "input_ids");
  EXPECT_EQ(inputs[1], "attention_mask");
  EXPECT_EQ(inputs[2], "position_ids");
  EXPECT_EQ(inputs[3], "past_key_values.0.key");
  EXPECT_EQ(inputs[10], "past_key_values.3.value");
  ASSERT_EQ(outputs.size(), 1u + 2u * 4u);
  EXPECT_EQ(outputs[0], "logits");
  EXPECT_EQ(outputs[8], "present.3.value");
  const auto& past_shape = g.input(3).type().tensor_type().shape();
  ASSERT_EQ(past_shape.dim_size(), 4);
  EXPECT_EQ(past_shape.dim(0).dim_param(), "batch_size");
  EXPECT_EQ(past_shape.dim(1).dim_value(), 2);  // KV heads
  EXPECT_EQ(past_shape.dim(2).dim_param(), "past_sequence_length");
  EXPECT_EQ(past_shape.dim(3).dim_value(), 64);
  EXPECT_EQ(proto.opset_import(0).version(), 17);
  EXPECT_FALSE(result.external_data);
  // Weights: 4 layers × (q 256² + k,v 2·128·256 + o 256² + 3·256·768) + embedding and head 2·4096·256, float32.
  const uint64_t params = 4 * (256 * 256 * 2 + 2 * 128 * 256 + 3 * 256 * 768) + 2 * 4096 * 256;
  EXPECT_GE(result.weight_bytes, params * 4);
  EXPECT_LE(result.weight_bytes, params * 4 + (1u << 20));  // + norms, RoPE tables, constants
  // export_onnx writes the graph only; the folder around it is io/onnx_folder.h's (onnx_folder_test.cpp).
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(path).parent_path() / "genai_config.json"));
}

// genai_config.json's model.type is what onnxruntime-genai's model builder writes for the family (one of the
// runtime's LLM types): the class name before "For", lower-cased; Gemma3ForCausalLM → gemma3_text ("gemma3" is
// the vision-language type), OLMo-2 → olmo (the builder's replacement: the runtime has no "olmo2").
TEST(OnnxExport, GenaiModelTypeIsTheOneOnnxruntimeGenaiUsesForEachFamily) {
  const std::map<std::string, std::string> expected = {
      {"llama3.2", "llama"}, {"smollm2", "llama"},        {"mistral", "mistral"},    {"phi2", "phi"},
      {"phi3-mini-4k", "phi3"}, {"phi3.5-mini", "phi3"}, {"phi4-mini", "phi3"},     {"qwen3", "qwen3"},
      {"gemma2", "gemma2"},  {"gemma3-1b", "gemma3_text"}, {"smollm3", "smollm3"}, {"granite3", "granite"},
      {"olmo2", "olmo"},     {"gpt2", "gpt2"}};
  EXPECT_EQ(testing::family_folders().size(), expected.size()) << "a family config without an expected genai type";
  const std::string dir = scratch_dir("onnx_genai_types");
  for (const std::string& folder : testing::family_folders()) {
    Config config = testing::family_config(folder);
    config.vocab_size = 512;  // the type does not depend on the vocabulary; keeps the files small
    export_onnx_folder(random_model(config, DType::F32, 3), dir + "/" + folder, OnnxExportOptions{});
    const auto genai = nlohmann::json::parse(std::ifstream(dir + "/" + folder + "/genai_config.json"));
    ASSERT_TRUE(expected.count(folder)) << folder;
    EXPECT_EQ(genai["model"]["type"], expected.at(folder)) << folder;
  }
  std::filesystem::remove_all(dir);
}

TEST(OnnxExport, ExternalDataBelowThresholdMovesWeightsOut) {
  const Model model = load_model(model_path("tinystories-656k"));
  const std::string dir = scratch_dir("onnx_external");
  OnnxExportOptions options;
  options.external_data_threshold = 1 << 20;  // the model has ~2.6 MB of weights
  const OnnxExportResult result = export_onnx(model, dir + "/model.onnx", options);
  ASSERT_TRUE(result.external_data);
  const auto data_size = std::filesystem::file_size(dir + "/model.onnx_data");
  EXPECT_GE(data_size, result.weight_bytes - 64 * 1024);
  EXPECT_LT(std::filesystem::file_size(dir + "/model.onnx"), 64u * 1024u);
  EXPECT_NO_THROW(onnx::checker::check_model(dir + "/model.onnx"));
  const onnx::ModelProto proto = read_proto(dir + "/model.onnx");
  int external = 0;
  for (const auto& t : proto.graph().initializer()) {
    if (t.data_location() != onnx::TensorProto::EXTERNAL) continue;
    ++external;
    std::map<std::string, std::string> kv;
    for (const auto& e : t.external_data()) kv[e.key()] = e.value();
    EXPECT_EQ(kv["location"], "model.onnx_data");
    EXPECT_EQ(std::stoull(kv["offset"]) % 64, 0u) << t.name();
    EXPECT_LE(std::stoull(kv["offset"]) + std::stoull(kv["length"]), data_size) << t.name();
  }
  EXPECT_GE(external, 2 * 7 + 1);  // every linear weight and the embedding
  // Above the threshold nothing moves.
  options.external_data_threshold = 1ull << 40;
  EXPECT_FALSE(export_onnx(model, dir + "/inline/model.onnx", options).external_data);
  EXPECT_FALSE(std::filesystem::exists(dir + "/inline/model.onnx_data"));
}

TEST(OnnxExport, QuantizedTypesNeedMatchingQuantizedWeights) {
  const Model model = testing::make_random_llama(testing::llama_config(64, 128, 1, 4, 2, 16, 50), 7);
  const std::string path = scratch_dir("onnx_errors") + "/model.onnx";
  OnnxExportOptions options;
  options.weight_type = OnnxWeightType::Int4;
  try {
    export_onnx(model, path, options);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("int4"), std::string::npos) << e.what();
  }
  const IntQuantizedWeights int8 = quantize_linear_weights_rtn(model, {8, 0, true});
  options.quantized = &int8;  // 8-bit codes for a 4-bit export
  EXPECT_THROW(export_onnx(model, path, options), Error);
  const IntQuantizedWeights int4 = quantize_linear_weights_rtn(model, {4, 32, true});
  options.weight_type = OnnxWeightType::Int8;  // blocked 4-bit codes for a per-channel int8 export
  options.quantized = &int4;
  EXPECT_THROW(export_onnx(model, path, options), Error);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(OnnxExport, RopeTablesUseTheForwardPassFrequencies) {
  Config c = testing::llama_config(64, 128, 1, 4, 2, 16, 50);
  for (RopeScalingType type : {RopeScalingType::None, RopeScalingType::Linear, RopeScalingType::Llama3}) {
    c.rope_scaling.type = type;
    c.rope_scaling.factor = 8.0;
    c.rope_scaling.original_max_position = 64;
    EXPECT_EQ(config_rope_inverse_frequencies(c), rope_inverse_frequencies(c));
  }
}

TEST(OnnxExport, WeightTypeNames) {
  for (OnnxWeightType t : {OnnxWeightType::F32, OnnxWeightType::F16, OnnxWeightType::Int8, OnnxWeightType::Int8Dynamic,
                           OnnxWeightType::Int4})
    EXPECT_EQ(onnx_weight_type_from_name(onnx_weight_type_name(t)), t);
  EXPECT_EQ(onnx_weight_type_from_name("INT4"), OnnxWeightType::Int4);
  EXPECT_FALSE(onnx_weight_type_from_name("q4_k").has_value());
  EXPECT_EQ(onnx_weight_type_bits(OnnxWeightType::Int8Dynamic), 8);
  EXPECT_EQ(onnx_weight_type_bits(OnnxWeightType::F16), 0);
}

TEST(IntQuantize, Q4_0BlocksRepackWithoutLoss) {
  Model model = load_model(model_path("tinystories-656k"));
  const Tensor& w = model.tensor(names::down_proj(0));
  model.set(quantize_tensor(w, DType::Q4_0, nullptr));
  const IntQuantizedWeights q = int_weights_from_q4_0(model);
  ASSERT_EQ(q.size(), 1u);
  const IntQuantizedWeight& down = q.at(names::down_proj(0));
  down.check("down");
  EXPECT_EQ(down.block_size, 32);
  EXPECT_TRUE(down.symmetric());
  EXPECT_EQ(down.dequantize(), model.tensor(names::down_proj(0)).to_f32());
}

TEST(IntQuantize, RoundTripErrorWithinHalfAStep) {
  std::vector<float> w(8 * 96);
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = std::sin(static_cast<float>(i) * 0.37f) * (1.0f + static_cast<float>(i % 7));
  for (bool symmetric : {true, false})
    for (int bits : {4, 8})
      for (int64_t block : {int64_t{0}, int64_t{32}}) {
        const IntQuantizedWeight q = quantize_int_rtn(w, 8, 96, {bits, block, symmetric});
        q.check("test");
        EXPECT_EQ(q.symmetric(), symmetric);
        const std::vector<float> d = q.dequantize();
        for (int64_t r = 0; r < 8; ++r)
          for (int64_t c = 0; c < 96; ++c) {
            const float scale = q.scales[static_cast<size_t>(r * q.blocks() + c / q.block_size)];
            const size_t i = static_cast<size_t>(r * 96 + c);
            ASSERT_LE(std::abs(d[i] - w[i]), 0.5f * scale * 1.0001f + 1e-7f)
                << "bits " << bits << " block " << block << " symmetric " << symmetric << " at " << r << "," << c;
          }
      }
}

TEST(IntQuantize, SymmetricCodesCentreOnTheMidpointAndZeroBlocksStayZero) {
  std::vector<float> w(64, 0.0f);
  w[40] = -2.0f;
  w[41] = 0.9f;
  const IntQuantizedWeight q = quantize_int_rtn(w, 1, 64, {4, 32, true});
  EXPECT_EQ(q.scales[0], 0.0f);
  EXPECT_FLOAT_EQ(q.scales[1], 2.0f / 7.0f);
  EXPECT_EQ(q.codes[0], 8);
  EXPECT_EQ(q.codes[40], 1);   // −2 / (2/7) = −7 → 8 − 7
  EXPECT_EQ(q.codes[41], 11);  // 0.9 / (2/7) = 3.15 → 3 → 8 + 3
  const std::vector<float> d = q.dequantize();
  EXPECT_FLOAT_EQ(d[40], -2.0f);
  EXPECT_EQ(d[0], 0.0f);
}

}  // namespace
}  // namespace slmopt

// ---- import ----------------------------------------------------------------------------------------------

namespace slmopt {
namespace {

void expect_same_values(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape()) << a.name();
  EXPECT_EQ(a.to_f32(), b.to_f32()) << a.name();
}

TEST(OnnxImport, CappGpt2LoadsWithItsConfigAndTransposedConv1D) {
  const Model model = load_model(model_path("capp-gpt2-onnx/model.onnx"));
  const Config& c = model.config;
  EXPECT_EQ(c.family, "gpt2");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_layers, 4);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.intermediate_size, 256);
  EXPECT_EQ(c.vocab_size, 53);
  EXPECT_EQ(c.max_position, 512);
  EXPECT_EQ(model.source_format, "onnx");
  // Canonical names: c_attn [192, 64] split into q/k/v, mlp.c_proj is down_proj (io/hf_gpt2.h).
  EXPECT_EQ(model.tensor(names::v_proj(0)).shape(), (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(model.tensor(names::down_proj(3)).shape(), (std::vector<int64_t>{64, 256}));
  EXPECT_EQ(model.tensors().size(), 2u + 4u * 16u + 2u);
  EXPECT_EQ(model.vocab.kind, VocabKind::None);
}

TEST(OnnxImport, Gpt2ConfigIsInferredWithoutConfigJson) {
  const std::string dir = scratch_dir("onnx_gpt2_noconfig");
  std::filesystem::copy_file(model_path("capp-gpt2-onnx/model.onnx"), dir + "/model.onnx");
  const Model inferred = load_onnx(dir + "/model.onnx");
  const Model reference = load_model(model_path("capp-gpt2-onnx/model.onnx"));
  EXPECT_EQ(inferred.config.num_heads, 4);
  EXPECT_EQ(inferred.config.intermediate_size, reference.config.intermediate_size);
  EXPECT_EQ(inferred.config.max_position, reference.config.max_position);
  EXPECT_DOUBLE_EQ(inferred.config.norm_eps, 1e-5);
}

TEST(OnnxImport, SlmoptExportsRoundTripExactly) {
  for (const char* folder : {"tinystories-656k", "llama-5m-kjv", "capp-gpt2-onnx/model.onnx"}) {
    SCOPED_TRACE(folder);
    const Model original = load_model(model_path(folder));
    const std::string dir = scratch_dir("onnx_roundtrip");
    OnnxExportOptions options;
    options.external_data_threshold = 1 << 20;  // also exercises external data for the larger models
    export_onnx_folder(original, dir + "/export", options);  // the tokenizer travels in the folder
    const Model back = load_model(dir + "/export");
    EXPECT_EQ(back.config.family, original.config.family);
    EXPECT_EQ(back.config.num_kv_heads, original.config.num_kv_heads);
    EXPECT_EQ(back.config.rope_theta, original.config.rope_theta);
    EXPECT_EQ(back.config.norm_eps, original.config.norm_eps);
    EXPECT_EQ(back.config.tie_word_embeddings, original.config.tie_word_embeddings);
    ASSERT_EQ(back.tensors().size(), original.tensors().size());
    for (const auto& [name, t] : original.tensors()) expect_same_values(t, back.tensor(name));
    EXPECT_EQ(back.vocab.tokens, original.vocab.tokens);
  }
}

TEST(OnnxImport, Fp16ExportImportsAsRoundedWeights) {
  const Model original = load_model(model_path("tinystories-656k"));
  const std::string dir = scratch_dir("onnx_f16_import");
  OnnxExportOptions options;
  options.weight_type = OnnxWeightType::F16;
  export_onnx(original, dir + "/model.onnx", options);
  const Model back = load_model(dir + "/model.onnx");
  const Tensor& q = original.tensor(names::q_proj(1));
  const Tensor rounded = Tensor::from_f32_as(q.name(), q.shape(), q.to_f32(), DType::F16);
  expect_same_values(rounded, back.tensor(q.name()));
}

TEST(OnnxImport, ReadsItsInt4ExportRefusesUnknownAndBrokenFiles) {
  const Model model = load_model(model_path("tinystories-656k"));
  const std::string dir = scratch_dir("onnx_refuse");
  const IntQuantizedWeights q = quantize_linear_weights_rtn(model, {4, 32, true});
  OnnxExportOptions options;
  options.weight_type = OnnxWeightType::Int4;
  options.quantized = &q;
  export_onnx(model, dir + "/q/model.onnx", options);
  auto expect_error = [](const std::string& path, ErrorKind kind, const std::string& fragment) {
    try {
      load_model(path);
      ADD_FAILURE() << path << ": expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), kind) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  // slmopt's own int4 export loads (dequantized; onnx_quantized_import_test.cpp checks the values), a tied model
  // included.
  EXPECT_NO_THROW(load_model(dir + "/q/model.onnx"));

  // A graph whose weights follow no known naming.
  onnx::ModelProto proto;
  proto.set_ir_version(8);
  auto* init = proto.mutable_graph()->add_initializer();
  init->set_name("encoder.weight");
  init->set_data_type(onnx::TensorProto::FLOAT);
  init->add_dims(1);
  init->add_float_data(1.0f);
  std::string bytes;
  proto.SerializeToString(&bytes);
  std::ofstream(dir + "/unknown.onnx", std::ios::binary) << bytes;
  expect_error(dir + "/unknown.onnx", ErrorKind::Unsupported, "unrecognised ONNX graph");

  // Truncated file.
  std::ifstream in(model_path("capp-gpt2-onnx/model.onnx"), std::ios::binary);
  std::string capp((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(dir + "/truncated.onnx", std::ios::binary) << capp.substr(0, capp.size() / 2);
  expect_error(dir + "/truncated.onnx", ErrorKind::BadInput, "truncated.onnx");

  // An int8-dynamic export (uint8 weights) whose zero points claim int8: the codes would be read with the wrong
  // sign, so the file is refused, naming both types.
  OnnxExportOptions dynamic;
  const IntQuantizedWeights q8 = quantize_linear_weights_rtn(model, {8, 0, true});
  dynamic.weight_type = OnnxWeightType::Int8Dynamic;
  dynamic.quantized = &q8;
  export_onnx(model, dir + "/dyn/model.onnx", dynamic);
  onnx::ModelProto mixed = read_proto(dir + "/dyn/model.onnx");
  int retyped = 0;
  for (auto& t : *mixed.mutable_graph()->mutable_initializer()) {
    if (retyped == 0 && t.name().ends_with("_zero_point")) {
      ASSERT_EQ(t.data_type(), onnx::TensorProto::UINT8) << t.name();
      t.set_data_type(onnx::TensorProto::INT8);
      ++retyped;
    }
  }
  ASSERT_EQ(retyped, 1);
  std::string mixed_bytes;
  mixed.SerializeToString(&mixed_bytes);
  std::ofstream(dir + "/dyn/mixed.onnx", std::ios::binary) << mixed_bytes;
  expect_error(dir + "/dyn/mixed.onnx", ErrorKind::BadInput, "_zero_point' has element type INT8, its weight UINT8");

  // External data that points past the end of its file.
  OnnxExportOptions ext;
  ext.external_data_threshold = 0;
  export_onnx(model, dir + "/ext/model.onnx", ext);
  std::filesystem::resize_file(dir + "/ext/model.onnx_data", 1000);
  expect_error(dir + "/ext/model.onnx", ErrorKind::BadInput, "beyond the end");
}

}  // namespace
}  // namespace slmopt
