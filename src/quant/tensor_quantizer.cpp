#include "slmopt/quant/tensor_quantizer.h"

#include <algorithm>
#include <cmath>

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/core/parallel.h"
#include "slmopt/ir/tensor_names.h"
#include "slmopt/quant/block_quantize.h"

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
  // llama.cpp refuses the lowest-bit i-quants without an importance matrix (the embedding and output excepted).
  if (!importance)
    for (const auto& c : choices_)
      if (needs_importance(c.dtype) && !importance_exempt(c.name))
        throw_error(ErrorKind::Usage,
                    "tensor '{}' would be {}, which needs an importance matrix: pass --calib TEXT (or --imatrix-in "
                    "FILE), as llama.cpp requires --imatrix for this type",
                    c.name, dtype_name(c.dtype));
}

bool TensorQuantizer::importance_exempt(const std::string& name) {
  return name == names::kEmbedTokens || name == names::kLmHead;
}

DType TensorQuantizer::target(const std::string& name) const {
  auto it = choice_index_.find(name);
  if (it != choice_index_.end()) return choices_[it->second].dtype;
  return model_.tensor(name).dtype();
}

std::vector<uint8_t> TensorQuantizer::encode(const Tensor& tensor, DType dtype) {
  std::vector<uint8_t> out;
  out.reserve(Tensor::bytes_for(tensor.shape(), dtype));
  encode_streamed(tensor, dtype, [&](const uint8_t* data, size_t n) { out.insert(out.end(), data, data + n); });
  return out;
}

void TensorQuantizer::encode_streamed(const Tensor& tensor, DType dtype,
                                      const std::function<void(const uint8_t*, size_t)>& write) {
  const std::vector<float>* imp = importance_ ? importance_->find(tensor.name()) : nullptr;
  if (imp && static_cast<int64_t>(imp->size()) != tensor.cols())
    throw_error(ErrorKind::BadInput, "importance matrix entry '{}' has {} columns, the tensor has {}", tensor.name(),
                imp->size(), tensor.cols());
  if (!imp && needs_importance(dtype) && !importance_exempt(tensor.name()))
    throw_error(ErrorKind::BadInput, "tensor '{}': the importance matrix has no entry for it, and {} needs one",
                tensor.name(), dtype_name(dtype));
  const float* importance = imp ? imp->data() : nullptr;
  const int64_t rows = tensor.rows();
  const size_t out_row = row_bytes(dtype, tensor.cols());
  const size_t in_row = rows > 0 ? tensor.nbytes() / static_cast<size_t>(rows) : 0;
  // Chunks of about 4 MB of output and at most 16 MB of input: large enough to keep both threads busy, small
  // enough that an 8B model's embedding never sits in memory whole.
  constexpr size_t kOutChunk = size_t{4} << 20, kInChunk = size_t{16} << 20;
  const int64_t chunk_rows = std::max<int64_t>(
      1, static_cast<int64_t>(std::min(kOutChunk / std::max<size_t>(out_row, 1), kInChunk / std::max<size_t>(in_row, 1))));
  std::vector<uint8_t> buffer(static_cast<size_t>(std::min(chunk_rows, rows)) * out_row);
  std::vector<RowErrorSums> errors(static_cast<size_t>(std::min(chunk_rows, rows)));
  RowErrorSums total;  // added row by row in row order: the same for any thread count
  for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
    const int64_t r1 = std::min(rows, r0 + chunk_rows);
    quantize_rows(tensor, dtype, r0, r1, importance, encoder_, buffer.data(), errors.data());
    write(buffer.data(), static_cast<size_t>(r1 - r0) * out_row);
    release_mapped_pages(tensor.data() + static_cast<size_t>(r0) * in_row, static_cast<size_t>(r1 - r0) * in_row);
    for (int64_t k = 0; k < r1 - r0; ++k) {
      const RowErrorSums& e = errors[static_cast<size_t>(k)];
      total.error += e.error;
      total.energy += e.energy;
      total.weighted_error += e.weighted_error;
      total.weighted_energy += e.weighted_energy;
    }
  }
  auto relative = [](double e, double s) { return s > 0 ? std::sqrt(e / s) : (e > 0 ? INFINITY : 0.0); };
  TensorQuantResult r;
  r.name = tensor.name();
  r.shape = tensor.shape();
  r.from = tensor.dtype();
  r.to = dtype;
  r.relative_error = relative(total.error, total.energy);
  if (importance) r.weighted_relative_error = relative(total.weighted_error, total.weighted_energy);
  record(std::move(r));
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
