// Stored Hugging Face tensors ↔ canonical tensors through a family's name table (HfTensorNaming, hf_family.h).
// Loading renames views and splits fused tensors into row views of the mapped file (no copy); writing renames
// and fuses the canonical parts again by concatenating their rows.
#include "hf_tensor_map.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <set>

#include "slmopt/core/error.h"
#include "slmopt/core/log.h"
#include "slmopt/ir/decoder_tensors.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

const std::string kLayerPrefix = "model.layers.";

// "model.layers.12.mlp.fc1.weight" → {12, "mlp.fc1.weight"}; {-1, name} for names outside the layers.
std::pair<int64_t, std::string> split_layer(const std::string& name, const std::string& prefix = kLayerPrefix) {
  if (name.rfind(prefix, 0) != 0) return {-1, name};
  size_t i = prefix.size(), digits = 0;
  int64_t layer = 0;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9' && digits < 9) {
    layer = layer * 10 + (name[i] - '0');
    ++i;
    ++digits;
  }
  if (digits == 0 || i >= name.size() || name[i] != '.') return {-1, name};
  return {layer, name.substr(i + 1)};
}

std::string full_name(int64_t layer, const std::string& part) {
  return layer < 0 ? part : names::layer_prefix(layer) + part;
}

// The Hugging Face name of a table row in `layer` (the family's layer prefix).
std::string hf_full_name(const HfTensorNaming& naming, int64_t layer, const std::string& part) {
  return layer < 0 ? part : naming.layer_prefix + std::to_string(layer) + "." + part;
}

// A table row found for a name, with the layer it applies to (-1 for global rows).
struct Match {
  const HfTensorName* row = nullptr;
  int64_t layer = -1;
};

Match find_by_hf(const HfTensorNaming& naming, const std::string& name) {
  const auto [layer, suffix] = split_layer(name, naming.layer_prefix);
  for (const HfTensorName& row : layer < 0 ? naming.global : naming.layer)
    if (row.hf == suffix) return {&row, layer};
  if (!naming.optional_prefix.empty() && name.rfind(naming.optional_prefix, 0) != 0)
    return find_by_hf(naming, naming.optional_prefix + name);
  return {};
}

Match find_by_canonical(const HfTensorNaming& naming, const std::string& name) {
  const auto [layer, suffix] = split_layer(name);
  for (const HfTensorName& row : layer < 0 ? naming.global : naming.layer)
    for (const std::string& part : row.canonical)
      if (part == suffix) return {&row, layer};
  return {};
}

Tensor renamed(const Tensor& t, const std::string& name) {
  Tensor copy = t;  // shares the bytes
  copy.set_name(name);
  return copy;
}

// An empty tensor may have no buffer (data() null), and memcmp's pointers must be valid even for 0 bytes.
bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.nbytes() == 0 || a.data() == b.data() || std::memcmp(a.data(), b.data(), a.nbytes()) == 0);
}

// Rows [begin, end) of a fused tensor as a view of the same bytes; the view holds a copy of the fused tensor's
// handle, which keeps the mapped file alive.
Tensor rows_view(const Tensor& t, const std::string& name, int64_t begin, int64_t end) {
  const size_t row_bytes = t.nbytes() / static_cast<size_t>(t.dim(0));
  std::vector<int64_t> shape = t.shape();
  shape[0] = end - begin;
  return Tensor::view(name, shape, t.dtype(), t.data() + static_cast<size_t>(begin) * row_bytes,
                      static_cast<size_t>(end - begin) * row_bytes, std::make_shared<const Tensor>(t));
}

// Rows of the parts stacked into one tensor: their bytes when they share a type, else F32 values.
Tensor fused(const std::string& name, const std::vector<const Tensor*>& parts) {
  std::vector<int64_t> shape = parts.front()->shape();
  shape[0] = 0;
  bool same_type = true;
  for (const Tensor* p : parts) {
    if (p->rank() != shape.size() || !std::equal(shape.begin() + 1, shape.end(), p->shape().begin() + 1))
      throw_error(ErrorKind::BadInput, "tensor '{}' has shape {}, which cannot be stacked with '{}' into '{}'",
                  p->name(), shape_to_string(p->shape()), parts.front()->name(), name);
    shape[0] += p->dim(0);
    same_type = same_type && p->dtype() == parts.front()->dtype();
  }
  if (same_type) {
    std::vector<uint8_t> bytes;
    for (const Tensor* p : parts) bytes.insert(bytes.end(), p->data(), p->data() + p->nbytes());
    return Tensor::owned(name, shape, parts.front()->dtype(), std::move(bytes));
  }
  std::vector<float> values;
  for (const Tensor* p : parts) {
    const std::vector<float> v = p->to_f32();
    values.insert(values.end(), v.begin(), v.end());
  }
  return Tensor::from_f32(name, shape, values);
}

}  // namespace

