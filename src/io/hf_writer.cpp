// write_hf_model: the folder is assembled under a temporary name beside the target (every file through
// AtomicFile) and renamed into place only when complete, so a failed or interrupted write leaves the previous
// output, or nothing, never half a checkpoint.
#include <algorithm>
#include <filesystem>

#include "hf_family.h"
#include "hf_tensor_map.h"
#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/core/interrupt.h"
#include "slmopt/core/log.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/hf_tokenizer.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

namespace fs = std::filesystem;

// Removes a folder on scope exit (and on Ctrl-C, core/interrupt.h) unless released.
class FolderGuard {
 public:
  explicit FolderGuard(fs::path path) : path_(std::move(path)) { register_temp_path(path_.string()); }
  ~FolderGuard() {
    if (path_.empty()) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
    unregister_temp_path(path_.string());
  }
  FolderGuard(const FolderGuard&) = delete;
  FolderGuard& operator=(const FolderGuard&) = delete;
  void release() {
    unregister_temp_path(path_.string());
    path_.clear();
  }

 private:
  fs::path path_;
};

// An existing target is replaced only when it is empty or looks like an earlier model output: never delete a
// folder of unrelated files because it was named as the output.
void check_replaceable(const fs::path& target) {
  std::error_code ec;
  if (!fs::exists(target, ec)) return;
  if (!fs::is_directory(target, ec))
    throw_error(ErrorKind::Io, "{}: exists and is not a folder; refusing to replace it", target.string());
  if (fs::is_empty(target, ec) || fs::exists(target / "config.json", ec)) return;
  throw_error(ErrorKind::Io, "{}: exists and does not hold a model (no config.json); refusing to replace it",
              target.string());
}

void rename_or_throw(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) throw_error(ErrorKind::Io, "{}: cannot rename to {}: {}", from.string(), to.string(), ec.message());
}

}  // namespace

void write_hf_model(const Model& model, const std::string& dir, const HfWriteOptions& options) {
  const fs::path target = fs::path(dir).lexically_normal();
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string leaf = target.filename().string();
  if (leaf.empty() || leaf == "." || leaf == "..")
    throw_error(ErrorKind::Usage, "{}: name an output folder", dir);
  check_replaceable(target);
  make_directories(parent.string());

  // Everything that can be refused is checked before any file is written.
  model.validate();
  const std::vector<Tensor> stored = hf_tensors_from_canonical(hf_family_for(model.config.family), model, dir);
  std::vector<const Tensor*> tensors;
  for (const Tensor& t : stored) tensors.push_back(&t);
  const Tensor* embed = model.find(names::kEmbedTokens);
  std::optional<DType> torch_dtype = options.float_type;
  if (!torch_dtype && embed) torch_dtype = embed->dtype();
  const std::string config_json = hf_config_json(model.config, model.vocab, torch_dtype);

  std::error_code ec;
  // Fresh unpredictable names (mkdtemp): a folder or symlink planted at a guessable name is never written through.
  const fs::path temp = make_temp_directory(parent.string(), "." + leaf + ".tmp.");
  FolderGuard temp_guard(temp);

  write_file_atomic((temp / "config.json").string(), config_json);
  write_safetensors_sharded(temp.string(), tensors, {{"format", "pt"}}, options.max_shard_bytes, options.float_type);
  if (model.vocab.kind != VocabKind::None) {
    write_file_atomic((temp / "tokenizer.json").string(), hf_tokenizer_json(model.vocab));
    write_file_atomic((temp / "tokenizer_config.json").string(), hf_tokenizer_config_json(model.vocab));
  }
  if (!model.generation.json.empty())
    write_file_atomic((temp / "generation_config.json").string(), model.generation.json);

  // Swap: the old output moves aside first, so a failed rename leaves it where it was.
  const bool replacing = fs::exists(target, ec);
  fs::path old;
  if (replacing) {
    // rename(2) moves a folder onto an empty one, so the aside name is reserved the same way.
    old = make_temp_directory(parent.string(), "." + leaf + ".old.");
    try {
      rename_or_throw(target, old);
    } catch (...) {
      fs::remove(old, ec);
      throw;
    }
  }
  try {
    rename_or_throw(temp, target);
  } catch (...) {
    if (replacing) fs::rename(old, target, ec);
    throw;
  }
  temp_guard.release();
  if (replacing) fs::remove_all(old, ec);
  spdlog::info("wrote {} ({} tensors)", target.string(), tensors.size());
}

}  // namespace slmopt
