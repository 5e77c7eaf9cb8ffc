// load_onnx (see onnx_import.h): parse, decode initializers, find each weight's IR name and layout from its
// name or its consumer, build the Config, validate.
#include "slmopt/io/onnx_import.h"

#include <onnx/onnx_pb.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/core/log.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/hf_gpt2.h"
#include "slmopt/io/hf_tokenizer.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

namespace fs = std::filesystem;

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
                  path_, t.name(), type);
    std::string external;
    const std::string* bytes = nullptr;
    if (t.data_location() == onnx::TensorProto::EXTERNAL) {
      external = read_external(t, static_cast<uint64_t>(n) * elem);
      bytes = &external;
    } else if (t.has_raw_data()) {
      bytes = &t.raw_data();
    }
    std::vector<float> out(static_cast<size_t>(n));
    if (bytes) {
      if (bytes->size() != static_cast<size_t>(n) * elem)
        throw_error(ErrorKind::BadInput, "{}: initializer '{}' holds {} bytes, its shape needs {}", path_, t.name(),
                    bytes->size(), static_cast<size_t>(n) * elem);
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
      if (t.float_data_size() != n)
        throw_error(ErrorKind::BadInput, "{}: initializer '{}' has {} values, its shape needs {}", path_, t.name(),
                    t.float_data_size(), n);
      std::copy(t.float_data().begin(), t.float_data().end(), out.begin());
    } else {
      if (t.int32_data_size() != n)
        throw_error(ErrorKind::BadInput, "{}: initializer '{}' has {} values, its shape needs {}", path_, t.name(),
                    t.int32_data_size(), n);
      for (int64_t i = 0; i < n; ++i) {
        const auto h = static_cast<uint16_t>(t.int32_data(static_cast<int>(i)));
        out[static_cast<size_t>(i)] = type == onnx::TensorProto::FLOAT16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
    }
    return out;
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
    if ((op == "Cast" || op == "Identity") && depth < 2) {
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

// GPT-2 without a config.json: every size from the weights, the head count from the KV-cache inputs.
Config infer_gpt2_config(const Model& model, const OnnxReader& r, const std::string& path) {
  Config c;
  c.family = Family::Gpt2;
  c.architecture = "GPT2LMHeadModel";
  const Tensor& wte = model.tensor(names::kEmbedTokens);
  const Tensor& wpe = model.tensor(names::kPositionEmbedding);
  c.vocab_size = wte.dim(0);
  c.hidden_size = wte.dim(1);
  c.max_position = wpe.dim(0);
  while (model.has(names::attn_norm(c.num_layers))) ++c.num_layers;
  c.intermediate_size = model.tensor(names::up_proj(0)).dim(0);
  for (const auto& in : r.proto().graph().input()) {
    if (in.name() != "past_key_values.0.key") continue;
    const auto& shape = in.type().tensor_type().shape();
    if (shape.dim_size() == 4 && shape.dim(1).has_dim_value()) c.num_heads = shape.dim(1).dim_value();
  }
  if (c.num_heads <= 0)
    throw_error(ErrorKind::BadInput,
                "{}: no config.json beside the model and no past_key_values.0.key input with a "
                "fixed head count; cannot tell the number of attention heads",
                path);
  c.num_kv_heads = c.num_heads;
  c.head_dim = c.hidden_size / c.num_heads;
  set_gpt2_description(c);
  c.validate(path);
  return c;
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

}  // namespace

Model load_onnx(const std::string& path) {
  const OnnxReader r(path);
  for (const auto& n : r.proto().graph().node())
    for (const char* op :
         {"MatMulNBits", "DequantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul", "QLinearMatMul"})
      if (n.op_type() == op)
        throw_error(ErrorKind::Unsupported,
                    "{}: the graph has weight-quantized {} nodes; slmopt imports float ONNX "
                    "models (import the float export and quantize with slmopt)",
                    path, op);

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
  // Hugging Face GPT-2 names (transformer.*) go onto the canonical ones (c_attn split into q/k/v).
  auto store = [&](Tensor tensor) {
    const std::string name = tensor.name();
    if (starts_with(name, "transformer."))
      add_gpt2_tensor(model, name, std::move(tensor));
    else
      model.set(std::move(tensor));
  };
  for (const auto& [init_name, t] : r.initializers()) {
    const bool is_float = t->data_type() == onnx::TensorProto::FLOAT || t->data_type() == onnx::TensorProto::FLOAT16 ||
                          t->data_type() == onnx::TensorProto::BFLOAT16;
    if (!is_float) continue;
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
    if (use.layout == Layout::InOut) tensor = transposed_f32(tensor, name);
    store(std::move(tensor));
  }

  const std::string config_text = read_config_text(r, path);
  if (gpt2) {
    model.config = config_text.empty() ? infer_gpt2_config(model, r, path)
                                       : parse_gpt2_config(nlohmann::json::parse(config_text, nullptr, false), path);
    check_gpt2_tensors(model, path);
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
  spdlog::debug("{}: imported {} ONNX model ({} tensors)", path, family_name(model.config.family),
                model.tensors().size());
  return model;
}

}  // namespace slmopt
