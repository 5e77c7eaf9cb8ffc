#include "slmopt/quant/tensor_quantizer.h"

#include <cmath>

#include "slmopt/core/error.h"
#include "slmopt/core/parallel.h"

namespace slmopt {

double relative_error(const Tensor& original, const Tensor& quantized, const float* importance) {
  if (original.shape() != quantized.shape())
    throw_error(ErrorKind::Internal, "tensor '{}': shapes differ after quantization", original.name());
  const int64_t rows = original.rows(), cols = original.cols();
  // Per-row partial sums, added in row order: the same result for any thread count.
  std::vector<double> err(static_cast<size_t>(rows)), ref(static_cast<size_t>(rows));
  parallel_for(static_cast<size_t>(rows), [&](size_t begin, size_t end) {
    std::vector<float> a(static_cast<size_t>(cols)), b(static_cast<size_t>(cols));
    for (size_t r = begin; r < end; ++r) {
      original.rows_to_f32(static_cast<int64_t>(r), static_cast<int64_t>(r) + 1, a.data());
      quantized.rows_to_f32(static_cast<int64_t>(r), static_cast<int64_t>(r) + 1, b.data());
      double e = 0, s = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double w = importance ? importance[c] : 1.0;
        const double d = static_cast<double>(a[c]) - b[c];
        e += w * d * d;
        s += w * static_cast<double>(a[c]) * a[c];
      }
      err[r] = e;
      ref[r] = s;
    }
  }, 16);
  double e = 0, s = 0;
  for (size_t r = 0; r < err.size(); ++r) {
    e += err[r];
    s += ref[r];
  }
  return s > 0 ? std::sqrt(e / s) : (e > 0 ? INFINITY : 0.0);
}

TensorQuantizer::TensorQuantizer(const Model& model, TypeSelectionOptions selection, const ImportanceMatrix* importance,
                                 Encoder encoder)
    : model_(model), importance_(importance), encoder_(encoder) {
  selection.has_importance = importance != nullptr;
  choices_ = select_tensor_types(model, selection);
  for (size_t i = 0; i < choices_.size(); ++i) choice_index_[choices_[i].name] = i;
}

DType TensorQuantizer::target(const std::string& name) const {
  auto it = choice_index_.find(name);
  if (it != choice_index_.end()) return choices_[it->second].dtype;
  return model_.tensor(name).dtype();
}

std::vector<uint8_t> TensorQuantizer::encode(const Tensor& tensor, DType dtype) {
  const std::vector<float>* imp = importance_ ? importance_->find(tensor.name()) : nullptr;
  if (imp && static_cast<int64_t>(imp->size()) != tensor.cols())
    throw_error(ErrorKind::BadInput, "importance matrix entry '{}' has {} columns, the tensor has {}", tensor.name(),
                imp->size(), tensor.cols());
  const float* importance = imp ? imp->data() : nullptr;
  Tensor quantized = quantize_tensor(tensor, dtype, importance, encoder_);
  TensorQuantResult r;
  r.name = tensor.name();
  r.shape = tensor.shape();
  r.from = tensor.dtype();
  r.to = dtype;
  r.relative_error = relative_error(tensor, quantized, nullptr);
  if (importance) r.weighted_relative_error = relative_error(tensor, quantized, importance);
  record(std::move(r));
  return {quantized.data(), quantized.data() + quantized.nbytes()};
}

void TensorQuantizer::record_conversion(const Tensor& tensor, DType dtype) {
  TensorQuantResult r;
  r.name = tensor.name();
  r.shape = tensor.shape();
  r.from = tensor.dtype();
  r.to = dtype;
  if (dtype != tensor.dtype()) {
    const Tensor converted = quantize_tensor(tensor, dtype, nullptr, encoder_);
    r.relative_error = relative_error(tensor, converted, nullptr);
  }
  record(std::move(r));
}

void TensorQuantizer::record(TensorQuantResult result) {
  auto it = choice_index_.find(result.name);
  if (it != choice_index_.end()) result.reason = choices_[it->second].reason;
  std::lock_guard<std::mutex> lock(mutex_);
  results_[result.name] = std::move(result);
}

std::vector<TensorQuantResult> TensorQuantizer::results() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<TensorQuantResult> out;
  for (const Tensor* t : model_.ordered_tensors()) {
    auto it = results_.find(t->name());
    if (it != results_.end()) out.push_back(it->second);
  }
  return out;
}

}  // namespace slmopt
