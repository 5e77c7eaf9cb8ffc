// The family registry (family.h), assembled from the files of families/, and the typed config.json accessors
// every family uses.
#include <cmath>
#include <limits>
#include <set>

#include "family.h"
#include "slmopt/core/error.h"

namespace slmopt {

// One declaration and one entry per file of families/: the build writes SLMOPT_FAMILY(<name>) for each.
#define SLMOPT_FAMILY(name) const FamilyDefinition& family_##name();
#include "slmopt_family_list.inc"
#undef SLMOPT_FAMILY

namespace {

[[noreturn]] void inconsistent(const std::string& what) {
  throw_error(ErrorKind::Internal, "family registry: {}", what);
}

// The list, checked once: a family's name is its file's, and no class, model_type or GGUF architecture is
// claimed twice (the lookups below take the first match).
std::vector<const FamilyDefinition*> assemble() {
  const std::pair<const FamilyDefinition*, const char*> listed[] = {
#define SLMOPT_FAMILY(name) {&family_##name(), #name},
#include "slmopt_family_list.inc"
#undef SLMOPT_FAMILY
  };
  std::vector<const FamilyDefinition*> out;
  std::set<std::string> classes, model_types, gguf_names;
  for (const auto& [f, file] : listed) {
    if (f->name != file) inconsistent(fmt::format("families/{}.cpp defines the family '{}'", file, f->name));
    if (f->architectures.empty()) inconsistent(fmt::format("family '{}' names no Hugging Face class", f->name));
    for (const std::string& a : f->architectures)
      if (!classes.insert(a).second) inconsistent(fmt::format("class {} is claimed twice", a));
    if (!model_types.insert(f->model_type).second)
      inconsistent(fmt::format("model_type '{}' is claimed twice", f->model_type));
    for (const gguf_arch::Architecture& a : f->gguf_architectures)
      if (!gguf_names.insert(std::string(a.gguf_name)).second)
        inconsistent(fmt::format("GGUF architecture '{}' is claimed twice", a.gguf_name));
    out.push_back(f);
  }
  for (const FamilyDefinition* f : out)
    if (!gguf_names.count(f->gguf_architecture))
      inconsistent(fmt::format("family '{}' is written as GGUF architecture '{}', which no family defines", f->name,
                               f->gguf_architecture));
  return out;
}

}  // namespace

const std::vector<const FamilyDefinition*>& families() {
  static const std::vector<const FamilyDefinition*> all = assemble();
  return all;
}

const std::vector<gguf_arch::Architecture>& gguf_architecture_rows() {
  static const std::vector<gguf_arch::Architecture> rows = [] {
    std::vector<gguf_arch::Architecture> out;
    for (const FamilyDefinition* f : families())
      for (gguf_arch::Architecture a : f->gguf_architectures) {
        a.family = f->name;
        a.hf_class = f->architectures.front();
        out.push_back(a);
      }
    return out;
  }();
  return rows;
}

const FamilyDefinition* find_family_by_hf_architecture(const std::string& architecture) {
  for (const FamilyDefinition* f : families())
    for (const std::string& a : f->architectures)
      if (a == architecture) return f;
  return nullptr;
}

const FamilyDefinition* find_family_by_model_type(const std::string& model_type) {
  for (const FamilyDefinition* f : families())
    if (f->model_type == model_type) return f;
  return nullptr;
}

const FamilyDefinition& family_definition(const std::string& name) {
  for (const FamilyDefinition* f : families())
    if (f->name == name) return *f;
  throw_error(ErrorKind::Unsupported, "no family '{}' (supported: {})", name, supported_hf_architectures());
}

std::string supported_hf_architectures() {
  std::string out;
  for (const FamilyDefinition* f : families())
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
