// load_hf_model: config.json → Config, safetensors → tensor views under canonical names, tokenizer files →
// Vocab, generation_config.json kept verbatim; then the model is validated against its config.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "family.h"
#include "hf_tensor_map.h"
#include "json_strict.h"
#include "slmopt/core/error.h"
#include "slmopt/core/log.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/hf_tokenizer.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

namespace fs = std::filesystem;

std::string folder_name(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // "models/x/" → "x"
  if (p.filename() == "." || p.filename().empty()) p = fs::absolute(p).lexically_normal();
  return p.filename().string();
}

}  // namespace

Model load_hf_model(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw_error(ErrorKind::Io, "{}: no such folder", dir);
  const std::string config_path = dir + "/config.json";
  if (!file_exists(config_path))
    throw_error(ErrorKind::BadInput, "{}: no config.json (not a Hugging Face model folder)", dir);

  Model model;
  model.source_path = dir;
  model.source_format = "hf";
  model.config = parse_hf_config(read_text_file(config_path), config_path);
  model.config.name = folder_name(dir);
  const FamilyDefinition* family = find_family_by_hf_architecture(model.config.architecture);
  if (family == nullptr) throw_error(ErrorKind::Internal, "{}: no family for '{}'", dir, model.config.architecture);

  SafetensorsCheckpoint checkpoint = read_safetensors_checkpoint(dir);
  const size_t files = checkpoint.files.size();
  for (auto& [name, t] : hf_tensors_to_canonical(*family, model.config, std::move(checkpoint.tensors),
                                                 checkpoint.metadata, dir))
    model.set(std::move(t));

  const std::string generation_path = dir + "/generation_config.json";
  if (file_exists(generation_path)) {
    model.generation.json = read_text_file(generation_path);
    if (!parse_json_strict(model.generation.json, generation_path).is_object())
      throw_error(ErrorKind::BadInput, "{}: not a JSON object", generation_path);
  }

  const std::string tokenizer_path = dir + "/tokenizer.json";
  if (file_exists(tokenizer_path)) {
    model.vocab = load_hf_vocab(tokenizer_path, dir + "/tokenizer_config.json");
    if (model.vocab.size() > model.config.vocab_size)
      throw_error(ErrorKind::BadInput, "{}: the tokenizer has {} tokens but config.json vocab_size is {}",
                  tokenizer_path, model.vocab.size(), model.config.vocab_size);
  } else {
    spdlog::warn("{}: no tokenizer.json; the model loads without a tokenizer (token-id inputs only)", dir);
  }

  model.validate();
  spdlog::debug("{}: loaded {} ({} tensors, {} files)", dir, model.config.architecture, model.tensors().size(),
                files);
  return model;
}

}  // namespace slmopt
