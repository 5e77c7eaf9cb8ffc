// load_onnx (see onnx_import.h): parse, decode initializers, find each weight's IR name and layout from its
// name or its consumer, build the Config, validate.
#include "slmopt/io/onnx_import.h"

#include <onnx/onnx_pb.h>

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "family.h"
#include "hf_tensor_map.h"
#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/core/log.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/hf_tokenizer.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

namespace fs = std::filesystem;

// "UINT8", "FLOAT16"…: the name the ONNX spec gives an element type, or its number when the spec has none.
std::string element_type_name(int32_t type) {
  const std::string& name = onnx::TensorProto::DataType_Name(static_cast<onnx::TensorProto::DataType>(type));
  return name.empty() ? std::to_string(type) : name;
}

struct Consumer {
  const onnx::NodeProto* node;
  int input;
};

class OnnxReader {
 public:
  OnnxReader(const std::string& path) : path_(path), dir_(fs::path(path).parent_path()) {
    const auto mapped = MappedFile::open(path);
    const MappedFile& file = *mapped;
    if (file.size() > (size_t{1} << 31) - 1)
      throw_error(ErrorKind::BadInput, "{}: {} bytes is beyond protobuf's 2 GB limit for an ONNX graph", path,
                  file.size());
    if (!proto_.ParseFromArray(file.data(), static_cast<int>(file.size())))
      throw_error(ErrorKind::BadInput, "{}: not a valid ONNX model (protobuf parsing failed)", path);
    if (!proto_.has_graph()) throw_error(ErrorKind::BadInput, "{}: the ONNX model has no graph", path);
    for (const auto& t : proto_.graph().initializer()) initializers_[t.name()] = &t;
    for (const auto& n : proto_.graph().node())
      for (int i = 0; i < n.input_size(); ++i) consumers_[n.input(i)].push_back({&n, i});
  }

  const onnx::ModelProto& proto() const { return proto_; }
  const std::map<std::string, const onnx::TensorProto*>& initializers() const { return initializers_; }

  std::vector<Consumer> consumers(const std::string& value) const {
    auto it = consumers_.find(value);
    return it == consumers_.end() ? std::vector<Consumer>{} : it->second;
  }

  std::string metadata(const std::string& key) const {
    for (const auto& m : proto_.metadata_props())
      if (m.key() == key) return m.value();
    return "";
  }

  std::vector<int64_t> dims(const onnx::TensorProto& t) const {
    std::vector<int64_t> d(t.dims().begin(), t.dims().end());
    for (int64_t v : d)
      if (v < 0) throw_error(ErrorKind::BadInput, "{}: initializer '{}' has a negative dimension", path_, t.name());
    return d;
  }

