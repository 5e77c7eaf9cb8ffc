// The dense float matrix of the forward pass. Row-major, so a [T, hidden] activation block keeps each token's
// vector contiguous and a weight keeps the IR's [out, in] rows: a row is a std::span away.
#pragma once

#include <cstdint>
#include <span>

#include <Eigen/Core>

namespace slmopt {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

inline std::span<const float> row_span(const RowMatrix& m, int64_t row) {
  return {m.data() + row * m.cols(), static_cast<size_t>(m.cols())};
}
inline std::span<float> row_span(RowMatrix& m, int64_t row) {
  return {m.data() + row * m.cols(), static_cast<size_t>(m.cols())};
}

}  // namespace slmopt
