// export_onnx: builds the decoder graph from the description (onnx_export_decoder.cpp), moves large
// initializers to external data when the weights pass the threshold, and writes the graph file atomically (the
// folder around it: io/onnx_folder.h) (see io/onnx_export.h for the interface and layout).
#include "slmopt/io/onnx_export.h"

#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "onnx_export_graph.h"
#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/core/log.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/hf_tokenizer.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {

using namespace onnx_export_detail;

const char* onnx_weight_type_name(OnnxWeightType type) {
  switch (type) {
    case OnnxWeightType::F32:
      return "f32";
    case OnnxWeightType::F16:
      return "f16";
    case OnnxWeightType::Int8:
      return "int8";
    case OnnxWeightType::Int8Dynamic:
      return "int8-dynamic";
    case OnnxWeightType::Int4:
      return "int4";
  }
  return "?";
}

std::optional<OnnxWeightType> onnx_weight_type_from_name(std::string_view name) {
  std::string lower(name);
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (OnnxWeightType t : {OnnxWeightType::F32, OnnxWeightType::F16, OnnxWeightType::Int8, OnnxWeightType::Int8Dynamic,
                           OnnxWeightType::Int4})
    if (lower == onnx_weight_type_name(t)) return t;
  return std::nullopt;
}

int onnx_weight_type_bits(OnnxWeightType type) {
  switch (type) {
    case OnnxWeightType::Int8:
    case OnnxWeightType::Int8Dynamic:
      return 8;
    case OnnxWeightType::Int4:
      return 4;
    default:
      return 0;
  }
}

namespace {

constexpr size_t kExternalMinBytes = 1024;  // smaller initializers (constants, norms) stay inline
constexpr uint64_t kExternalAlignment = 64;
constexpr uint64_t kProtobufLimit = (uint64_t{1} << 31) - 1;

// Moves every initializer of kExternalMinBytes or more into `data_path`, leaving a reference behind.
void move_to_external_data(onnx::GraphProto& graph, const std::string& data_path, const std::string& location) {
  AtomicFile data(data_path);
  for (onnx::TensorProto& t : *graph.mutable_initializer()) {
    if (t.raw_data().size() < kExternalMinBytes) continue;
    const uint64_t pad = (kExternalAlignment - data.position() % kExternalAlignment) % kExternalAlignment;
    data.write_zeros(pad);
    const uint64_t offset = data.position();
    data.write(t.raw_data().data(), t.raw_data().size());
    const uint64_t length = t.raw_data().size();
    t.clear_raw_data();
    t.set_data_location(onnx::TensorProto::EXTERNAL);
    auto add = [&](const char* key, const std::string& value) {
      onnx::StringStringEntryProto* e = t.add_external_data();
      e->set_key(key);
      e->set_value(value);
    };
    add("location", location);
    add("offset", std::to_string(offset));
    add("length", std::to_string(length));
  }
  data.commit();
}

}  // namespace

OnnxExportResult export_onnx(const Model& model, const std::string& target, const OnnxExportOptions& options) {
  namespace fs = std::filesystem;
  std::string ext = fs::path(target).extension().string();
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const std::string path = ext == ".onnx" ? target : (fs::path(target) / "model.onnx").string();
  model.validate();
  const Config& c = model.config;
  // The graph builder reads per-layer widths, but the config.json carried in the metadata (and so load_onnx)
  // cannot state them.
  if (!c.uniform_layers())
    throw_error(ErrorKind::Unsupported, "{}: ONNX export needs the same head and FFN counts in every layer", path);

  onnx::ModelProto proto;
  proto.set_ir_version(8);
  proto.set_producer_name("slmopt");
  proto.set_producer_version("0.1.0");
  proto.set_model_version(1);
  onnx::GraphProto& graph = *proto.mutable_graph();
  graph.set_name(c.name.empty() ? "slmopt_decoder" : c.name);
  onnx_graph::GraphBuilder builder(graph);
  ExportContext ctx{model, options, builder};
  build_decoder_graph(ctx);

  auto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(17);
  if (builder.uses_microsoft_domain()) {
    auto* ms = proto.add_opset_import();
    ms->set_domain(onnx_graph::kMicrosoftDomain);
    ms->set_version(1);
  }
  auto add_metadata = [&](const std::string& key, const std::string& value) {
    auto* meta = proto.add_metadata_props();
    meta->set_key(key);
    meta->set_value(value);
  };
  add_metadata("slmopt.family", c.family);
  if (c.norm_unit_offset) add_metadata("slmopt.norm_weights", "unit_offset_folded");  // load_onnx subtracts the 1
  // The Hugging Face config travels inside the file so that load_onnx restores RoPE and norm settings exactly.
  add_metadata("slmopt.config_json", hf_config_json(c, model.vocab, std::nullopt));

  OnnxExportResult result;
  for (const auto& t : graph.initializer()) result.weight_bytes += t.raw_data().size();

  const fs::path model_path(path);
  const fs::path dir = model_path.has_parent_path() ? model_path.parent_path() : fs::path(".");
  if (!dir.empty()) make_directories(dir.string());
  result.files.push_back(path);
  if (result.weight_bytes > options.external_data_threshold) {
    const std::string location = model_path.filename().string() + "_data";  // Optimum / transformers.js naming
    move_to_external_data(graph, (dir / location).string(), location);
    result.external_data = true;
    result.files.push_back((dir / location).string());
  }
  const size_t size = proto.ByteSizeLong();
  if (size > kProtobufLimit)
    throw_error(ErrorKind::Internal, "{}: the ONNX graph is {} bytes, beyond protobuf's 2 GB limit", path, size);
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) throw_error(ErrorKind::Internal, "{}: ONNX serialization failed", path);
  AtomicFile out(path);
  out.write(bytes.data(), bytes.size());
  out.commit();

  spdlog::info("{}: ONNX {} export, {} bytes of weights{}", path, onnx_weight_type_name(options.weight_type),
               result.weight_bytes, result.external_data ? " (external data)" : "");
  return result;
}

}  // namespace slmopt