  // Float values of a float32/float16/bfloat16 initializer.
  std::vector<float> floats(const onnx::TensorProto& t) const {
    int64_t n = 1;
    for (int64_t d : dims(t)) {
      if (d != 0 && n > (int64_t{1} << 40) / d)
        throw_error(ErrorKind::BadInput, "{}: initializer '{}' is too large", path_, t.name());
      n *= d;
    }
    const int32_t type = t.data_type();
    const size_t elem = type == onnx::TensorProto::FLOAT ? 4 : 2;
    if (type != onnx::TensorProto::FLOAT && type != onnx::TensorProto::FLOAT16 && type != onnx::TensorProto::BFLOAT16)
      throw_error(ErrorKind::Unsupported, "{}: weight '{}' has ONNX element type {} (float32/16 and bfloat16 are read)",
                  path_, t.name(), element_type_name(type));
    std::string external;
    const std::string* bytes = nullptr;
    if (t.data_location() == onnx::TensorProto::EXTERNAL) {
      external = read_external(t, static_cast<uint64_t>(n) * elem);
      bytes = &external;
    } else if (t.has_raw_data()) {
      bytes = &t.raw_data();
    }
    // What the initializer holds is checked against its dims before anything is allocated: the dims alone are
    // a few bytes of the file and must not size a buffer (2^29 claimed floats with no data used to allocate 2 GB).
    if (bytes) {
      if (bytes->size() != static_cast<size_t>(n) * elem)
        throw_error(ErrorKind::BadInput, "{}: initializer '{}' holds {} bytes, its shape needs {}", path_, t.name(),
                    bytes->size(), static_cast<size_t>(n) * elem);
    } else if (const int held = type == onnx::TensorProto::FLOAT ? t.float_data_size() : t.int32_data_size(); held != n) {
      throw_error(ErrorKind::BadInput, "{}: initializer '{}' has {} values, its shape needs {}", path_, t.name(), held,
                  n);
    }
    std::vector<float> out(static_cast<size_t>(n));
    if (bytes) {
      for (size_t i = 0; i < out.size(); ++i) {
        if (elem == 4) {
          std::memcpy(&out[i], bytes->data() + 4 * i, 4);
        } else {
          uint16_t h;
          std::memcpy(&h, bytes->data() + 2 * i, 2);
          out[i] = type == onnx::TensorProto::FLOAT16 ? f16_to_f32(h) : bf16_to_f32(h);
        }
      }
    } else if (type == onnx::TensorProto::FLOAT) {
      std::copy(t.float_data().begin(), t.float_data().end(), out.begin());
    } else {
      for (int64_t i = 0; i < n; ++i) {
        const auto h = static_cast<uint16_t>(t.int32_data(static_cast<int>(i)));
        out[static_cast<size_t>(i)] = type == onnx::TensorProto::FLOAT16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
    }
    return out;
  }

  // The bytes of a uint8/int8 initializer with `count` elements (raw or external data, or int32_data fields).
  std::string int8_bytes(const onnx::TensorProto& t, int64_t count) const {
    if (t.data_type() != onnx::TensorProto::UINT8 && t.data_type() != onnx::TensorProto::INT8)
      throw_error(ErrorKind::BadInput, "{}: initializer '{}' has element type {}, expected uint8 or int8", path_,
                  t.name(), element_type_name(t.data_type()));
    int64_t n = 1;
    for (int64_t d : dims(t)) {
      if (d != 0 && n > (int64_t{1} << 40) / d)
        throw_error(ErrorKind::BadInput, "{}: initializer '{}' is too large", path_, t.name());
      n *= d;
    }
    if (n != count)
      throw_error(ErrorKind::BadInput, "{}: initializer '{}' has {} elements, its node needs {}", path_, t.name(), n,
                  count);
    if (t.data_location() == onnx::TensorProto::EXTERNAL) return read_external(t, static_cast<uint64_t>(n));
    if (t.has_raw_data()) {
      if (t.raw_data().size() != static_cast<size_t>(n))
        throw_error(ErrorKind::BadInput, "{}: initializer '{}' holds {} bytes, its shape needs {}", path_, t.name(),
                    t.raw_data().size(), n);
      return t.raw_data();
    }
    if (t.int32_data_size() != n)
      throw_error(ErrorKind::BadInput, "{}: initializer '{}' has {} values, its shape needs {}", path_, t.name(),
                  t.int32_data_size(), n);
    std::string out(static_cast<size_t>(n), '\0');
    for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = static_cast<char>(t.int32_data(static_cast<int>(i)));
    return out;
  }

  const onnx::TensorProto* initializer(const std::string& name) const {
    auto it = initializers_.find(name);
    return it == initializers_.end() ? nullptr : it->second;
  }

 private:
  std::string read_external(const onnx::TensorProto& t, uint64_t expected) const {
    std::string location;
    uint64_t offset = 0, length = expected;
    bool has_length = false;
    for (const auto& e : t.external_data()) {
      try {
        if (e.key() == "location")
          location = e.value();
        else if (e.key() == "offset")
          offset = std::stoull(e.value());
        else if (e.key() == "length") {
          length = std::stoull(e.value());
          has_length = true;
        }
      } catch (const std::exception&) {
        throw_error(ErrorKind::BadInput, "{}: initializer '{}' has a malformed external_data {} '{}'", path_, t.name(),
                    e.key(), e.value());
      }
    }
    const fs::path rel(location);
    if (location.empty() || rel.is_absolute() || location.find("..") != std::string::npos)
      throw_error(ErrorKind::BadInput, "{}: initializer '{}' has an invalid external data location '{}'", path_,
                  t.name(), location);
    if (has_length && length != expected)
      throw_error(ErrorKind::BadInput, "{}: initializer '{}': external length {} but its shape needs {} bytes", path_,
                  t.name(), length, expected);
    const std::string file = (dir_ / rel).string();
    auto it = external_files_.find(file);
    if (it == external_files_.end()) it = external_files_.emplace(file, MappedFile::open(file)).first;
    const MappedFile& m = *it->second;
    if (offset > m.size() || expected > m.size() - offset)
      throw_error(ErrorKind::BadInput, "{}: initializer '{}' lies beyond the end of {} ({} + {} > {} bytes)", path_,
                  t.name(), file, offset, expected, m.size());
    return std::string(reinterpret_cast<const char*>(m.data()) + offset, expected);
  }

  std::string path_;
  fs::path dir_;
  onnx::ModelProto proto_;
  std::map<std::string, const onnx::TensorProto*> initializers_;
  std::map<std::string, std::vector<Consumer>> consumers_;
  mutable std::map<std::string, std::shared_ptr<MappedFile>> external_files_;  // opened on first use
};

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// How a 2-D initializer is used: as a table (Gather), as an [in, out] matrix, or as an [out, in] matrix.
enum class Layout { Unknown, Rows, InOut, OutIn };

struct Use {
  Layout layout = Layout::Unknown;
  const onnx::NodeProto* matmul = nullptr;  // the MatMul/Gemm consuming it, for naming anonymous weights
};

Use use_of(const OnnxReader& r, const std::string& value, int depth = 0) {
  for (const Consumer& c : r.consumers(value)) {
    const std::string& op = c.node->op_type();
    if (op == "Gather" && c.input == 0) return {Layout::Rows, nullptr};
    if (op == "MatMul" && c.input == 1) return {Layout::InOut, c.node};
    if (op == "Gemm" && c.input == 1) {
      int64_t trans_b = 0;
      for (const auto& a : c.node->attribute())
        if (a.name() == "transB") trans_b = a.i();
      return {trans_b ? Layout::OutIn : Layout::InOut, c.node};
    }
    // A hostile node may have no output: output(0) would then read past the end of an empty list.
    if ((op == "Cast" || op == "Identity") && depth < 2 && c.node->output_size() > 0) {
      Use u = use_of(r, c.node->output(0), depth + 1);
      if (u.layout != Layout::Unknown) return u;
    }
  }
  return {};
}

// IR name of an anonymous llama weight from its consumer's node name (/model/layers.3/self_attn/q_proj/MatMul).
std::string name_from_node(const onnx::NodeProto& node) {
  static const std::regex layer_re(
      R"(/model/layers\.(\d+)/(self_attn|mlp)/(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)/)");
  std::smatch m;
  const std::string& n = node.name();
  if (std::regex_search(n, m, layer_re))
    return "model.layers." + m[1].str() + "." + m[2].str() + "." + m[3].str() + ".weight";
  if (n.find("/lm_head/") != std::string::npos) return names::kLmHead;
  return "";
}

std::string read_config_text(const OnnxReader& r, const std::string& path) {
  const std::string embedded = r.metadata("slmopt.config_json");
  if (!embedded.empty()) return embedded;
  const std::string beside = (fs::path(path).parent_path() / "config.json").string();
  return file_exists(beside) ? read_text_file(beside) : "";
}

// GPT-2 without a config.json: every size from the weights (Hugging Face names, [out, in]), the head count from
// the KV-cache inputs; read as the config.json those sizes make, so the description is the GPT-2 family's.
Config infer_gpt2_config(const std::map<std::string, Tensor>& hf, const OnnxReader& r, const std::string& path) {
  auto dims = [&](const std::string& name) {
    auto it = hf.find(name);
    if (it == hf.end() || it->second.rank() != 2)
      throw_error(ErrorKind::BadInput, "{}: no config.json beside the model and no 2-D initializer '{}'", path, name);
    return it->second.shape();
  };
  nlohmann::json j = {{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}};
  j["vocab_size"] = dims(names::gpt2::kTokenEmbedding)[0];
  j["n_embd"] = dims(names::gpt2::kTokenEmbedding)[1];
  j["n_positions"] = dims(names::gpt2::kPositionEmbedding)[0];
  int64_t layers = 0;
  while (hf.count(names::gpt2::block(layers, "ln_1.weight"))) ++layers;
  j["n_layer"] = layers;
  j["n_inner"] = dims(names::gpt2::block(0, "mlp.c_fc.weight"))[0];
  for (const auto& in : r.proto().graph().input()) {
    if (in.name() != "past_key_values.0.key") continue;
    const auto& shape = in.type().tensor_type().shape();
    if (shape.dim_size() == 4 && shape.dim(1).has_dim_value()) j["n_head"] = shape.dim(1).dim_value();
  }
  if (!j.contains("n_head"))
    throw_error(ErrorKind::BadInput,
                "{}: no config.json beside the model and no past_key_values.0.key input with a "
                "fixed head count; cannot tell the number of attention heads",
                path);
  return parse_hf_config(j.dump(), path);
}

// The exporter folds a (1 + w) norm scale into the stored weights (metadata slmopt.norm_weights =
// "unit_offset_folded"); the IR keeps w.
void unfold_norm_unit_offset(Model& model, const OnnxReader& r) {
  if (!model.config.norm_unit_offset || r.metadata("slmopt.norm_weights") != "unit_offset_folded") return;
  std::vector<Tensor> unfolded;
  for (const auto& [name, t] : model.tensors()) {
    if (t.rank() != 1 || name.find("norm") == std::string::npos || !name.ends_with(".weight")) continue;
    std::vector<float> w = t.to_f32();
    for (float& v : w) v -= 1.0f;
    unfolded.push_back(Tensor::from_f32(name, t.shape(), w));
  }
  for (Tensor& t : unfolded) model.set(std::move(t));
}

int64_t int_attribute(const onnx::NodeProto& node, const char* name, const std::string& path) {
  for (const auto& a : node.attribute())
    if (a.name() == name) return a.i();
  throw_error(ErrorKind::BadInput, "{}: node '{}' ({}) lacks the attribute {}", path, node.name(), node.op_type(), name);
}

// Strips a suffix ("_Q4") from an initializer name, or names the weight after its node.
std::string weight_name(const std::string& initializer, const std::string& suffix, const onnx::NodeProto& node) {
  if (initializer.size() > suffix.size() &&
      initializer.compare(initializer.size() - suffix.size(), suffix.size(), suffix) == 0) {
    const std::string base = initializer.substr(0, initializer.size() - suffix.size());
    if (starts_with(base, "model.") || base == names::kLmHead) return base;
  }
  return name_from_node(node);
}

// Weight-only quantized matrices of slmopt's int4/int8 exports (onnx_export_ops.cpp), dequantized to float
// [out, in] tensors under their canonical names — the values ONNX Runtime multiplies with:
//   MatMulNBits (com.microsoft): B uint8 [N, blocks, block·bits/8] (low nibble first), scales [N·blocks],
//     optional packed zero points (default 2^(bits−1)): W[n, k] = scale · (code − zero);
//   int8 (QDQ DequantizeLinear, MatMulInteger, DynamicQuantizeMatMul): W int8 or uint8 [in, out] with NAME_scale
//     [out] and NAME_zero_point [out] of W's type: W[o, i] = scale[o] · (w[i, o] − zero[o]).
// `consumed` gets the initializers these read (codes, scales, zero points), which are not model tensors themselves.
std::map<std::string, Tensor> dequantized_weights(const OnnxReader& r, const std::string& path,
                                                  StoredQuantization* storage, std::set<std::string>* consumed) {
  std::map<std::string, Tensor> out;
  auto consume = [&](const std::string& name) {
    if (consumed) consumed->insert(name);
  };
  auto add = [&](Tensor t, const std::string& kind, const std::string& description) {
    const std::string name = t.name();
    if (!out.emplace(name, std::move(t)).second)
      throw_error(ErrorKind::BadInput, "{}: two quantized nodes map to tensor '{}'", path, name);
    if (storage) {
      storage->tensors[name] = kind;
      if (storage->description.empty()) storage->description = description;
    }
  };
  for (const auto& node : r.proto().graph().node()) {
    if (node.op_type() == "QLinearMatMul")
      throw_error(ErrorKind::Unsupported, "{}: the graph has QLinearMatMul nodes (activations quantized too); slmopt "
                  "reads weight-only quantized graphs (MatMulNBits, int8 DequantizeLinear/MatMulInteger)", path);
    if (node.op_type() == "MatMulNBits") {
      if (node.input_size() < 3) throw_error(ErrorKind::BadInput, "{}: MatMulNBits '{}' has too few inputs", path, node.name());
      const int64_t K = int_attribute(node, "K", path), N = int_attribute(node, "N", path);
      const int64_t bits = int_attribute(node, "bits", path), bs = int_attribute(node, "block_size", path);
      if ((bits != 4 && bits != 8) || bs < 16 || (bs & (bs - 1)) != 0 || K < 1 || N < 1 || K > (1 << 24) || N > (1 << 24))
        throw_error(ErrorKind::Unsupported, "{}: MatMulNBits '{}' with K {}, N {}, bits {}, block_size {} is not "
                    "read (4 or 8 bits, power-of-two blocks)", path, node.name(), K, N, bits, bs);
      const onnx::TensorProto* b = r.initializer(node.input(1));
      const onnx::TensorProto* sc = r.initializer(node.input(2));
      if (!b || !sc) throw_error(ErrorKind::Unsupported, "{}: MatMulNBits '{}' has non-constant weights", path, node.name());
      const int64_t nb = (K + bs - 1) / bs, blob = bs * bits / 8;
      const std::string codes = r.int8_bytes(*b, N * nb * blob);
      const std::vector<float> scales = r.floats(*sc);
      if (static_cast<int64_t>(scales.size()) != N * nb)
        throw_error(ErrorKind::BadInput, "{}: MatMulNBits '{}' has {} scales, expected {}", path, node.name(),
                    scales.size(), N * nb);
      const int64_t zp_row = (nb * bits + 7) / 8;
      std::string zeros;
      if (node.input_size() > 3 && !node.input(3).empty()) {
        const onnx::TensorProto* z = r.initializer(node.input(3));
        if (!z) throw_error(ErrorKind::Unsupported, "{}: MatMulNBits '{}' has non-constant zero points", path, node.name());
        zeros = r.int8_bytes(*z, N * zp_row);
      }
      for (int i = 1; i < node.input_size(); ++i) consume(node.input(i));
      const std::string name = weight_name(b->name(), "_Q" + std::to_string(bits), node);
      if (name.empty()) throw_error(ErrorKind::Unsupported, "{}: cannot tell which layer MatMulNBits '{}' belongs to", path, node.name());
      std::vector<float> w(static_cast<size_t>(N * K));
      const auto byte = [](const std::string& v, int64_t i) { return static_cast<uint8_t>(v[static_cast<size_t>(i)]); };
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) {
          const int64_t blk = k / bs, j = k % bs;
          const uint8_t packed = byte(codes, (n * nb + blk) * blob + (bits == 4 ? j / 2 : j));
          const int code = bits == 8 ? packed : (j % 2 == 0 ? packed & 0xF : packed >> 4);
          int zero = 1 << (bits - 1);
          if (!zeros.empty()) {
            const uint8_t zb = byte(zeros, n * zp_row + (bits == 4 ? blk / 2 : blk));
            zero = bits == 8 ? zb : (blk % 2 == 0 ? zb & 0xF : zb >> 4);
          }
          w[static_cast<size_t>(n * K + k)] = scales[static_cast<size_t>(n * nb + blk)] * static_cast<float>(code - zero);
        }
      add(Tensor::from_f32(name, {N, K}, w), "MatMulNBits int" + std::to_string(bits),
          fmt::format("MatMulNBits int{}, block {}, {}", bits, bs, zeros.empty() ? "symmetric" : "asymmetric"));
      continue;
    }
    // int8: the weight input of DequantizeLinear (0), MatMulInteger (1) or DynamicQuantizeMatMul (1).
    int w_input = -1;
    if (node.op_type() == "DequantizeLinear") w_input = 0;
    if (node.op_type() == "MatMulInteger" || node.op_type() == "DynamicQuantizeMatMul") w_input = 1;
    if (w_input < 0 || node.input_size() <= w_input) continue;
    const onnx::TensorProto* w = r.initializer(node.input(w_input));
    // int8, or uint8 (slmopt's int8-dynamic exports, for ORT's U8U8 kernels): code − zero point either way.
    if (!w || out.count(w->name()) ||
        (w->data_type() != onnx::TensorProto::INT8 && w->data_type() != onnx::TensorProto::UINT8))
      continue;
    const bool is_signed = w->data_type() == onnx::TensorProto::INT8;
    const onnx::TensorProto* sc = r.initializer(w->name() + "_scale");
    const onnx::TensorProto* zp = r.initializer(w->name() + "_zero_point");
    const std::vector<int64_t> d = r.dims(*w);
    if (!sc || !zp || d.size() != 2)
      throw_error(ErrorKind::Unsupported, "{}: int8 weight '{}' is not in slmopt's per-channel layout (2-D, with "
                  "'{}_scale' and '{}_zero_point')", path, w->name(), w->name(), w->name());
    const int64_t in = d[0], outs = d[1];
    const std::string codes = r.int8_bytes(*w, in * outs);
    const std::vector<float> scales = r.floats(*sc);
    if (zp->data_type() != w->data_type())
      throw_error(ErrorKind::BadInput, "{}: '{}_zero_point' has element type {}, its weight {}: a zero point has its "
                  "weight's type", path, w->name(), element_type_name(zp->data_type()),
                  element_type_name(w->data_type()));
    const std::string zeros = r.int8_bytes(*zp, outs);
    const auto level = [is_signed](char byte) {
      return is_signed ? static_cast<int>(static_cast<int8_t>(byte)) : static_cast<int>(static_cast<uint8_t>(byte));
    };
    if (static_cast<int64_t>(scales.size()) != outs)
      throw_error(ErrorKind::BadInput, "{}: '{}_scale' has {} values, expected {}", path, w->name(), scales.size(), outs);
    for (const auto* t : {w, sc, zp}) consume(t->name());
    const std::string name = weight_name(w->name() + "#", "#", node);
    if (name.empty()) throw_error(ErrorKind::Unsupported, "{}: cannot tell which layer '{}' belongs to", path, w->name());
    std::vector<float> m(static_cast<size_t>(in * outs));
    for (int64_t o = 0; o < outs; ++o)
      for (int64_t i = 0; i < in; ++i)
        m[static_cast<size_t>(o * in + i)] =
            scales[static_cast<size_t>(o)] *
            static_cast<float>(level(codes[static_cast<size_t>(i * outs + o)]) - level(zeros[static_cast<size_t>(o)]));
    add(Tensor::from_f32(name, {outs, in}, m), "int8 per-channel", "int8, one scale per output channel");
  }
  return out;
}

}  // namespace

