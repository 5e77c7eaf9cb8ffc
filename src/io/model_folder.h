// Writing a model folder (HF checkpoints, GPTQ/AWQ checkpoints) without losing anything: files are staged in a
// temporary folder beside the target; a new target is renamed into place whole, an existing model folder gets
// only the staged files moved over their namesakes (weights first, config.json last), and the replaced checkpoint's
// own weights (model.safetensors, or its index and the shards the index lists) removed when the new one does not
// overwrite them. Files slmopt does not write (special_tokens_map.json, README.md, an onnx/ export) stay; any other
// stale file of the kinds slmopt writes (a shard no index lists, a tokenizer or generation config the new
// checkpoint would not replace) is refused, naming it, because the two checkpoints would mix. Private to src/io.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <string>
#include <vector>

#include "slmopt/core/temp_folder.h"
#include "slmopt/ir/model.h"

namespace slmopt::model_folder {

// The target is missing, an empty folder or a model folder (config.json); anything else is an Error(Usage).
void check_target(const std::filesystem::path& target);

// A fresh staging folder beside the target, removed on scope exit unless committed.
class Staging {
 public:
  explicit Staging(const std::filesystem::path& target);
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  const std::filesystem::path& path() const { return folder_->path(); }
  // Moves the staged files into the target (see above).
  void commit();

 private:
  std::filesystem::path target_;
  std::optional<TempFolder> folder_;
};

// Writes the files every model folder carries beside its weights and config: tokenizer.json and
// tokenizer_config.json (when the model has a vocabulary) and generation_config.json (when it has one), into
// `folder`. Returns the names written, in that order.
std::vector<std::string> write_tokenizer_files(const std::filesystem::path& folder, const Model& model);

}  // namespace slmopt::model_folder
