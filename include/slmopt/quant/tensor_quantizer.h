// Weight-only quantization of a whole model, one tensor at a time: the per-tensor type choice (a preset plus
// overrides, quant/type_selection.h), the block encoder (with the importance matrix when there is one), and
// the error each tensor ends up with. A writer (GGUF) asks target() for each tensor's type and encode() for its
// bytes just before writing it, so peak memory stays near one tensor.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "slmopt/ir/model.h"
#include "slmopt/quant/block_quantize.h"
#include "slmopt/quant/importance.h"
#include "slmopt/quant/type_selection.h"

namespace slmopt {

struct TensorQuantResult {
  std::string name;
  std::vector<int64_t> shape;
  DType from = DType::F32;
  DType to = DType::F32;
  std::string reason;                             // why this type (from type selection)
  double relative_error = 0;                      // ||W − Ŵ||_F / ||W||_F
  std::optional<double> weighted_relative_error;  // with importance weights per column
};

class TensorQuantizer {
 public:
  TensorQuantizer(const Model& model, TypeSelectionOptions selection, const ImportanceMatrix* importance,
                  Encoder encoder = Encoder::Fast);

  // The chosen type of a tensor (its current type for tensors type selection leaves alone).
  DType target(const std::string& name) const;
  const std::vector<TypeChoice>& choices() const { return choices_; }

  // Encodes `tensor` (any dtype) into `dtype` and records its error. Thread-safe.
  std::vector<uint8_t> encode(const Tensor& tensor, DType dtype);
  // The same, streamed: rows are encoded in chunks (a few MB of output each) handed to `write` in order, the
  // input's mapped pages are dropped behind each chunk, and the error is summed while encoding, so neither the
  // input nor the output tensor is ever resident whole.
  void encode_streamed(const Tensor& tensor, DType dtype, const std::function<void(const uint8_t*, size_t)>& write);
  // Records the error of a plain float conversion (F32 → F16, ...) that a writer does itself.
  void record_conversion(const Tensor& tensor, DType dtype);

  // Everything recorded so far, in model order.
  std::vector<TensorQuantResult> results() const;

 private:
  void record(TensorQuantResult result);
  static bool importance_exempt(const std::string& name);

  const Model& model_;
  const ImportanceMatrix* importance_;
  Encoder encoder_;
  std::vector<TypeChoice> choices_;
  std::map<std::string, size_t> choice_index_;
  mutable std::mutex mutex_;
  std::map<std::string, TensorQuantResult> results_;
};

// Relative Frobenius error between `original` and the decoded `quantized` (same shape), optionally weighting each
// column's squared error by importance[column].
double relative_error(const Tensor& original, const Tensor& quantized, const float* importance_per_column);

}  // namespace slmopt
