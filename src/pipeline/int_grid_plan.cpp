// Integer-grid target planning (see int_grid_plan.h).
#include "int_grid_plan.h"

#include <fmt/format.h>

#include "slmopt/core/error.h"
#include "slmopt/io/hf_gptq.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt::pipeline {

TargetChooser IntGridPlan::chooser() const {
  return [targets = targets](int64_t, const std::string& name) -> std::optional<QuantTarget> {
    const auto it = targets.find(name);
    if (it == targets.end()) return std::nullopt;
    return it->second;
  };
}

namespace {

const char* output_name(IntGridOutput output) {
  switch (output) {
    case IntGridOutput::HfGptq: return "a GPTQ checkpoint";
    case IntGridOutput::HfAwq: return "an AWQ checkpoint";
    case IntGridOutput::OnnxMatMulNBits: return "ONNX MatMulNBits";
  }
  return "";
}

}  // namespace

IntGridPlan plan_int_grid(const Model& model, const IntGridSpec& spec, IntGridOutput output,
                          const std::vector<TypeOverride>& keep) {
  IntGridPlan plan;
  std::string first_misfit;
  for (const Tensor* t : model.ordered_tensors()) {
    const std::string& name = t->name();
    if (!names::is_linear_weight(name) || name == names::kLmHead || t->rank() != 2) continue;
    std::string why;
    for (const TypeOverride& k : keep)
      if (!k.dtype && override_matches(k.pattern, name)) {
        why = fmt::format("--keep '{}'", k.pattern);
        break;
      }
    if (why.empty() && output != IntGridOutput::OnnxMatMulNBits) {
      const HfQuantFormat format = output == IntGridOutput::HfAwq ? HfQuantFormat::Awq : HfQuantFormat::Gptq;
      const std::string misfit = hf_quantized_misfit(format, spec.bits, spec.group_size, t->rows(), t->cols());
      if (!misfit.empty()) {
        why = fmt::format("float instead of {}: {}", spec.describe(), misfit);
        if (first_misfit.empty()) first_misfit = fmt::format("{} {}: {}", name, shape_to_string(t->shape()), misfit);
      }
    }
    if (why.empty()) {
      spec.validate(t->cols(), name);
      plan.targets.emplace(name, spec);
    } else {
      plan.kept.emplace(name, why);
    }
  }
  if (plan.targets.empty())
    throw_error(ErrorKind::Usage, "{}: no block linear can be stored as {} in {}{}", model.source_path,
                spec.describe(), output_name(output),
                first_misfit.empty() ? std::string(" (--keep matches every one)")
                                     : fmt::format(" (e.g. {}); try another --group-size or --format onnx", first_misfit));
  return plan;
}

}  // namespace slmopt::pipeline
