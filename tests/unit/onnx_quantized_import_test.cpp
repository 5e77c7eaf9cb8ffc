// load_onnx reads slmopt's own int4 (MatMulNBits) and int8 (DequantizeLinear, MatMulInteger) exports (issue 12,
// defect 10): each quantized matrix comes back as exactly the dequantized weights the exporter was given, and
// onnx_quantized_storage says how each was stored. (tests/consumers/onnx_quantized_import_test.cpp checks the
// logits against ONNX Runtime on the same files.)
#include <gtest/gtest.h>

#include "slmopt/io/onnx_export.h"
#include "slmopt/io/onnx_import.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/quant/int_quantize.h"
#include "synthetic_llama.h"
#include "test_support.h"

namespace slmopt {
namespace {

void expect_same_weights(const Model& want, const Model& got) {
  for (const Tensor* t : want.ordered_tensors()) {
    if (t->rank() != 2) continue;
    ASSERT_TRUE(got.has(t->name())) << t->name();
    const std::vector<float> a = t->to_f32(), b = got.tensor(t->name()).to_f32();
    ASSERT_EQ(a.size(), b.size()) << t->name();
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << t->name() << " [" << i << "]";
  }
}

TEST(OnnxQuantizedImport, Int4AndInt8ExportsReadBackAsTheirDequantizedWeights) {
  Config config = testing::llama_config(64, 96, 2, 4, 2, 16, 40);
  config.tie_word_embeddings = false;
  const Model model = testing::make_random_llama(config, 5);
  const std::string dir = testing::scratch_dir("onnx_quantized_import");
  struct Case {
    const char* name;
    OnnxWeightType type;
    IntQuantizeOptions grid;
    const char* stored;
  } cases[] = {{"int4_asym", OnnxWeightType::Int4, {4, 32, false}, "MatMulNBits int4"},
               {"int4_sym", OnnxWeightType::Int4, {4, 16, true}, "MatMulNBits int4"},
               {"int8", OnnxWeightType::Int8, {8, 0, true}, "int8 per-channel"},
               {"int8_dynamic", OnnxWeightType::Int8Dynamic, {8, 0, true}, "int8 per-channel"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const IntQuantizedWeights codes = quantize_linear_weights_rtn(model, c.grid);
    OnnxExportOptions options;
    options.weight_type = c.type;
    options.quantized = &codes;
    const std::string path = dir + "/" + c.name + ".onnx";
    export_onnx(model, path, options);
    const Model loaded = load_onnx(path);
    expect_same_weights(with_dequantized_weights(model, codes), loaded);
    const StoredQuantization stored = onnx_quantized_storage(path);
    EXPECT_EQ(stored.tensors.size(), codes.size());
    EXPECT_EQ(stored.tensors.at(names::kLmHead), c.stored);
    EXPECT_FALSE(stored.description.empty());
  }
}

}  // namespace
}  // namespace slmopt