Tensor hf_transposed_matrix(const Tensor& t, const std::string& name) {
  const size_t element = t.dtype() == DType::F32 ? 4 : (t.dtype() == DType::F16 || t.dtype() == DType::BF16) ? 2 : 0;
  if (t.rank() != 2 || element == 0)
    throw_error(ErrorKind::BadInput, "tensor '{}' ({} {}) should be a float matrix stored [in, out]", name,
                dtype_name(t.dtype()), shape_to_string(t.shape()));
  const int64_t rows = t.dim(0), cols = t.dim(1);
  std::vector<uint8_t> out(t.nbytes());
  const uint8_t* in = t.data();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      std::memcpy(out.data() + static_cast<size_t>(c * rows + r) * element,
                  in + static_cast<size_t>(r * cols + c) * element, element);
  return Tensor::owned(name, {cols, rows}, t.dtype(), std::move(out));
}

std::map<std::string, Tensor> hf_tensors_to_canonical(const FamilyDefinition& family, const Config& config,
                                                      std::vector<Tensor> stored,
                                                      const std::map<std::string, std::string>& aliases,
                                                      const std::string& source,
                                                      const std::set<std::string>& stored_out_in) {
  const HfTensorNaming& naming = family.naming();
  std::map<std::string, Tensor> by_name;
  for (Tensor& t : stored)
    if (!family.is_buffer(t.name())) by_name.emplace(t.name(), std::move(t));
  // torch's shared-tensor saving stores one copy and records "<dropped name>": "<kept name>" in __metadata__.
  for (const auto& [alias, target] : aliases) {
    if (by_name.count(alias) != 0 || find_by_hf(naming, alias).row == nullptr) continue;
    auto it = by_name.find(target);
    if (it != by_name.end()) by_name.emplace(alias, renamed(it->second, alias));
  }

  std::map<std::string, std::vector<int64_t>> expected;
  for (const ExpectedTensor& e : decoder_tensors(config)) expected[e.name] = e.shape;
  expected.emplace(names::kLmHead, std::vector<int64_t>{});  // a tied checkpoint may store the head; folded below

  std::map<std::string, Tensor> out;
  std::map<std::string, std::string> stored_name;  // canonical → the checkpoint's name, for messages
  std::vector<std::string> unknown;
  for (auto& [name, stored_tensor] : by_name) {
    const Match m = find_by_hf(naming, name);
    if (m.row == nullptr || m.layer >= config.num_layers) {
      unknown.push_back(name);
      continue;
    }
    const bool turn = m.row->transposed && stored_out_in.count(name) == 0;
    const Tensor t = turn ? hf_transposed_matrix(stored_tensor, name) : stored_tensor;
    if (m.row->canonical.size() == 1) {
      const std::string canonical = full_name(m.layer, m.row->canonical.front());
      stored_name[canonical] = name;
      out.emplace(canonical, renamed(t, canonical));
      continue;
    }
    // A fused tensor: its row blocks are the canonical parts, sized by the config.
    const std::vector<std::pair<std::string, int64_t>> parts = hf_canonical_parts(family, config, name);
    if (parts.empty()) {
      unknown.push_back(name);
      continue;
    }
    std::vector<int64_t> total = expected.at(parts.front().first);
    total[0] = 0;
    for (const auto& part : parts) total[0] += part.second;
    if (t.shape() != total)
      throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape {}, but the config implies {} (the rows of {} parts)",
                  source, name, shape_to_string(t.shape()), shape_to_string(total), parts.size());
    int64_t row = 0;
    for (const auto& [canonical, rows] : parts) {
      stored_name[canonical] = name;
      out.emplace(canonical, rows_view(t, canonical, row, row + rows));
      row += rows;
    }
  }

  if (config.tie_word_embeddings) {
    auto head = out.find(names::kLmHead);
    if (head != out.end()) {
      auto embed = out.find(names::kEmbedTokens);
      if (embed == out.end()) {
        out.emplace(names::kEmbedTokens, renamed(head->second, names::kEmbedTokens));
      } else if (!same_bytes(head->second, embed->second)) {
        spdlog::warn("{}: tie_word_embeddings is true but lm_head.weight differs from the embedding; using the "
                     "embedding, as transformers does", source);
      }
      out.erase(names::kLmHead);
    }
  }

  for (const auto& [canonical, t] : out)
    if (expected.count(canonical) == 0) unknown.push_back(stored_name[canonical]);
  if (!unknown.empty()) {
    std::set<std::string> unique(unknown.begin(), unknown.end());
    std::string list;
    size_t shown = 0;
    for (const std::string& n : unique)
      if (shown++ < 8) list += (list.empty() ? "" : ", ") + n;
    if (unique.size() > 8) list += fmt::format(" and {} more", unique.size() - 8);
    throw_error(ErrorKind::BadInput, "{}: {} tensor(s) that {} with this config.json does not use: {}", source,
                unique.size(), config.architecture, list);
  }
  return out;
}

