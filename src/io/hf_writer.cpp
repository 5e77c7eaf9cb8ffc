// write_hf_model: the checkpoint is assembled under a temporary name beside the target (every file through
// AtomicFile). A new target is renamed into place whole; an existing model folder gets its files replaced one by
// one (weights first, config.json last), and everything else in it (special_tokens_map.json, README.md, an onnx/
// export) stays: slmopt never deletes a file it did not write. A failed or interrupted write leaves the previous
// output, or nothing, never half a checkpoint.
#include <algorithm>
#include <filesystem>

#include "family.h"
#include "hf_tensor_map.h"
#include "model_folder.h"
#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/core/interrupt.h"
#include "slmopt/core/log.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/safetensors.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {

namespace fs = std::filesystem;

void check_hf_output_folder(const std::string& dir) { model_folder::check_target(fs::path(dir).lexically_normal()); }

void write_hf_model(const Model& model, const std::string& dir, const HfWriteOptions& options) {
  const fs::path target = fs::path(dir).lexically_normal();
  model_folder::check_target(target);

  // Everything that can be refused is checked before any file is written.
  model.validate();
  const std::vector<Tensor> stored = hf_tensors_from_canonical(family_definition(model.config.family), model, dir);
  std::vector<const Tensor*> tensors;
  for (const Tensor& t : stored) tensors.push_back(&t);
  const Tensor* embed = model.find(names::kEmbedTokens);
  std::optional<DType> torch_dtype = options.float_type;
  if (!torch_dtype && embed) torch_dtype = embed->dtype();
  const std::string config_json = hf_config_json(model.config, model.vocab, torch_dtype);

  model_folder::Staging staging(target);
  const fs::path temp = staging.path();
  write_file_atomic((temp / "config.json").string(), config_json);
  write_safetensors_sharded(temp.string(), tensors, {{"format", "pt"}}, options.max_shard_bytes, options.float_type);
  model_folder::write_tokenizer_files(temp, model);
  staging.commit();
  spdlog::info("wrote {} ({} tensors)", target.string(), tensors.size());
}

}  // namespace slmopt
