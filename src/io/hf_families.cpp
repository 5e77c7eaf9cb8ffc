// The HfFamily registry and the typed config.json accessors every family uses.
#include <cmath>
#include <limits>

#include "hf_family.h"
#include "slmopt/core/error.h"

namespace slmopt {

// One line per family; each is defined in its own hf_<family>.cpp.
extern const HfFamily kHfLlamaFamily;
extern const HfFamily kHfMistralFamily;
extern const HfFamily kHfQwen2Family;
extern const HfFamily kHfQwen3Family;
extern const HfFamily kHfPhi2Family;
extern const HfFamily kHfPhi3Family;
extern const HfFamily kHfGemma2Family;
extern const HfFamily kHfGemma3Family;
extern const HfFamily kHfSmolLM3Family;
extern const HfFamily kHfGraniteFamily;
extern const HfFamily kHfOlmo2Family;
extern const HfFamily kHfGpt2Family;

namespace {
const std::vector<const HfFamily*>& registry() {
  static const std::vector<const HfFamily*> families = {
      &kHfLlamaFamily,  &kHfMistralFamily, &kHfQwen2Family,    &kHfQwen3Family,   &kHfPhi2Family, &kHfPhi3Family,
      &kHfGemma2Family, &kHfGemma3Family,  &kHfSmolLM3Family, &kHfGraniteFamily, &kHfOlmo2Family,
      &kHfGpt2Family};
  return families;
}
}  // namespace

const HfFamily* find_hf_family_by_architecture(const std::string& architecture) {
  for (const HfFamily* f : registry())
    for (const std::string& a : f->architectures)
      if (a == architecture) return f;
  return nullptr;
}

const HfFamily* find_hf_family_by_model_type(const std::string& model_type) {
  for (const HfFamily* f : registry())
    if (f->model_type == model_type) return f;
  return nullptr;
}

const HfFamily& hf_family_for(Family family) {
  for (const HfFamily* f : registry())
    if (f->family == family) return *f;
  throw_error(ErrorKind::Unsupported, "no Hugging Face writer for the {} family (supported: {})", family_name(family),
              supported_hf_architectures());
}

std::string supported_hf_architectures() {
  std::string out;
  for (const HfFamily* f : registry())
    for (const std::string& a : f->architectures) out += (out.empty() ? "" : ", ") + a;
  return out;
}

void HfConfigJson::fail(const std::string& field, const std::string& why) const {
  throw_error(ErrorKind::BadInput, "{}: {}{} {}", source_, prefix_, field, why);
}

void HfConfigJson::unsupported(const std::string& field, const std::string& why) const {
  throw_error(ErrorKind::Unsupported, "{}: {}{} {}", source_, prefix_, field, why);
}

int64_t HfConfigJson::positive_integer(const char* field) const {
  if (!has(field)) fail(field, "is missing");
  return positive_integer_or(field, 0);
}

int64_t HfConfigJson::positive_integer_or(const char* field, int64_t fallback) const {
  if (!has(field)) return fallback;
  const nlohmann::json& v = json_[field];
  // Some exporters write integral floats ("hidden_size": 128.0); accept those, refuse fractions.
  int64_t value = 0;
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(field, "is too large");
    value = v.get<int64_t>();
  } else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() && std::abs(v.get<double>()) < 1e15) {
    value = static_cast<int64_t>(v.get<double>());
  } else {
    fail(field, fmt::format("must be an integer, got {}", v.dump()));
  }
  if (value <= 0) fail(field, fmt::format("must be positive, got {}", value));
  // Far beyond any model; keeps the product of two dimensions (an expected tensor shape) inside int64.
  if (value > (int64_t{1} << 31)) fail(field, fmt::format("is implausibly large ({})", value));
  return value;
}

double HfConfigJson::number_or(const char* field, double fallback) const {
  if (!has(field)) return fallback;
  const nlohmann::json& v = json_[field];
  if (!v.is_number()) fail(field, fmt::format("must be a number, got {}", v.dump()));
  const double value = v.get<double>();
  if (!std::isfinite(value)) fail(field, "must be finite");
  return value;
}

double HfConfigJson::positive_number_or(const char* field, double fallback) const {
  const double value = number_or(field, fallback);
  if (!(value > 0)) fail(field, fmt::format("must be positive, got {}", value));
  return value;
}

std::vector<double> HfConfigJson::numbers(const char* field) const {
  if (!has(field)) fail(field, "is missing");
  const nlohmann::json& v = json_[field];
  if (!v.is_array()) fail(field, fmt::format("must be a list of numbers, got {}", v.dump()));
  std::vector<double> out;
  for (const nlohmann::json& x : v) {
    if (!x.is_number() || !std::isfinite(x.get<double>()))
      fail(field, fmt::format("must be a list of finite numbers, has {}", x.dump()));
    out.push_back(x.get<double>());
  }
  return out;
}

bool HfConfigJson::boolean_or(const char* field, bool fallback) const {
  if (!has(field)) return fallback;
  const nlohmann::json& v = json_[field];
  if (!v.is_boolean()) fail(field, fmt::format("must be true or false, got {}", v.dump()));
  return v.get<bool>();
}

std::string HfConfigJson::string_or(const char* field, const std::string& fallback) const {
  if (!has(field)) return fallback;
  const nlohmann::json& v = json_[field];
  if (!v.is_string()) fail(field, fmt::format("must be a string, got {}", v.dump()));
  return v.get<std::string>();
}

}  // namespace slmopt
