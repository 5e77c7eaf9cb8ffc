// config.json ↔ Config. Which family reads the file is decided here (architectures[0], else model_type); the
// family's own file maps the fields.
#include <algorithm>

#include "family.h"
#include "json_strict.h"
#include "slmopt/core/error.h"
#include "slmopt/io/hf.h"

namespace slmopt {

namespace {
const char* torch_dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    default: return nullptr;
  }
}
}  // namespace

Config parse_hf_config(const std::string& json_text, const std::string& source) {
  const nlohmann::json root = parse_json_strict(json_text, source);
  if (!root.is_object()) throw_error(ErrorKind::BadInput, "{}: not a JSON object", source);
  const HfConfigJson j(root, source);

  Config config;
  const FamilyDefinition* family = nullptr;
  if (j.has("architectures")) {
    const nlohmann::json& archs = j.at("architectures");
    if (!archs.is_array() || archs.empty() || !archs[0].is_string())
      j.fail("architectures", "must be a non-empty list of class names");
    config.architecture = archs[0].get<std::string>();
    family = find_family_by_hf_architecture(config.architecture);
    if (family == nullptr)
      throw_error(ErrorKind::Unsupported, "{}: architecture '{}' is not supported (supported: {})", source,
                  config.architecture, supported_hf_architectures());
  } else if (j.has("model_type")) {
    const std::string model_type = j.string_or("model_type", "");
    family = find_family_by_model_type(model_type);
    if (family == nullptr)
      throw_error(ErrorKind::Unsupported, "{}: model_type '{}' is not supported (supported: {})", source, model_type,
                  supported_hf_architectures());
    config.architecture = family->architectures.front();
  } else {
    throw_error(ErrorKind::BadInput, "{}: has neither 'architectures' nor 'model_type'", source);
  }
  config.family = family->name;
  family->read_config(j, config);
  config.validate(source);
  return config;
}

std::string hf_config_json(const Config& config, const Vocab& vocab, std::optional<DType> torch_dtype) {
  if (!config.uniform_layers()) {
    for (int64_t l = 0; l < config.num_layers; ++l)
      if (config.heads(l) != config.num_heads || config.kv_heads(l) != config.num_kv_heads ||
          config.ffn(l) != config.intermediate_size)
        throw_error(ErrorKind::Unsupported,
                    "model '{}': layer {} has {} heads, {} KV heads and FFN {} where the model has {}/{}/{}; Hugging "
                    "Face config.json needs the same counts in every layer (write GGUF for per-layer counts)",
                    config.name, l, config.heads(l), config.kv_heads(l), config.ffn(l), config.num_heads,
                    config.num_kv_heads, config.intermediate_size);
  }
  const FamilyDefinition& family = family_definition(config.family);
  const bool known_class = std::find(family.architectures.begin(), family.architectures.end(), config.architecture) !=
                           family.architectures.end();
  nlohmann::ordered_json out;
  out["architectures"] = {known_class ? config.architecture : family.architectures.front()};
  out["model_type"] = family.model_type;
  family.write_config(config, out);
  // What was written must read back as the same description; otherwise the class cannot express this model
  // (e.g. Qwen2 without q/k/v biases, Mistral with a per-layer window pattern).
  Config back;
  back.family = config.family;
  back.architecture = config.architecture;
  family.read_config(HfConfigJson(nlohmann::json::parse(out.dump()), "written config.json"), back);
  const std::string difference = hf_description_difference(config, back);
  if (!difference.empty())
    throw_error(ErrorKind::Unsupported, "{} config.json cannot express model '{}': its {} would read back "
                "differently", out["architectures"][0].get<std::string>(), config.name, difference);
  if (vocab.bos_id) out["bos_token_id"] = *vocab.bos_id;
  if (vocab.eos_id) out["eos_token_id"] = *vocab.eos_id;
  if (vocab.pad_id) out["pad_token_id"] = *vocab.pad_id;
  if (torch_dtype && torch_dtype_name(*torch_dtype)) out["torch_dtype"] = torch_dtype_name(*torch_dtype);
  return out.dump(2) + "\n";
}

}  // namespace slmopt
