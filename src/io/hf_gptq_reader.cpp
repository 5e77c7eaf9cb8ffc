// Reader of HF GPTQ / AWQ checkpoints (layouts in include/slmopt/io/hf_gptq.h): every packed linear is unpacked,
// bounds-checked and dequantized to an F32 "<base>.weight"; the other tensors stay zero-copy views.
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "family.h"
#include "hf_gptq_bits.h"
#include "hf_tensor_map.h"
#include "slmopt/core/error.h"
#include "slmopt/core/log.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/hf_gptq.h"
#include "slmopt/io/hf_tokenizer.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/ir/tensor_names.h"
#include "json_strict.h"

namespace slmopt {

namespace {

using json = nlohmann::json;
using hf_gptq_bits::get_bits;
using hf_gptq_bits::kAwqOrder;

struct QuantConfig {
  HfQuantFormat format = HfQuantFormat::Gptq;
  int bits = 4;
  int64_t group_size = 128;  // −1: one group per row
  bool symmetric = false;
  int zero_offset = 1;  // classic GPTQ stores zero − 1; gptq_v2 and AWQ store the zero
};

QuantConfig parse_quant_config(const json& config, const std::string& path) {
  if (!config.contains("quantization_config") || !config["quantization_config"].is_object())
    throw_error(ErrorKind::BadInput, "{}: no quantization_config object", path);
  const json& qc = config["quantization_config"];
  // Optional members of another JSON type are the file's error naming the key; json::value() would throw its own
  // type_error, which the CLI reports as an internal error.
  const HfConfigJson members(qc, path, "quantization_config.");
  auto number = [&](const char* key) {
    if (!qc.contains(key) || !qc[key].is_number_integer())
      throw_error(ErrorKind::BadInput, "{}: quantization_config.{} is missing or not an integer", path, key);
    return qc[key].get<int64_t>();
  };
  QuantConfig q;
  const std::string method = members.string_or("quant_method", "");
  if (method == "gptq") {
    q.bits = static_cast<int>(number("bits"));
    q.group_size = number("group_size");
    q.symmetric = members.boolean_or("sym", true);
    const std::string format = members.string_or("checkpoint_format", "gptq");
    if (format == "gptq_v2") q.zero_offset = 0;
    else if (format != "gptq")
      throw_error(ErrorKind::Unsupported, "{}: GPTQ checkpoint_format '{}' (slmopt reads gptq and gptq_v2)", path, format);
    if (q.bits != 2 && q.bits != 3 && q.bits != 4 && q.bits != 8)
      throw_error(ErrorKind::Unsupported, "{}: {}-bit GPTQ", path, q.bits);
  } else if (method == "awq") {
    q.format = HfQuantFormat::Awq;
    q.bits = static_cast<int>(number("w_bit"));
    q.group_size = number("q_group_size");
    q.zero_offset = 0;
    const std::string version = members.string_or("version", "gemm");
    if (q.bits != 4 || (version != "gemm" && version != "GEMM"))
      throw_error(ErrorKind::Unsupported, "{}: AWQ {} bits version '{}' (slmopt reads 4-bit gemm)", path, q.bits,
                  version);
    if (!members.boolean_or("zero_point", true)) q.symmetric = true;
  } else {
    throw_error(ErrorKind::Unsupported, "{}: quant_method '{}' (slmopt reads gptq and awq)", path, method);
  }
  if (q.group_size == 0 || q.group_size < -1)
    throw_error(ErrorKind::BadInput, "{}: group size {}", path, q.group_size);
  return q;
}

std::vector<uint32_t> words_of(const Tensor& t, const std::string& path, int64_t d0, int64_t d1) {
  if (t.dtype() != DType::I32 || t.rank() != 2 || t.dim(0) != d0 || t.dim(1) != d1)
    throw_error(ErrorKind::BadInput, "{}: tensor '{}' is {} {}, expected I32 [{}, {}]", path, t.name(),
                dtype_name(t.dtype()), shape_to_string(t.shape()), d0, d1);
  std::vector<uint32_t> w(static_cast<size_t>(d0 * d1));
  if (!w.empty()) std::memcpy(w.data(), t.data(), w.size() * 4);  // an empty tensor's data() may be null
  return w;
}

const Tensor& need(const std::map<std::string, Tensor>& tensors, const std::string& name, const std::string& path) {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw_error(ErrorKind::BadInput, "{}: tensor '{}' is missing", path, name);
  return it->second;
}

// Unpacks one linear. g_idx (GPTQ) may reorder groups (desc_act checkpoints); weight is filled in any case, the
// HfIntWeight only when groups are the plain i / group_size.
void unpack(const std::map<std::string, Tensor>& tensors, const std::string& base, const QuantConfig& q,
            const std::string& path, std::vector<float>& weight, HfIntWeight& codes, bool& plain_groups,
            int64_t& out, int64_t& in) {
  const Tensor& qweight = need(tensors, base + ".qweight", path);
  const Tensor& qzeros = need(tensors, base + ".qzeros", path);
  const Tensor& scales_t = need(tensors, base + ".scales", path);
  if (qweight.rank() != 2 || scales_t.rank() != 2)
    throw_error(ErrorKind::BadInput, "{}: '{}' tensors must be 2-D", path, base);
  const int b = q.bits;
  if (q.format == HfQuantFormat::Gptq) {
    in = qweight.dim(0) * 32 / b;
    out = qweight.dim(1);
    if ((qweight.dim(0) * 32) % b != 0 || (out * b) % 32 != 0)
      throw_error(ErrorKind::BadInput, "{}: '{}.qweight' shape {} does not hold {}-bit codes", path, base,
                  shape_to_string(qweight.shape()), b);
  } else {
    in = qweight.dim(0);
    out = qweight.dim(1) * 8;
  }
  // An empty qweight would make the whole-row group (group_size −1) zero wide: refused before dividing by it.
  if (in <= 0 || out <= 0)
    throw_error(ErrorKind::BadInput, "{}: '{}.qweight' shape {} holds no weights", path, base,
                shape_to_string(qweight.shape()));
  const int64_t gs = q.group_size < 0 ? in : q.group_size;
  // GPTQ ends a row that is not a whole number of groups in a shorter group (AutoGPTQ: ceil(in / group_size));
  // AWQ gemm needs whole groups.
  if (q.format == HfQuantFormat::Awq && in % gs != 0)
    throw_error(ErrorKind::BadInput, "{}: '{}': {} inputs, group size {}", path, base, in, gs);
  const int64_t groups = (in + gs - 1) / gs;
  if (scales_t.dim(0) != groups || scales_t.dim(1) != out)
    throw_error(ErrorKind::BadInput, "{}: '{}.scales' is {}, expected [{}, {}]", path, base,
                shape_to_string(scales_t.shape()), groups, out);
  const std::vector<float> scales = scales_t.to_f32();
  const uint32_t mask = (1u << b) - 1;

  codes = HfIntWeight{b, gs, q.symmetric, out, in, std::vector<uint8_t>(static_cast<size_t>(out * in)),
                      std::vector<float>(static_cast<size_t>(out * groups)),
                      std::vector<int32_t>(static_cast<size_t>(out * groups))};
  std::vector<int32_t> g_idx(static_cast<size_t>(in));
  for (int64_t i = 0; i < in; ++i) g_idx[static_cast<size_t>(i)] = static_cast<int32_t>(i / gs);
  plain_groups = true;
  if (q.format == HfQuantFormat::Gptq) {
    const std::vector<uint32_t> qw = words_of(qweight, path, in * b / 32, out);
    const std::vector<uint32_t> qz = words_of(qzeros, path, groups, out * b / 32);
    if (auto it = tensors.find(base + ".g_idx"); it != tensors.end()) {
      const Tensor& gi = it->second;
      if (gi.dtype() != DType::I32 || gi.rank() != 1 || gi.dim(0) != in)
        throw_error(ErrorKind::BadInput, "{}: '{}.g_idx' must be I32 [{}]", path, base, in);
      if (in != 0) std::memcpy(g_idx.data(), gi.data(), g_idx.size() * 4);
      for (int64_t i = 0; i < in; ++i) {
        const int32_t g = g_idx[static_cast<size_t>(i)];
        if (g < 0 || g >= groups)
          throw_error(ErrorKind::BadInput, "{}: '{}.g_idx'[{}] = {} outside [0, {})", path, base, i, g, groups);
        plain_groups = plain_groups && g == i / gs;
      }
    }
    for (int64_t o = 0; o < out; ++o) {
      for (int64_t i = 0; i < in; ++i)
        codes.codes[static_cast<size_t>(o * in + i)] =
            static_cast<uint8_t>(get_bits(qw, static_cast<size_t>(o), static_cast<size_t>(out), i, b));
      for (int64_t g = 0; g < groups; ++g)
        codes.zeros[static_cast<size_t>(o * groups + g)] =
            static_cast<int32_t>((get_bits(qz, static_cast<size_t>(g * (out * b / 32)), 1, o, b) + q.zero_offset) &
                                 (q.zero_offset ? 0xffffffffu : mask));
    }
  } else {
    const int64_t ow = out / 8;
    const std::vector<uint32_t> qw = words_of(qweight, path, in, ow);
    const std::vector<uint32_t> qz = words_of(qzeros, path, groups, ow);
    for (int64_t j = 0; j < ow; ++j)
      for (int k = 0; k < 8; ++k) {
        const int64_t o = 8 * j + kAwqOrder[static_cast<size_t>(k)];
        for (int64_t i = 0; i < in; ++i)
          codes.codes[static_cast<size_t>(o * in + i)] = static_cast<uint8_t>((qw[static_cast<size_t>(i * ow + j)] >> (4 * k)) & mask);
        for (int64_t g = 0; g < groups; ++g)
          codes.zeros[static_cast<size_t>(o * groups + g)] = static_cast<int32_t>((qz[static_cast<size_t>(g * ow + j)] >> (4 * k)) & mask);
      }
  }
  for (int64_t o = 0; o < out; ++o)
    for (int64_t g = 0; g < groups; ++g) codes.scales[static_cast<size_t>(o * groups + g)] = scales[static_cast<size_t>(g * out + o)];
  weight.resize(static_cast<size_t>(out * in));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      const size_t p = static_cast<size_t>(o * groups + g_idx[static_cast<size_t>(i)]);
      weight[static_cast<size_t>(o * in + i)] =
          codes.scales[p] * static_cast<float>(codes.codes[static_cast<size_t>(o * in + i)] - codes.zeros[p]);
    }
}

}  // namespace

