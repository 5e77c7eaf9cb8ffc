// The registry of Hugging Face architectures slmopt reads and writes (private to io/). Each family lives in its
// own file (hf_llama.cpp: Llama, Mistral, Qwen2) and describes itself with an HfFamily: the class names and
// model_type it answers to, how its config.json maps onto Config (both ways), which tensors a config implies,
// and which stored buffers are not parameters. Adding a family = one new file + one line in hf_families.cpp.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "slmopt/ir/config.h"

namespace slmopt {

// Typed access to config.json fields; every error is one line naming the file and the field. A field that is
// present but null counts as absent (HF writes "rope_scaling": null, "num_key_value_heads": null).
class HfConfigJson {
 public:
  // `prefix` names a nested object in errors ("rope_scaling." → "rope_scaling.factor is missing").
  HfConfigJson(const nlohmann::json& json, std::string source, std::string prefix = "")
      : json_(json), source_(std::move(source)), prefix_(std::move(prefix)) {}

  bool has(const char* field) const { return json_.contains(field) && !json_[field].is_null(); }
  const nlohmann::json& at(const char* field) const { return json_.at(field); }
  const std::string& source() const { return source_; }

  int64_t positive_integer(const char* field) const;                        // required, > 0
  int64_t positive_integer_or(const char* field, int64_t fallback) const;   // optional, > 0 when present
  double number_or(const char* field, double fallback) const;
  bool boolean_or(const char* field, bool fallback) const;
  std::string string_or(const char* field, const std::string& fallback) const;

  [[noreturn]] void fail(const std::string& field, const std::string& why) const;

 private:
  const nlohmann::json& json_;
  std::string source_;
  std::string prefix_;
};

struct HfFamily {
  Family family;
  std::vector<std::string> architectures;  // config.json "architectures"; the first is written
  std::string model_type;                  // config.json "model_type"
  // Fills every Config field except architecture and name from config.json.
  void (*read_config)(const HfConfigJson& json, Config& config);
  // Adds the family's fields to config.json (after "architectures" and "model_type", which the caller writes).
  void (*write_config)(const Config& config, nlohmann::ordered_json& out);
  // Every tensor the IR holds for this config (lm_head only when the embedding is not tied).
  std::vector<std::string> (*tensor_names)(const Config& config);
  // Stored tensors that are not parameters (e.g. rotary inv_freq buffers): dropped at load.
  bool (*is_buffer)(const std::string& name);
};

const HfFamily* find_hf_family_by_architecture(const std::string& architecture);
const HfFamily* find_hf_family_by_model_type(const std::string& model_type);
// The family that writes a Config's family; Error(Unsupported) when none does.
const HfFamily& hf_family_for(Family family);
// "LlamaForCausalLM, MistralForCausalLM, ..." for error messages.
std::string supported_hf_architectures();

}  // namespace slmopt
