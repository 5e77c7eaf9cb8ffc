// The family registry (private to io/). A model family is everything slmopt knows about one kind of checkpoint,
// and all of it is defined in one file, src/io/families/<name>.cpp, as one FamilyDefinition returned by
// `const FamilyDefinition& family_<name>()`: the Hugging Face classes and model_type it answers to, how its
// config.json maps onto the decoder description (Config) both ways, its Hugging Face tensor names, the llama.cpp
// architecture it is written as (and the rows of the GGUF architectures it owns), and onnxruntime-genai's model
// type. The build lists the files of families/ (src/CMakeLists.txt writes SLMOPT_FAMILY(<name>) for each into
// slmopt_family_list.inc) and families.cpp assembles the registry from that list, so adding a family is adding
// its file (docs/ARCHITECTURE.md, "Adding a family"). Shared pieces of the family files: hf_family.h
// (config.json keys, name tables), gguf_arch.h (the Architecture row).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gguf_arch.h"
#include "hf_family.h"
#include "slmopt/ir/config.h"

namespace slmopt {

struct FamilyDefinition {
  // Config::family and `inspect`'s "family"; the name of the family's file (families/<name>.cpp).
  std::string name;

  // ---- Hugging Face ----
  std::vector<std::string> architectures;  // config.json "architectures"; the first is written
  std::string model_type;                  // config.json "model_type"
  // Fills every description field of Config (not family, architecture and name) from config.json, with
  // transformers' defaults for omitted keys; refuses values slmopt cannot run (Error(Unsupported) naming the key).
  void (*read_config)(const HfConfigJson& json, Config& config);
  // Adds the family's fields to config.json (after "architectures" and "model_type", which the caller writes).
  // The caller reads the result back with read_config and refuses any description field that did not survive.
  void (*write_config)(const Config& config, nlohmann::ordered_json& out);
  // Built on first use (function-local static): the tables read names from tensor_names.h, whose strings are
  // not guaranteed to be initialised before another file's static objects.
  const HfTensorNaming& (*naming)();
  // Stored tensors that are not parameters (e.g. rotary inv_freq buffers): dropped at load.
  bool (*is_buffer)(const std::string& name);

  // ---- GGUF (llama.cpp) ----
  // The llama.cpp architecture the family is written as when its layers are uniform: one of its own rows, or a
  // row another family owns (Mistral is written as "llama", with slmopt.hf_architecture naming the class).
  std::string gguf_architecture;
  // The llama.cpp architectures this family owns: what each one's graph computes and loads. The registry fills
  // each row's family and hf_class with this family's name and first class: a file of that architecture loads
  // as this family (unless slmopt.hf_architecture names a family the architecture hosts).
  std::vector<gguf_arch::Architecture> gguf_architectures;

  // ---- ONNX ----
  // onnxruntime-genai's model.type in genai_config.json (what its model builder writes for the class).
  std::string genai_model_type;
};

// Every family, in the order of the generated list (file names, sorted).
const std::vector<const FamilyDefinition*>& families();
// The family of a Config (Config::family); Error(Unsupported) naming it when no family file defines it.
const FamilyDefinition& family_definition(const std::string& name);
const FamilyDefinition* find_family_by_hf_architecture(const std::string& architecture);
const FamilyDefinition* find_family_by_model_type(const std::string& model_type);
// "Gemma2ForCausalLM, ..., Qwen3ForCausalLM" for error messages.
std::string supported_hf_architectures();
// Every GGUF architecture row of every family, with family and hf_class filled in.
const std::vector<gguf_arch::Architecture>& gguf_architecture_rows();

}  // namespace slmopt