Model load_hf_quantized(const std::string& dir, std::map<std::string, HfIntWeight>* codes_out) {
  const std::string config_path = dir + "/config.json";
  if (!file_exists(config_path)) throw_error(ErrorKind::BadInput, "{}: no config.json", dir);
  const std::string text = read_text_file(config_path);
  const json config_json = parse_json_strict(text, config_path);
  if (!config_json.is_object()) throw_error(ErrorKind::BadInput, "{}: not a JSON object", config_path);
  const QuantConfig q = parse_quant_config(config_json, config_path);

  Model model;
  model.source_path = dir;
  model.source_format = "hf";
  json float_config = config_json;  // parse_hf_config refuses pre-quantized configs: this reader handles them
  float_config.erase("quantization_config");
  model.config = parse_hf_config(float_config.dump(), config_path);
  model.config.name = std::filesystem::path(dir).lexically_normal().filename().string();

  SafetensorsCheckpoint checkpoint = read_safetensors_checkpoint(dir);
  std::map<std::string, Tensor> tensors;
  for (Tensor& t : checkpoint.tensors) tensors.emplace(t.name(), std::move(t));
  std::vector<std::string> bases;
  const std::string suffix = ".qweight";
  for (const auto& [name, t] : tensors)
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      bases.push_back(name.substr(0, name.size() - suffix.size()));
  if (bases.empty()) throw_error(ErrorKind::BadInput, "{}: quantization_config but no *.qweight tensor", dir);

  // Unpacked weights and the float tensors keep the checkpoint's names until the family's table maps them (a
  // fused Phi-3 qkv_proj becomes row views of its dequantized rows, and its codes are split the same way).
  std::vector<Tensor> stored;
  std::map<std::string, HfIntWeight> stored_codes;
  std::set<std::string> unpacked;  // [out, in] already, whatever layout the family stores float matrices in
  for (const std::string& base : bases) {
    std::vector<float> weight;
    HfIntWeight codes;
    bool plain = true;
    int64_t out = 0, in = 0;
    unpack(tensors, base, q, dir, weight, codes, plain, out, in);
    stored.push_back(Tensor::from_f32(base + ".weight", {out, in}, weight));
    unpacked.insert(base + ".weight");
    if (codes_out) {
      if (!plain)
        throw_error(ErrorKind::Unsupported, "{}: '{}' reorders groups through g_idx; its codes have no plain form",
                    dir, base);
      stored_codes[base + ".weight"] = std::move(codes);
    }
    for (const char* s : {".qweight", ".qzeros", ".scales", ".g_idx"}) tensors.erase(base + s);
  }
  for (auto& [name, t] : tensors) stored.push_back(std::move(t));
  const FamilyDefinition* family = find_family_by_hf_architecture(model.config.architecture);
  if (family == nullptr) throw_error(ErrorKind::Internal, "{}: no family for '{}'", dir, model.config.architecture);
  for (auto& [name, t] : hf_tensors_to_canonical(*family, model.config, std::move(stored), checkpoint.metadata, dir,
                                                 unpacked))
    model.set(std::move(t));
  for (auto& [hf, codes] : stored_codes) {
    // The parts' rows come from the config, the codes' from the checkpoint: a config that disagrees (a kv-head
    // count that does not match k_proj) must be an error here, before the rows are sliced (found by fuzzing:
    // the slice read past the codes).
    const auto parts = hf_canonical_parts(*family, model.config, hf);
    int64_t config_rows = 0;
    for (const auto& part : parts) config_rows += part.second;
    if (!parts.empty() && config_rows != codes.rows)
      throw_error(ErrorKind::BadInput, "{}: '{}' has {} output rows, but config.json's shapes give it {}", dir, hf,
                  codes.rows, config_rows);
    int64_t row = 0;
    for (const auto& [canonical, rows] : parts) {
      HfIntWeight part = codes;
      const auto g = static_cast<size_t>(codes.groups()), cols = static_cast<size_t>(codes.cols);
      const auto begin = static_cast<size_t>(row), end = static_cast<size_t>(row + rows);
      part.rows = rows;
      part.codes.assign(codes.codes.begin() + static_cast<std::ptrdiff_t>(begin * cols),
                        codes.codes.begin() + static_cast<std::ptrdiff_t>(end * cols));
      part.scales.assign(codes.scales.begin() + static_cast<std::ptrdiff_t>(begin * g),
                         codes.scales.begin() + static_cast<std::ptrdiff_t>(end * g));
      part.zeros.assign(codes.zeros.begin() + static_cast<std::ptrdiff_t>(begin * g),
                        codes.zeros.begin() + static_cast<std::ptrdiff_t>(end * g));
      (*codes_out)[canonical] = std::move(part);
      row += rows;
    }
  }

  const std::string generation_path = dir + "/generation_config.json";
  if (file_exists(generation_path)) model.generation.json = read_text_file(generation_path);
  const std::string tokenizer_path = dir + "/tokenizer.json";
  if (file_exists(tokenizer_path)) model.vocab = load_hf_vocab(tokenizer_path, dir + "/tokenizer_config.json");
  model.validate();
  return model;
}

