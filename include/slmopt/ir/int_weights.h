// A linear weight quantized to small integers with one float scale (and optionally one integer zero point) per
// block of consecutive input columns — the shape of ONNX Runtime's MatMulNBits and DequantizeLinear weights and
// of GPTQ/AWQ checkpoints, independent of any file format:
//
//   value[r, c] = scale[r, c / block_size] · (code[r, c] − zero[r, c / block_size])
//
// codes are unpacked (one uint8 per element, 0 … 2^bits − 1), row-major [rows, cols] in the IR's [out, in]
// layout. Without zero points the quantization is symmetric around 2^(bits−1) (what MatMulNBits assumes when
// its zero_points input is absent). A block_size equal to cols means one scale per output channel.
// quant/ fills these (RTN, GPTQ, AWQ); io/ packs them into a file format; tests dequantize them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace slmopt {

struct IntQuantizedWeight {
  int bits = 4;                // 4 or 8
  int64_t rows = 0, cols = 0;  // [out, in]
  int64_t block_size = 32;     // input columns per scale
  std::vector<uint8_t> codes;  // rows · cols
  std::vector<float> scales;   // rows · blocks()
  std::vector<uint8_t> zeros;  // rows · blocks(), or empty: symmetric (zero = 2^(bits−1))

  int64_t blocks() const { return block_size <= 0 ? 0 : (cols + block_size - 1) / block_size; }
  bool symmetric() const { return zeros.empty(); }
  uint8_t zero(int64_t row, int64_t block) const {
    return zeros.empty() ? static_cast<uint8_t>(1u << (bits - 1)) : zeros[static_cast<size_t>(row * blocks() + block)];
  }
  // Throws Error(Internal) naming `what` when sizes or code ranges are inconsistent.
  void check(const std::string& what) const;
  // The float weight [rows, cols] these codes stand for.
  std::vector<float> dequantize() const;
};

// Quantized weights by canonical tensor name (e.g. "model.layers.0.self_attn.q_proj.weight").
using IntQuantizedWeights = std::map<std::string, IntQuantizedWeight>;

}  // namespace slmopt
