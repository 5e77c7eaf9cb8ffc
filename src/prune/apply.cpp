// The physical cut of a PrunePlan (see structured.h): every tensor of a kept layer is sliced to the kept
// heads / KV heads / channels (rows of q/k/v/gate/up and their biases, columns of o/down, the gains of q/k norms
// over the whole projection) and renamed to its output layer; tensors outside the layers (embedding, final norm,
// output head) stay as they are, mapped views included. Slicing goes through float and back to the tensor's own dtype, which is exact for F32/F16/BF16.
#include <algorithm>
#include <set>

#include "slmopt/core/error.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/prune/structured.h"

namespace slmopt {
namespace {

// Which part of a tensor a plan entry indexes: rows in blocks of `block`, columns in blocks of `block`, or
// whole (a norm, an output bias).
enum class Axis { Rows, Cols, None };

struct Cut {
  Axis axis = Axis::None;
  const std::vector<int64_t>* keep = nullptr;
  int64_t block = 1;
};

Cut cut_for(const std::string& suffix, const LayerKeep& keep, const Config& c) {
  const int64_t hd = c.head_dim;
  // q/k norms over the whole projection (OLMo-2) have one gain per q/k row; per-head ones ([head_dim]) stay whole.
  if (c.qk_norm == QkNormKind::Whole) {
    if (suffix == "self_attn.q_norm.weight") return {Axis::Rows, &keep.heads, hd};
    if (suffix == "self_attn.k_norm.weight") return {Axis::Rows, &keep.kv_heads, hd};
  }
  if (suffix == "self_attn.q_proj.weight" || suffix == "self_attn.q_proj.bias") return {Axis::Rows, &keep.heads, hd};
  if (suffix == "self_attn.k_proj.weight" || suffix == "self_attn.k_proj.bias" ||
      suffix == "self_attn.v_proj.weight" || suffix == "self_attn.v_proj.bias")
    return {Axis::Rows, &keep.kv_heads, hd};
  if (suffix == "self_attn.o_proj.weight") return {Axis::Cols, &keep.heads, hd};
  if (suffix == "mlp.gate_proj.weight" || suffix == "mlp.gate_proj.bias" || suffix == "mlp.up_proj.weight" ||
      suffix == "mlp.up_proj.bias")
    return {Axis::Rows, &keep.ffn, 1};
  if (suffix == "mlp.down_proj.weight") return {Axis::Cols, &keep.ffn, 1};
  return {};
}

Tensor slice(const Tensor& t, const Cut& cut, std::string new_name) {
  if (t.dtype() != DType::F32 && t.dtype() != DType::F16 && t.dtype() != DType::BF16)
    throw_error(ErrorKind::Unsupported, "tensor '{}' is stored as {}; structured pruning needs F32, F16 or BF16 "
                "weights (prune before quantizing)", t.name(), dtype_name(t.dtype()));
  const std::vector<float> values = t.to_f32();
  const int64_t rows = t.rank() == 1 ? t.dim(0) : t.rows(), cols = t.rank() == 1 ? 1 : t.cols();
  const int64_t n_blocks = static_cast<int64_t>(cut.keep->size());
  std::vector<float> out;
  std::vector<int64_t> shape = t.shape();
  if (cut.axis == Axis::Rows) {
    out.reserve(static_cast<size_t>(n_blocks * cut.block * cols));
    for (int64_t b : *cut.keep)
      out.insert(out.end(), values.begin() + b * cut.block * cols, values.begin() + (b + 1) * cut.block * cols);
    shape[0] = n_blocks * cut.block;
  } else {
    out.reserve(static_cast<size_t>(rows * n_blocks * cut.block));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t b : *cut.keep) {
        const auto first = values.begin() + r * cols + b * cut.block;
        out.insert(out.end(), first, first + cut.block);
      }
    shape[1] = n_blocks * cut.block;
  }
  return Tensor::from_f32_as(std::move(new_name), std::move(shape), out, t.dtype());
}

void check_indices(const std::vector<int64_t>& v, int64_t limit, int64_t layer, const char* what) {
  if (v.empty()) throw_error(ErrorKind::Usage, "prune plan: layer {} keeps no {}", layer, what);
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] < 0 || v[i] >= limit)
      throw_error(ErrorKind::Usage, "prune plan: layer {}: {} index {} is out of range (0..{})", layer, what, v[i],
                  limit - 1);
    if (i > 0 && v[i] <= v[i - 1])
      throw_error(ErrorKind::Usage, "prune plan: layer {}: {} indices must be ascending and distinct", layer, what);
  }
}