StoredQuantization onnx_quantized_storage(const std::string& path) {
  const OnnxReader r(path);
  StoredQuantization storage;
  dequantized_weights(r, path, &storage, nullptr);
  return storage;
}

Model load_onnx(const std::string& path) {
  const OnnxReader r(path);
  std::set<std::string> consumed;
  std::map<std::string, Tensor> dequantized = dequantized_weights(r, path, nullptr, &consumed);

  // GPT-2: Hugging Face's own names (exports by other tools) or slmopt's canonical ones with learned positions.
  bool gpt2 = false, llama = false;
  for (const auto& [name, t] : r.initializers()) {
    gpt2 |= starts_with(name, "transformer.h.") || name == names::gpt2::kTokenEmbedding ||
            name == names::kPositionEmbedding;
    llama |= starts_with(name, "model.layers.") || name == names::kEmbedTokens;
  }
  if (gpt2) llama = false;
  if (gpt2 == llama)
    throw_error(ErrorKind::Unsupported,
                "{}: unrecognised ONNX graph: expected the initializers of a GPT-2 "
                "(transformer.h.N.*) or llama-family (model.layers.N.*) decoder",
                path);

  Model model;
  model.source_path = path;
  model.source_format = "onnx";
  std::set<std::string> seen;
  // Hugging Face GPT-2 names (transformer.*, matrices already turned to [out, in]) go onto the canonical ones
  // through the GPT-2 family's table once the config is known (c_attn split into q/k/v).
  std::map<std::string, Tensor> gpt2_hf;
  auto store = [&](Tensor tensor) {
    std::string name = tensor.name();
    if (starts_with(name, "transformer."))
      gpt2_hf.emplace(std::move(name), std::move(tensor));
    else
      model.set(std::move(tensor));
  };
  for (const auto& [init_name, t] : r.initializers()) {
    const bool is_float = t->data_type() == onnx::TensorProto::FLOAT || t->data_type() == onnx::TensorProto::FLOAT16 ||
                          t->data_type() == onnx::TensorProto::BFLOAT16;
    if (!is_float || consumed.count(init_name)) continue;
    std::vector<int64_t> dims = r.dims(*t);
    const bool known =
        starts_with(init_name, "transformer.") || starts_with(init_name, "model.") || init_name == names::kLmHead ||
        init_name == names::kLmHeadBias;
    if (dims.size() == 1 && known) {
      store(Tensor::from_f32(init_name, dims, r.floats(*t)));
      continue;
    }
    if (dims.size() != 2) continue;
    const Use use = use_of(r, init_name);
    std::string name = known ? init_name : (use.matmul ? name_from_node(*use.matmul) : "");
    if (name.empty()) {
      if (use.layout == Layout::InOut || use.layout == Layout::OutIn)
        throw_error(ErrorKind::Unsupported, "{}: cannot tell which layer the matrix '{}' ({}) belongs to", path,
                    init_name, shape_to_string(dims));
      continue;  // constants such as RoPE caches
    }
    if (!seen.insert(name).second)
      throw_error(ErrorKind::BadInput, "{}: two initializers map to tensor '{}'", path, name);
    Tensor tensor = Tensor::from_f32(name, dims, r.floats(*t));
    if (use.layout == Layout::InOut) tensor = hf_transposed_matrix(tensor, name);
    store(std::move(tensor));
  }

  for (auto& [name, tensor] : dequantized) {
    if (!seen.insert(name).second)
      throw_error(ErrorKind::BadInput, "{}: two initializers map to tensor '{}'", path, name);
    store(std::move(tensor));
  }

  const std::string config_text = read_config_text(r, path);
  if (gpt2) {
    model.config = config_text.empty() ? infer_gpt2_config(gpt2_hf, r, path) : parse_hf_config(config_text, path);
    if (model.config.family != "gpt2")
      throw_error(ErrorKind::BadInput, "{}: the graph holds GPT-2 weights but its config.json describes {}", path,
                  model.config.architecture);
    std::vector<Tensor> stored;
    std::set<std::string> out_in;
    for (auto& [name, t] : gpt2_hf) {
      out_in.insert(name);
      stored.push_back(std::move(t));
    }
    for (auto& [name, t] : hf_tensors_to_canonical(family_definition("gpt2"), model.config, std::move(stored), {},
                                                   path, out_in))
      model.set(std::move(t));
    model.validate();
  } else {
    if (config_text.empty())
      throw_error(ErrorKind::BadInput,
                  "{}: a llama-family ONNX graph needs its config.json beside it (RoPE and norm "
                  "settings are not recoverable from the graph)",
                  path);
    model.config = parse_hf_config(config_text, path);
    if (model.config.tie_word_embeddings) model.erase(names::kLmHead);
    unfold_norm_unit_offset(model, r);
    model.validate();
  }
  // The folder the graph belongs to: its own, or for an export folder (io/onnx_folder.h: FOLDER/onnx/NAME.onnx)
  // the one above, which holds the tokenizer files and names the model.
  fs::path folder = fs::path(path).parent_path();
  if (folder.filename() == "onnx" && !file_exists((folder / "tokenizer.json").string()) &&
      file_exists((folder.parent_path() / "config.json").string()))
    folder = folder.parent_path();
  model.config.name = folder.filename().string();
  if (model.config.name.empty()) model.config.name = fs::path(path).stem().string();
  const fs::path tokenizer = folder / "tokenizer.json";
  if (file_exists(tokenizer.string()))
    model.vocab = load_hf_vocab(tokenizer.string(), (folder / "tokenizer_config.json").string());
  spdlog::debug("{}: imported {} ONNX model ({} tensors)", path, model.config.family,
                model.tensors().size());
  return model;
}

}  // namespace slmopt