std::vector<std::pair<std::string, int64_t>> hf_canonical_parts(const FamilyDefinition& family, const Config& config,
                                                                const std::string& stored_name) {
  const Match m = find_by_hf(family.naming(), stored_name);
  if (m.row == nullptr || m.layer >= config.num_layers) return {};
  const std::vector<ExpectedTensor> expected =
      m.layer < 0 ? decoder_tensors(config) : decoder_layer_tensors(config, m.layer);
  std::vector<std::pair<std::string, int64_t>> parts;
  for (const std::string& part : m.row->canonical) {
    const std::string canonical = full_name(m.layer, part);
    auto e = std::find_if(expected.begin(), expected.end(), [&](const ExpectedTensor& x) { return x.name == canonical; });
    if (e == expected.end()) {
      if (canonical == names::kLmHead && m.row->canonical.size() == 1) return {{canonical, config.vocab_size}};
      return {};
    }
    parts.emplace_back(canonical, e->shape.empty() ? 0 : e->shape[0]);
  }
  return parts;
}

std::vector<HfStoredTensor> hf_storage_plan(const FamilyDefinition& family, const Model& model, const std::string& target) {
  const HfTensorNaming& naming = family.naming();
  std::set<std::string> expected;
  for (const ExpectedTensor& e : decoder_tensors(model.config)) expected.insert(e.name);
  std::vector<HfStoredTensor> plan;
  std::set<std::string> planned;
  for (const Tensor* t : model.ordered_tensors()) {
    if (model.config.tie_word_embeddings && t->name() == names::kLmHead) continue;
    const Match m = find_by_canonical(naming, t->name());
    // A tensor the description does not imply would be refused by the next load: refuse it now.
    if (m.row == nullptr || expected.count(t->name()) == 0)
      throw_error(ErrorKind::Unsupported, "{}: tensor '{}' has no place in a {} checkpoint", target, t->name(),
                  model.config.architecture);
    const std::string hf = hf_full_name(naming, m.layer, m.row->hf);
    if (!planned.insert(hf).second) continue;  // a fused tensor, planned with its first part
    HfStoredTensor entry{hf, {}, m.row->transposed};
    for (const std::string& part : m.row->canonical) {
      entry.parts.push_back(full_name(m.layer, part));
      if (!model.has(entry.parts.back()))
        throw_error(ErrorKind::Unsupported, "{}: '{}' stores {} fused; '{}' is missing", target, hf,
                    m.row->canonical.size(), entry.parts.back());
    }
    plan.push_back(std::move(entry));
  }
  return plan;
}

std::vector<Tensor> hf_tensors_from_canonical(const FamilyDefinition& family, const Model& model, const std::string& target) {
  std::vector<Tensor> out;
  for (const HfStoredTensor& entry : hf_storage_plan(family, model, target)) {
    Tensor t;
    if (entry.parts.size() == 1) {
      t = renamed(model.tensor(entry.parts.front()), entry.hf);
    } else {
      std::vector<const Tensor*> parts;
      for (const std::string& p : entry.parts) parts.push_back(&model.tensor(p));
      t = fused(entry.hf, parts);
    }
    out.push_back(entry.transposed ? hf_transposed_matrix(t, entry.hf) : std::move(t));
  }
  return out;
}

}  // namespace slmopt
