// load_hf_model: config.json → Config, safetensors → tensor views under canonical names, tokenizer files →
// Vocab, generation_config.json kept verbatim; then the model is validated against its config.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "hf_family.h"
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

Tensor renamed(const Tensor& t, const std::string& name) {
  Tensor copy = t;  // shares the mapped bytes
  copy.set_name(name);
  return copy;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.data() == b.data() || std::memcmp(a.data(), b.data(), a.nbytes()) == 0);
}

// Stored tensors → the IR's tensor set: buffers dropped, metadata aliases resolved, the tied head folded into
// the embedding, and anything the config does not explain refused.
std::map<std::string, Tensor> resolve_tensors(const std::string& dir, const HfFamily& family, const Config& config,
                                              SafetensorsCheckpoint& checkpoint) {
  std::map<std::string, Tensor> tensors;
  for (Tensor& t : checkpoint.tensors) {
    if (family.is_buffer(t.name())) continue;
    const std::string name = t.name();
    tensors.emplace(name, std::move(t));
  }
  const std::vector<std::string> expected_list = family.tensor_names(config);
  std::set<std::string> expected(expected_list.begin(), expected_list.end());
  expected.insert(names::kLmHead);  // a tied checkpoint may store the head; it is folded below

  // torch's shared-tensor saving stores one copy and records "<dropped name>": "<kept name>" in __metadata__.
  for (const auto& [alias, target] : checkpoint.metadata) {
    if (expected.count(alias) == 0 || tensors.count(alias) != 0) continue;
    auto it = tensors.find(target);
    if (it != tensors.end()) tensors.emplace(alias, renamed(it->second, alias));
  }

  if (config.tie_word_embeddings) {
    auto head = tensors.find(names::kLmHead);
    if (head != tensors.end()) {
      auto embed = tensors.find(names::kEmbedTokens);
      if (embed == tensors.end()) {
        tensors.emplace(names::kEmbedTokens, renamed(head->second, names::kEmbedTokens));
      } else if (!same_bytes(head->second, embed->second)) {
        spdlog::warn("{}: tie_word_embeddings is true but lm_head.weight differs from the embedding; using the "
                     "embedding, as transformers does", dir);
      }
      tensors.erase(names::kLmHead);
    }
  }

  std::vector<std::string> unknown;
  for (const auto& [name, t] : tensors)
    if (expected.count(name) == 0) unknown.push_back(name);
  if (!unknown.empty()) {
    std::string list;
    for (size_t i = 0; i < unknown.size() && i < 8; ++i) list += (i ? ", " : "") + unknown[i];
    if (unknown.size() > 8) list += fmt::format(" and {} more", unknown.size() - 8);
    throw_error(ErrorKind::BadInput, "{}: {} tensor(s) that {} with this config.json does not use: {}", dir,
                unknown.size(), config.architecture, list);
  }
  return tensors;
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
  const HfFamily* family = find_hf_family_by_architecture(model.config.architecture);
  if (family == nullptr) throw_error(ErrorKind::Internal, "{}: no family for '{}'", dir, model.config.architecture);

  SafetensorsCheckpoint checkpoint = read_safetensors_checkpoint(dir);
  for (auto& [name, t] : resolve_tensors(dir, *family, model.config, checkpoint)) model.set(std::move(t));

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
                checkpoint.files.size());
  return model;
}

}  // namespace slmopt
