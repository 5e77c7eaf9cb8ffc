#include "model_folder.h"

#include "json_strict.h"

#include <algorithm>
#include <random>
#include <set>
#include <vector>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/io/hf_tokenizer.h"

namespace slmopt::model_folder {
namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_weight_file(const std::string& name) {
  return ends_with(name, ".safetensors") || ends_with(name, ".bin") || ends_with(name, ".gguf") ||
         ends_with(name, ".safetensors.index.json") || ends_with(name, ".bin.index.json");
}

// Files of the kinds a checkpoint writer produces: a stale one left beside the new checkpoint would mix models.
bool is_checkpoint_file(const std::string& name) {
  return is_weight_file(name) || name == "tokenizer.json" || name == "tokenizer_config.json" ||
         name == "generation_config.json" || name == "quantize_config.json";
}

// The weight files of the checkpoint in `folder`: model.safetensors, or the index and the shards it lists.
std::set<std::string> checkpoint_weights(const fs::path& folder) {
  std::set<std::string> names;
  std::error_code ec;
  if (fs::is_regular_file(folder / "model.safetensors", ec)) names.insert("model.safetensors");
  const fs::path index = folder / "model.safetensors.index.json";
  if (!fs::is_regular_file(index, ec)) return names;
  nlohmann::json j;
  try {
    j = read_json_file_strict(index.string());
  } catch (const Error&) {
    return names;  // not an index slmopt can vouch for: its shards count as files it did not write
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) return names;
  for (const auto& [tensor, file] : j["weight_map"].items()) {
    if (!file.is_string()) return names;
    const std::string shard = file.get<std::string>();
    if (shard.find('/') != std::string::npos || !is_weight_file(shard)) return names;  // only files beside it
    names.insert(shard);
  }
  names.insert("model.safetensors.index.json");
  return names;
}

}  // namespace

void check_target(const fs::path& target) {
  std::error_code ec;
  if (!fs::exists(target, ec)) return;
  if (!fs::is_directory(target, ec))
    throw_error(ErrorKind::Usage, "{}: exists and is not a folder; refusing to replace it", target.string());
  if (fs::is_empty(target, ec) || fs::exists(target / "config.json", ec)) return;
  throw_error(ErrorKind::Usage, "{}: exists and does not hold a model (no config.json); refusing to write into it",
              target.string());
}

Staging::Staging(const fs::path& target) : target_(target.lexically_normal()) {
  if (!target_.has_filename() && target_.has_parent_path()) target_ = target_.parent_path();  // "out/" → "out"
  fs::path abs = fs::absolute(target_).lexically_normal();
  if (!abs.has_filename()) abs = abs.parent_path();  // "out/" names the folder "out"
  const std::string leaf = abs.filename().string();
  if (leaf.empty() || leaf == "." || leaf == "..") throw_error(ErrorKind::Usage, "{}: name an output folder", target_.string());
  make_directories(abs.parent_path().string());
  folder_.emplace(abs.parent_path().string(), "." + leaf + ".tmp.");
}

void Staging::commit() {
  std::error_code ec;
  if (!fs::exists(target_, ec)) {
    move_into_place(path(), target_);  // a new folder appears whole
    folder_->release();
    return;
  }
  check_target(target_);
  std::set<std::string> staged;
  for (const auto& e : fs::directory_iterator(path())) staged.insert(e.path().filename().string());
  const std::set<std::string> old_weights = checkpoint_weights(target_);
  for (const auto& e : fs::directory_iterator(target_, ec)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && is_checkpoint_file(name) && !staged.count(name) && !old_weights.count(name))
      throw_error(ErrorKind::Usage, "{}: holds {}, which the new checkpoint would not replace (the two would mix); "
                  "write to an empty or new folder", target_.string(), name);
  }
  std::vector<std::string> order(staged.begin(), staged.end());
  std::stable_partition(order.begin(), order.end(), [](const std::string& n) { return is_weight_file(n); });
  std::stable_partition(order.begin(), order.end(), [](const std::string& n) { return n != "config.json"; });
  for (const auto& name : order) move_into_place(path() / name, target_ / name);
  // The replaced checkpoint's own weights that the new one does not overwrite (a sharded model replaced by a
  // single file): part of the model being replaced, so they go with it.
  for (const auto& name : old_weights)
    if (!staged.count(name)) fs::remove(target_ / name, ec);
  // The staging folder is empty now; TempFolder removes it.
}

std::vector<std::string> write_tokenizer_files(const fs::path& folder, const Model& model) {
  std::vector<std::string> written;
  if (model.vocab.kind != VocabKind::None) {
    write_file_atomic((folder / "tokenizer.json").string(), hf_tokenizer_json(model.vocab));
    write_file_atomic((folder / "tokenizer_config.json").string(), hf_tokenizer_config_json(model.vocab));
    written = {"tokenizer.json", "tokenizer_config.json"};
  }
  if (!model.generation.json.empty()) {
    write_file_atomic((folder / "generation_config.json").string(), model.generation.json);
    written.push_back("generation_config.json");
  }
  return written;
}

}  // namespace slmopt::model_folder
