#include "slmopt/ir/int_weights.h"

#include "slmopt/core/error.h"

namespace slmopt {

void IntQuantizedWeight::check(const std::string& what) const {
  if (bits != 4 && bits != 8) throw_error(ErrorKind::Internal, "{}: {} bits per weight (4 or 8 supported)", what, bits);
  if (rows <= 0 || cols <= 0 || block_size <= 0)
    throw_error(ErrorKind::Internal, "{}: shape [{}, {}] with block size {}", what, rows, cols, block_size);
  if (codes.size() != static_cast<size_t>(rows * cols))
    throw_error(ErrorKind::Internal, "{}: {} codes for shape [{}, {}]", what, codes.size(), rows, cols);
  const size_t n_scales = static_cast<size_t>(rows * blocks());
  if (scales.size() != n_scales)
    throw_error(ErrorKind::Internal, "{}: {} scales, expected {}", what, scales.size(), n_scales);
  if (!zeros.empty() && zeros.size() != n_scales)
    throw_error(ErrorKind::Internal, "{}: {} zero points, expected {}", what, zeros.size(), n_scales);
  const unsigned limit = 1u << bits;
  for (uint8_t c : codes)
    if (c >= limit) throw_error(ErrorKind::Internal, "{}: code {} does not fit in {} bits", what, c, bits);
  for (uint8_t z : zeros)
    if (z >= limit) throw_error(ErrorKind::Internal, "{}: zero point {} does not fit in {} bits", what, z, bits);
}

std::vector<float> IntQuantizedWeight::dequantize() const {
  std::vector<float> out(static_cast<size_t>(rows * cols));
  const int64_t nb = blocks();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t b = c / block_size;
      const float scale = scales[static_cast<size_t>(r * nb + b)];
      const int zero = this->zero(r, b);
      out[static_cast<size_t>(r * cols + c)] =
          scale * static_cast<float>(codes[static_cast<size_t>(r * cols + c)] - zero);
    }
  return out;
}

}  // namespace slmopt