// Every kept query head's group is kept and every kept group keeps the same number of query heads.
void check_gqa(const LayerKeep& k, const Config& c) {
  const int64_t s = k.source_layer;
  check_indices(k.heads, c.heads(s), s, "query head");
  check_indices(k.kv_heads, c.kv_heads(s), s, "KV head");
  const int64_t group = c.heads(s) / c.kv_heads(s);
  const std::set<int64_t> kv(k.kv_heads.begin(), k.kv_heads.end());
  std::vector<int64_t> per_group(static_cast<size_t>(c.kv_heads(s)), 0);
  for (int64_t h : k.heads) {
    if (!kv.count(h / group))
      throw_error(ErrorKind::Usage, "prune plan: layer {} keeps query head {} but drops its KV head {}", s, h,
                  h / group);
    ++per_group[static_cast<size_t>(h / group)];
  }
  for (int64_t g : k.kv_heads)
    if (per_group[static_cast<size_t>(g)] != per_group[static_cast<size_t>(k.kv_heads[0])])
      throw_error(ErrorKind::Usage, "prune plan: layer {} keeps {} query heads of KV group {} but {} of group {}; "
                  "GQA needs equal groups", s, per_group[static_cast<size_t>(g)], g,
                  per_group[static_cast<size_t>(k.kv_heads[0])], k.kv_heads[0]);
}

}  // namespace

void apply_prune_plan(Model& model, const PrunePlan& plan) {
  const Config& c = model.config;
  if (plan.layers.empty()) throw_error(ErrorKind::Usage, "prune plan keeps no layer");
  std::set<int64_t> sources;
  for (const auto& k : plan.layers) {
    if (k.source_layer < 0 || k.source_layer >= c.num_layers)
      throw_error(ErrorKind::Usage, "prune plan: source layer {} is out of range (the model has {})", k.source_layer,
                  c.num_layers);
    if (!sources.insert(k.source_layer).second)
      throw_error(ErrorKind::Usage, "prune plan: source layer {} appears twice", k.source_layer);
    check_gqa(k, c);
    check_indices(k.ffn, c.ffn(k.source_layer), k.source_layer, "FFN channel");
  }

  // Build the new layer tensors before touching the model, so a failure leaves it intact.
  std::vector<Tensor> layer_tensors;
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const LayerKeep& k = plan.layers[i];
    const std::string from = names::layer_prefix(k.source_layer), to = names::layer_prefix(static_cast<int64_t>(i));
    for (const auto& [name, tensor] : model.tensors()) {
      if (name.rfind(from, 0) != 0) continue;
      const std::string suffix = name.substr(from.size());
      const Cut cut = cut_for(suffix, k, c);
      if (cut.axis == Axis::None) {
        Tensor renamed = tensor;
        renamed.set_name(to + suffix);
        layer_tensors.push_back(std::move(renamed));
      } else {
        layer_tensors.push_back(slice(tensor, cut, to + suffix));
      }
    }
  }

  Config next = c;
  next.num_layers = static_cast<int64_t>(plan.layers.size());
  next.layer_num_heads.clear();
  next.layer_num_kv_heads.clear();
  next.layer_intermediate_size.clear();
  for (const auto& k : plan.layers) {
    next.layer_num_heads.push_back(static_cast<int64_t>(k.heads.size()));
    next.layer_num_kv_heads.push_back(static_cast<int64_t>(k.kv_heads.size()));
    next.layer_intermediate_size.push_back(static_cast<int64_t>(k.ffn.size()));
  }
  auto settle = [](std::vector<int64_t>& per_layer, int64_t& uniform) {
    uniform = *std::max_element(per_layer.begin(), per_layer.end());
    if (std::all_of(per_layer.begin(), per_layer.end(), [&](int64_t v) { return v == uniform; })) per_layer.clear();
  };
  settle(next.layer_num_heads, next.num_heads);
  settle(next.layer_num_kv_heads, next.num_kv_heads);
  settle(next.layer_intermediate_size, next.intermediate_size);
  next.validate(model.source_path.empty() ? "pruned model" : model.source_path + " (pruned)");

  std::vector<std::string> old_layer_names;
  for (const auto& [name, tensor] : model.tensors())
    if (name.rfind("model.layers.", 0) == 0) old_layer_names.push_back(name);
  for (const auto& name : old_layer_names) model.erase(name);
  for (auto& t : layer_tensors) model.set(std::move(t));
  model.config = next;
  model.validate();
}

}  // namespace slmopt