StoredQuantization hf_quantized_storage(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  const json config_json = json::parse(read_text_file(config_path), nullptr, false);
  if (!config_json.is_object()) throw_error(ErrorKind::BadInput, "{}: not a JSON object", config_path);
  const QuantConfig q = parse_quant_config(config_json, config_path);
  json float_config = config_json;
  float_config.erase("quantization_config");
  const Config config = parse_hf_config(float_config.dump(), config_path);
  const FamilyDefinition* family = find_family_by_hf_architecture(config.architecture);
  if (family == nullptr) throw_error(ErrorKind::Internal, "{}: no family for '{}'", dir, config.architecture);

  StoredQuantization out;
  const std::string kind = fmt::format("{} int{}", q.format == HfQuantFormat::Awq ? "AWQ" : "GPTQ", q.bits);
  out.description = fmt::format("{}, {}, {}", kind,
                                q.group_size < 0 ? std::string("one group per row") : fmt::format("group {}", q.group_size),
                                q.symmetric ? "symmetric" : "asymmetric");
  const std::string suffix = ".qweight";
  for (const Tensor& t : read_safetensors_checkpoint(dir).tensors) {
    const std::string& name = t.name();
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    const std::string weight = name.substr(0, name.size() - suffix.size()) + ".weight";
    for (const auto& [canonical, rows] : hf_canonical_parts(*family, config, weight)) out.tensors[canonical] = kind;
  }
  return out;
}

}  // namespace slmopt
