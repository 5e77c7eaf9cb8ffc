#include "slmopt/ir/model.h"

#include <algorithm>
#include <tuple>

#include "slmopt/core/error.h"
#include "slmopt/ir/decoder_tensors.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {

const Tensor& Model::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end())
    throw_error(ErrorKind::BadInput, "{}: tensor '{}' is missing", source_path.empty() ? "model" : source_path, name);
  return it->second;
}

const Tensor* Model::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

void Model::set(Tensor tensor) {
  std::string name = tensor.name();
  tensors_[name] = std::move(tensor);
}

void Model::erase(const std::string& name) { tensors_.erase(name); }

namespace {
// (group, layer, name): embedding, layers in order, final norm, head, anything else.
std::tuple<int, long, std::string> order_key(const std::string& name) {
  if (name == names::kEmbedTokens || name == names::kPositionEmbedding) return {0, 0, name};
  const std::string prefix = "model.layers.";
  if (name.rfind(prefix, 0) == 0) {
    const long layer = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    return {1, layer, name};
  }
  if (name == names::kFinalNorm || name == names::kFinalNormBias) return {2, 0, name};
  if (name == names::kLmHead || name == names::kLmHeadBias) return {3, 0, name};
  return {4, 0, name};
}
}  // namespace

std::vector<const Tensor*> Model::ordered_tensors() const {
  std::vector<const Tensor*> out;
  out.reserve(tensors_.size());
  for (const auto& [name, t] : tensors_) out.push_back(&t);
  std::stable_sort(out.begin(), out.end(),
                   [](const Tensor* a, const Tensor* b) { return order_key(a->name()) < order_key(b->name()); });
  return out;
}

const Tensor& Model::output_weight() const {
  if (const Tensor* head = find(names::kLmHead)) return *head;
  return tensor(names::kEmbedTokens);
}

int64_t Model::parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, t] : tensors_) n += t.numel();
  return n;
}

size_t Model::total_bytes() const {
  size_t n = 0;
  for (const auto& [name, t] : tensors_) n += t.nbytes();
  return n;
}

void Model::validate() const {
  const Config& c = config;
  c.validate(source_path.empty() ? "config" : source_path);
  const std::string src = source_path.empty() ? "model" : source_path;
  auto expect = [&](const std::string& name, std::vector<int64_t> shape) {
    const Tensor& t = tensor(name);
    if (t.shape() != shape)
      throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape {}, but the config implies {}", src, name,
                  shape_to_string(t.shape()), shape_to_string(shape));
  };
  visit_decoder_tensors(c, [&](const ExpectedTensor& want) { expect(want.name, want.shape); });
}

}  // namespace slmopt
