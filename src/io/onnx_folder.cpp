// export_onnx_folder (see io/onnx_folder.h): check the target folder, assemble the export in a temporary folder
// beside it (the graph through export_onnx, then the config, tokenizer and genai files), and move the files in.
#include "slmopt/io/onnx_folder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <random>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "family.h"
#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/core/temp_folder.h"
#include "slmopt/core/log.h"
#include "slmopt/io/hf.h"
#include "model_folder.h"

namespace slmopt {
namespace {

namespace fs = std::filesystem;

// The files an export writes at the folder's top level.
constexpr const char* kSidecars[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                     "generation_config.json", "genai_config.json"};

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A file at the top level that belongs to another model: a graph or a checkpoint.
bool is_model_file(const std::string& name) {
  const std::string n = lower(name);
  return ends_with(n, ".onnx") || ends_with(n, ".onnx_data") || ends_with(n, ".onnx.data") ||
         ends_with(n, ".safetensors") || ends_with(n, ".gguf") || ends_with(n, ".bin") ||
         n == "model.safetensors.index.json";
}

}  // namespace

std::string onnx_default_file_name(OnnxWeightType type) {
  switch (type) {
    case OnnxWeightType::F32: return "model.onnx";
    case OnnxWeightType::F16: return "model_fp16.onnx";
    case OnnxWeightType::Int8: return "model_int8.onnx";
    case OnnxWeightType::Int8Dynamic: return "model_quantized.onnx";
    case OnnxWeightType::Int4: return "model_q4.onnx";
  }
  return "model.onnx";
}

OnnxFolderTarget onnx_folder_target(const std::string& output, OnnxWeightType type) {
  if (output.empty()) throw_error(ErrorKind::Usage, "name an output folder for the ONNX export");
  const fs::path p = fs::path(output).lexically_normal();
  OnnxFolderTarget t;
  if (lower(p.extension().string()) == ".onnx") {
    const fs::path parent = p.parent_path();
    if (parent.filename() != "onnx")
      throw_error(ErrorKind::Usage,
                  "{}: an ONNX export is a folder (config.json, tokenizer and genai_config.json beside "
                  "onnx/{}); name the folder ({}) or a graph inside its onnx/ subfolder ({}/onnx/{})",
                  output, p.filename().string(), (p.parent_path() / p.stem()).string(),
                  (p.parent_path() / p.stem()).string(), p.filename().string());
    t.folder = parent.has_parent_path() ? parent.parent_path().string() : ".";
    t.model_file = p.filename().string();
  } else {
    std::string folder = p.string();
    while (folder.size() > 1 && folder.back() == '/') folder.pop_back();
    t.folder = folder.empty() ? "." : folder;
    t.model_file = onnx_default_file_name(type);
  }
  return t;
}

void check_onnx_folder_target(const OnnxFolderTarget& target) {
  const fs::path folder(target.folder);
  std::error_code ec;
  if (!fs::exists(folder, ec)) return;
  if (!fs::is_directory(folder, ec))
    throw_error(ErrorKind::Usage, "{}: exists and is not a folder; an ONNX export is a folder", target.folder);
  for (const auto& e : fs::directory_iterator(folder, ec))
    if (e.is_regular_file() && is_model_file(e.path().filename().string()))
      throw_error(ErrorKind::Usage, "{}: holds another model ({}); write the ONNX export to its own folder",
                  target.folder, e.path().filename().string());
  bool earlier_export = false;
  if (fs::is_directory(folder / "onnx", ec)) {
    for (const auto& e : fs::directory_iterator(folder / "onnx", ec)) {
      const std::string name = e.path().filename().string();
      if (name == target.model_file || name == target.model_file + "_data") {
        earlier_export = true;
        continue;
      }
      if (ends_with(lower(name), ".onnx"))
        throw_error(ErrorKind::Usage, "{}: already holds another ONNX export (onnx/{}); write each export to its "
                    "own folder (or remove that one)", target.folder, name);
    }
  }
  if (earlier_export) return;  // the same export again: its files are replaced
  for (const char* name : kSidecars)
    if (fs::exists(folder / name, ec))
      throw_error(ErrorKind::Usage, "{}: holds {}, which no earlier ONNX export of this name wrote; refusing to "
                  "replace it (choose an empty or new folder)", target.folder, name);
}

std::string genai_config_json(const Model& model, const std::string& model_file, const OnnxExportOptions& options) {
  const Config& c = model.config;
  nlohmann::ordered_json decoder = {
      {"filename", model_file},
      {"head_size", c.head_dim},
      {"hidden_size", c.hidden_size},
      {"num_attention_heads", c.num_heads},
      {"num_hidden_layers", c.num_layers},
      {"num_key_value_heads", c.num_kv_heads},
      {"inputs",
       {{"input_ids", "input_ids"},
        {"attention_mask", "attention_mask"},
        {"position_ids", "position_ids"},
        {"past_key_names", "past_key_values.%d.key"},
        {"past_value_names", "past_key_values.%d.value"}}},
      {"outputs",
       {{"logits", "logits"}, {"present_key_names", "present.%d.key"}, {"present_value_names", "present.%d.value"}}},
  };
  nlohmann::ordered_json m = {
      {"type", family_definition(c.family).genai_model_type},
      {"context_length", c.max_position},
      {"vocab_size", c.vocab_size},
  };
  if (model.vocab.bos_id) m["bos_token_id"] = *model.vocab.bos_id;
  if (model.vocab.eos_id) m["eos_token_id"] = *model.vocab.eos_id;
  if (model.vocab.pad_id) m["pad_token_id"] = *model.vocab.pad_id;
  m["decoder"] = decoder;
  nlohmann::ordered_json j = {
      {"model", m},
      {"search", {{"max_length", c.max_position}, {"do_sample", false}, {"num_beams", 1}}},
      {"slmopt",
       {{"weight_type", onnx_weight_type_name(options.weight_type)},
        {"fused_ops", options.fused_ops},
        {"kv_cache",
         {{"layout", "[batch, kv_heads, sequence, head_dim]"},
          {"dtype", "float32"},
          {"keys_after_rope", c.position_kind == PositionKind::Rope}}}}},
  };
  return j.dump(2) + "\n";
}

OnnxExportResult export_onnx_folder(const Model& model, const std::string& output, const OnnxExportOptions& options) {
  const OnnxFolderTarget target = onnx_folder_target(output, options.weight_type);
  check_onnx_folder_target(target);
  const fs::path folder = fs::path(target.folder);
  fs::path abs = fs::absolute(folder).lexically_normal();
  if (!abs.has_filename()) abs = abs.parent_path();  // "out/" and "." name the folder itself
  const fs::path parent = abs.has_parent_path() ? abs.parent_path() : fs::path("/");
  make_directories(parent.string());

  // Staging folder beside the target (same file system, so the final moves are renames).
  TempFolder staging(parent.string(), "." + abs.filename().string() + ".tmp.");
  const fs::path temp = staging.path();
  make_directories((temp / "onnx").string());

  const OnnxExportResult staged = export_onnx(model, (temp / "onnx" / target.model_file).string(), options);
  std::string config = hf_config_json(model.config, model.vocab, std::nullopt);
  if (staged.external_data) {
    // transformers.js loads <file>_data only when the config says the export has external data.
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(config);
    j["transformers.js_config"] = {{"use_external_data_format", true}};
    config = j.dump(2) + "\n";
  }
  std::vector<std::string> top = {"config.json", "genai_config.json"};
  write_file_atomic((temp / "config.json").string(), config);
  write_file_atomic((temp / "genai_config.json").string(),
                    genai_config_json(model, "onnx/" + target.model_file, options));
  for (std::string& name : model_folder::write_tokenizer_files(temp, model)) top.push_back(std::move(name));

  OnnxExportResult result = staged;
  result.files.clear();
  const std::string graph = target.model_file, data = target.model_file + "_data";
  std::error_code ec;
  if (!fs::exists(folder, ec)) {
    move_into_place(temp, folder);  // a new folder appears whole
    staging.release();
  } else {
    // An earlier export of the same name: replace its files one by one, the data before the graph that
    // references it, the graph before the configs that name it. Checked again now: a concurrent export (two
    // targets of a `make -j` into one folder) may have landed while this one was being built.
    check_onnx_folder_target(target);
    make_directories((folder / "onnx").string());
    if (staged.external_data) move_into_place(temp / "onnx" / data, folder / "onnx" / data);
    move_into_place(temp / "onnx" / graph, folder / "onnx" / graph);
    if (!staged.external_data) fs::remove(folder / "onnx" / data, ec);  // the replaced graph's own data
    for (const auto& name : top) move_into_place(temp / name, folder / name);
  }
  result.files.push_back((folder / "onnx" / graph).string());
  if (staged.external_data) result.files.push_back((folder / "onnx" / data).string());
  for (const auto& name : top) result.files.push_back((folder / name).string());
  spdlog::info("{}: ONNX export folder ({})", target.folder, fmt::join(result.files, ", "));
  return result;
}

std::string onnx_folder_model_path(const std::string& folder) {
  const fs::path dir = fs::path(folder) / "onnx";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return "";
  std::vector<std::string> graphs;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && ends_with(lower(e.path().filename().string()), ".onnx"))
      graphs.push_back(e.path().filename().string());
  std::sort(graphs.begin(), graphs.end());
  if (graphs.empty()) return "";
  if (graphs.size() == 1) return (dir / graphs[0]).string();
  for (const auto& g : graphs)
    if (g == "model.onnx") return (dir / g).string();
  throw_error(ErrorKind::Usage, "{}: holds several ONNX graphs ({}); pass one of them", dir.string(),
              fmt::join(graphs, ", "));
}

}  // namespace slmopt
