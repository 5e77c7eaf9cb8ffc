// HF GPTQ / AWQ checkpoints: bit layouts checked against independent transcriptions of the published packers,
// folder round trips through the reader (same codes, same dequantized weights, same logits), broken files.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/exec/model_runner.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/hf_gptq.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/quant/int_grid.h"
#include "synthetic_llama.h"
#include "test_support.h"

namespace slmopt {
namespace {

std::vector<uint32_t> words(const Tensor& t) {
  std::vector<uint32_t> w(static_cast<size_t>(t.numel()));
  std::memcpy(w.data(), t.data(), w.size() * 4);
  return w;
}

// Quantizes every block linear of `model` with RTN on `spec`; returns the codes and stores dequantized weights.
std::map<std::string, HfIntWeight> quantize_linears(Model& model, const IntGridSpec& spec) {
  std::map<std::string, HfIntWeight> out;
  for (int64_t l = 0; l < model.config.num_layers; ++l)
    for (const auto& name : {names::q_proj(l), names::k_proj(l), names::v_proj(l), names::o_proj(l),
                             names::gate_proj(l), names::up_proj(l), names::down_proj(l)}) {
      const Tensor& t = model.tensor(name);
      const GridQuantizedWeight q = quantize_grid_rtn(t.to_f32(), t.rows(), t.cols(), spec);
      out[name] = q.to_hf();
      model.set(Tensor::from_f32(name, t.shape(), q.dequantize()));
    }
  return out;
}

// AutoGPTQ's 3-bit packer for one column, transcribed step by step (10 codes, 1 straddling, 10, 1, 10 per 3 words).
std::vector<uint32_t> autogptq_pack3(const std::vector<uint32_t>& v) {
  std::vector<uint32_t> q(v.size() / 32 * 3, 0);
  size_t i = 0, row = 0;
  while (row < q.size()) {
    for (size_t j = i; j < i + 10; ++j) q[row] |= v[j] << (3 * (j - i));
    i += 10;
    q[row] |= v[i] << 30;
    ++row;
    q[row] |= (v[i] >> 2) & 1;
    ++i;
    for (size_t j = i; j < i + 10; ++j) q[row] |= v[j] << (3 * (j - i) + 1);
    i += 10;
    q[row] |= v[i] << 31;
    ++row;
    q[row] |= (v[i] >> 1) & 3;
    ++i;
    for (size_t j = i; j < i + 10; ++j) q[row] |= v[j] << (3 * (j - i) + 2);
    i += 10;
    ++row;
  }
  return q;
}

Model tiny_model(uint32_t seed) {
  return testing::make_random_llama(testing::llama_config(64, 128, 1, 4, 2, 16, 50), seed);
}

TEST(HfGptq, ThreeBitPackingMatchesAutoGptqAndZerosAreStoredMinusOne) {
  Model model = tiny_model(1);
  std::map<std::string, HfIntWeight> q = quantize_linears(model, {3, 32, false});
  const std::string dir = testing::scratch_dir("gptq3");
  write_hf_quantized(model, q, dir + "/out", {});
  const SafetensorsFile file = SafetensorsFile::open(dir + "/out/model.safetensors");
  const HfIntWeight& w = q.at(names::q_proj(0));
  const Tensor* qweight = file.find("model.layers.0.self_attn.q_proj.qweight");
  ASSERT_NE(qweight, nullptr);
  ASSERT_EQ(qweight->shape(), (std::vector<int64_t>{64 * 3 / 32, 64}));
  const std::vector<uint32_t> packed = words(*qweight);
  for (int64_t o = 0; o < w.rows; ++o) {
    std::vector<uint32_t> column(static_cast<size_t>(w.cols));
    for (int64_t i = 0; i < w.cols; ++i) column[static_cast<size_t>(i)] = w.codes[static_cast<size_t>(o * w.cols + i)];
    const std::vector<uint32_t> want = autogptq_pack3(column);
    for (size_t k = 0; k < want.size(); ++k) ASSERT_EQ(packed[k * 64 + static_cast<size_t>(o)], want[k]) << o << " " << k;
  }
  // qzeros [groups, out·3/32]: the same stream along outputs, of zero − 1.
  const std::vector<uint32_t> zeros = words(*file.find("model.layers.0.self_attn.q_proj.qzeros"));
  for (int64_t g = 0; g < w.groups(); ++g) {
    std::vector<uint32_t> row(static_cast<size_t>(w.rows));
    for (int64_t o = 0; o < w.rows; ++o) row[static_cast<size_t>(o)] = static_cast<uint32_t>(w.zeros[static_cast<size_t>(o * w.groups() + g)] - 1);
    const std::vector<uint32_t> want = autogptq_pack3(row);
    for (size_t k = 0; k < want.size(); ++k) ASSERT_EQ(zeros[static_cast<size_t>(g) * want.size() + k], want[k]);
  }
  const nlohmann::json qc = nlohmann::json::parse(read_text_file(dir + "/out/quantize_config.json"));
  EXPECT_EQ(qc["bits"], 3);
  EXPECT_EQ(qc["group_size"], 32);
  EXPECT_EQ(qc["quant_method"], "gptq");
  EXPECT_EQ(nlohmann::json::parse(read_text_file(dir + "/out/config.json"))["quantization_config"], qc);
}

TEST(HfGptq, AwqPackingInterleavesOutputColumns) {
  Model model = tiny_model(2);
  std::map<std::string, HfIntWeight> q = quantize_linears(model, {4, 32, false});
  // Make the first input row of q_proj's first 8 outputs read 0..7 so the word is predictable.
  HfIntWeight& w = q.at(names::q_proj(0));
  for (int64_t o = 0; o < 8; ++o) w.codes[static_cast<size_t>(o * w.cols)] = static_cast<uint8_t>(o);
  model.set(Tensor::from_f32(names::q_proj(0), {w.rows, w.cols}, w.dequantize()));
  const std::string dir = testing::scratch_dir("awq_pack");
  HfQuantizedWriteOptions options;
  options.format = HfQuantFormat::Awq;
  write_hf_quantized(model, q, dir + "/out", options);
  const SafetensorsFile file = SafetensorsFile::open(dir + "/out/model.safetensors");
  const Tensor* qweight = file.find("model.layers.0.self_attn.q_proj.qweight");
  ASSERT_NE(qweight, nullptr);
  EXPECT_EQ(qweight->shape(), (std::vector<int64_t>{64, 8}));
  EXPECT_EQ(words(*qweight)[0], 0x75316420u);  // nibble k holds column order[k] = 0,2,4,6,1,3,5,7
  const nlohmann::json config = nlohmann::json::parse(read_text_file(dir + "/out/config.json"));
  EXPECT_EQ(config["quantization_config"]["quant_method"], "awq");
  EXPECT_EQ(config["quantization_config"]["version"], "gemm");
  EXPECT_EQ(config["quantization_config"]["w_bit"], 4);
  EXPECT_FALSE(std::filesystem::exists(dir + "/out/quantize_config.json"));
}

struct RoundTrip {
  HfQuantFormat format;
  IntGridSpec spec;
};

class HfGptqRoundTrip : public ::testing::TestWithParam<RoundTrip> {};

TEST_P(HfGptqRoundTrip, ReaderReturnsTheSameCodesWeightsAndLogits) {
  const RoundTrip p = GetParam();
  Model model = tiny_model(3);
  const std::map<std::string, HfIntWeight> q = quantize_linears(model, p.spec);
  const std::string dir = testing::scratch_dir(std::string("roundtrip_") + hf_quant_format_name(p.format));
  HfQuantizedWriteOptions options;
  options.format = p.format;
  options.float_type = DType::F32;  // keep the float tensors exact so the logits can be compared bit for bit
  write_hf_quantized(model, q, dir + "/out", options);
  ASSERT_TRUE(is_hf_quantized_folder(dir + "/out"));
  std::map<std::string, HfIntWeight> codes;
  const Model back = load_hf_quantized(dir + "/out", &codes);
  ASSERT_EQ(codes.size(), q.size());
  for (const auto& [name, w] : q) {
    EXPECT_EQ(codes.at(name).codes, w.codes) << name;
    EXPECT_EQ(codes.at(name).zeros, w.zeros) << name;
    EXPECT_EQ(codes.at(name).scales, w.scales) << name;
    EXPECT_EQ(back.tensor(name).to_f32(), model.tensor(name).to_f32()) << name;
  }
  const std::vector<int32_t> tokens = testing::random_tokens(12, 50, 4);
  EXPECT_EQ(ModelRunner(back).logits(tokens), ModelRunner(model).logits(tokens));
}

INSTANTIATE_TEST_SUITE_P(Formats, HfGptqRoundTrip,
                         ::testing::Values(RoundTrip{HfQuantFormat::Gptq, {4, 32, false}},
                                           RoundTrip{HfQuantFormat::Gptq, {3, 32, false}},
                                           RoundTrip{HfQuantFormat::Gptq, {2, 64, true}},
                                           RoundTrip{HfQuantFormat::Gptq, {8, -1, false}},
                                           // rows of 64 and 128 under groups of 48: shorter last groups
                                           // (AutoGPTQ's ceil(in / group_size) scales rows)
                                           RoundTrip{HfQuantFormat::Gptq, {4, 48, false}},
                                           RoundTrip{HfQuantFormat::Awq, {4, 32, false}},
                                           RoundTrip{HfQuantFormat::Awq, {4, 64, true}}));

TEST(HfGptq, RefusesWhatTheFormatCannotHold) {
  Model model = tiny_model(5);
  std::map<std::string, HfIntWeight> q = quantize_linears(model, {3, 32, false});
  HfQuantizedWriteOptions awq;
  awq.format = HfQuantFormat::Awq;
  EXPECT_THROW(write_hf_quantized(model, q, testing::scratch_dir("refuse") + "/out", awq), Error);  // AWQ is 4-bit
  q.at(names::q_proj(0)).zeros[0] = 0;  // classic GPTQ stores zero − 1
  const std::string out = testing::scratch_dir("refuse2") + "/out";
  EXPECT_THROW(write_hf_quantized(model, q, out, {}), Error);
  EXPECT_FALSE(std::filesystem::exists(out));  // found while streaming: the staged folder goes, nothing is left
}

// The streaming form: every linear is made once, while the file is written, and the bytes are those of the map
// form (which the layout and round-trip tests above pin down).
TEST(HfGptq, SourceMakesEachLinearOnceAndWritesTheSameBytes) {
  for (const HfQuantFormat format : {HfQuantFormat::Gptq, HfQuantFormat::Awq}) {
    Model model = tiny_model(8);
    const std::map<std::string, HfIntWeight> q = quantize_linears(model, {4, 32, false});
    HfQuantizedWriteOptions options;
    options.format = format;
    const std::string dir = testing::scratch_dir(std::string("source_") + hf_quant_format_name(format));
    write_hf_quantized(model, q, dir + "/map", options);
    HfIntWeightSource source;
    for (const auto& [name, w] : q) source.grids[name] = HfIntWeight{w.bits, w.group_size, w.symmetric, w.rows, w.cols, {}, {}, {}};
    std::map<std::string, int> made;
    source.make = [&](const std::string& name) {
      ++made[name];
      return q.at(name);
    };
    write_hf_quantized(model, source, dir + "/source", options);
    EXPECT_EQ(made.size(), q.size());
    for (const auto& [name, n] : made) EXPECT_EQ(n, 1) << name;
    EXPECT_EQ(read_text_file(dir + "/source/model.safetensors"), read_text_file(dir + "/map/model.safetensors"));
    EXPECT_EQ(read_text_file(dir + "/source/config.json"), read_text_file(dir + "/map/config.json"));
  }
}

TEST(HfGptq, ReaderRejectsBrokenTensors) {
  Model model = tiny_model(6);
  const std::map<std::string, HfIntWeight> q = quantize_linears(model, {4, 32, false});
  const std::string dir = testing::scratch_dir("broken");
  write_hf_quantized(model, q, dir + "/out", {});
  // Rewrite the checkpoint with g_idx of q_proj pointing outside the groups, then with a qweight cut short.
  SafetensorsCheckpoint ckpt = read_safetensors_checkpoint(dir + "/out");
  for (int variant = 0; variant < 2; ++variant) {
    std::vector<Tensor> tensors;
    for (const Tensor& t : ckpt.tensors) {
      if (variant == 0 && t.name() == "model.layers.0.self_attn.q_proj.g_idx") {
        std::vector<uint8_t> bytes(t.data(), t.data() + t.nbytes());
        const int32_t bad = 7;  // 64 inputs / 32 = 2 groups
        std::memcpy(bytes.data(), &bad, 4);
        tensors.push_back(Tensor::owned(t.name(), t.shape(), t.dtype(), bytes));
      } else if (variant == 1 && t.name() == "model.layers.0.mlp.up_proj.qweight") {
        std::vector<uint8_t> bytes(t.data(), t.data() + t.nbytes() / 2);
        tensors.push_back(Tensor::owned(t.name(), {t.dim(0) / 2, t.dim(1)}, t.dtype(), bytes));
      } else {
        tensors.push_back(Tensor::owned(t.name(), t.shape(), t.dtype(), std::vector<uint8_t>(t.data(), t.data() + t.nbytes())));
      }
    }
    std::vector<const Tensor*> pointers;
    for (const Tensor& t : tensors) pointers.push_back(&t);
    const std::string broken = testing::scratch_dir("broken" + std::to_string(variant));
    std::filesystem::copy(dir + "/out/config.json", broken + "/config.json");
    write_safetensors(broken + "/model.safetensors", pointers);
    try {
      load_hf_quantized(broken);
      ADD_FAILURE() << "variant " << variant << " loaded";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what();
      EXPECT_NE(std::string(e.what()).find(variant == 0 ? "q_proj.g_idx" : "up_proj"), std::string::npos) << e.what();
    }
  }
}

// A config.json whose shapes disagree with a stored linear's codes (found by fuzzing: k_proj's 16 rows stored as
// [16, 32], the config's kv heads giving it 32 rows of 16, the same number of values): the codes are sliced by
// the config's rows, and the slice read 1 KiB past them. The reader must refuse before slicing. The fuzz input
// itself, as the folder it describes (config.json, the separator, model.safetensors).
TEST(HfGptq, ReaderRefusesAConfigWhoseRowsDisagreeWithTheCodes) {
  const std::string input = read_text_file(testing::source_dir() +
                                           "/tests/fuzz/corpus/hf_quantized/config-rows-disagree-with-codes");
  const std::string separator = "\n--slmopt-part--\n";
  const size_t split = input.find(separator);
  ASSERT_NE(split, std::string::npos);
  const size_t end = input.find(separator, split + separator.size());
  ASSERT_NE(end, std::string::npos);
  const std::string dir = testing::scratch_dir("rows-disagree");
  std::ofstream(dir + "/config.json", std::ios::binary) << input.substr(0, split);
  std::ofstream(dir + "/model.safetensors", std::ios::binary)
      << input.substr(split + separator.size(), end - split - separator.size());
  std::map<std::string, HfIntWeight> codes;
  try {
    load_hf_quantized(dir, &codes);
    ADD_FAILURE() << "loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what();
    // The first linear in name order whose rows disagree (hidden_size 16 against the stored 32).
    EXPECT_NE(std::string(e.what()).find("'model.layers.0.mlp.down_proj.weight' has 32 output rows, but "
                                         "config.json's shapes give it 16"),
              std::string::npos)
        << e.what();
  }
}

// quantization_config members of the wrong JSON type are the file's error, named by key, not nlohmann's
// type_error escaping as "internal error" (found by fuzzing: "quant_method": 1e-400 made is_hf_quantized_folder
// throw; the input is replayed from tests/fuzz/corpus/hf_quantized/quant-method-not-a-string).
TEST(HfGptq, QuantizationConfigMembersOfTheWrongTypeAreNamed) {
  Model model = tiny_model(6);
  const std::map<std::string, HfIntWeight> q = quantize_linears(model, {4, 32, false});
  const std::string dir = testing::scratch_dir("wrong-types");
  write_hf_quantized(model, q, dir, {});
  const nlohmann::json original = nlohmann::json::parse(read_text_file(dir + "/config.json"));
  auto write_config = [&](const char* key, const nlohmann::json& value) {
    nlohmann::json config = original;
    config["quantization_config"][key] = value;
    std::ofstream(dir + "/config.json") << config.dump();
  };
  write_config("quant_method", 1e-300);
  EXPECT_FALSE(is_hf_quantized_folder(dir));
  for (const char* key : {"sym", "checkpoint_format"}) {
    write_config(key, nlohmann::json::array());
    try {
      load_hf_quantized(dir);
      ADD_FAILURE() << key << ": loaded";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::string("quantization_config.") + key + " must be"), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace slmopt
