// The in-memory model every subcommand works on: config + tokenizer description + named tensors (canonical
// Hugging Face names and layouts, see tensor_names.h). Passes edit it in place.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "slmopt/ir/config.h"
#include "slmopt/ir/tensor.h"
#include "slmopt/ir/vocab.h"

namespace slmopt {

struct GenerationConfig {
  std::string json;  // generation_config.json as read, re-emitted verbatim by HF output
};

class Model {
 public:
  Config config;
  Vocab vocab;
  GenerationConfig generation;
  std::string source_path;
  std::string source_format;  // "hf", "gguf", "onnx"

  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws Error(BadInput) naming the model source and the tensor when absent.
  const Tensor& tensor(const std::string& name) const;
  const Tensor* find(const std::string& name) const;
  // Adds or replaces.
  void set(Tensor tensor);
  void erase(const std::string& name);

  // Tensors in a stable order: by layer, then by name (embedding first, head last), so writers are
  // deterministic and group a layer's tensors together.
  std::vector<const Tensor*> ordered_tensors() const;
  const std::map<std::string, Tensor>& tensors() const { return tensors_; }

  // The output projection: lm_head.weight, or the embedding when tied.
  const Tensor& output_weight() const;
  int64_t parameter_count() const;
  size_t total_bytes() const;

  // Checks every tensor the config needs is present with the shape the config implies (throws BadInput).
  void validate() const;

 private:
  std::map<std::string, Tensor> tensors_;
};

}  // namespace slmopt
