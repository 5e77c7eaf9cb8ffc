// Decoders of the i-quants (layouts in ir/block_structs.h, codebooks in ir/iquant_grids.h). To be bit-identical
// with ggml's dequantize_row_*, every value is computed with the same float operations in the same order:
// the group scale first (f16 d times the integer sub-scale expression, as float), then scale * grid value, and
// the sign applied last (an exact negation).
#include <cstring>

#include "iquant_decoders.h"
#include "slmopt/core/half.h"
#include "slmopt/ir/block_structs.h"
#include "slmopt/ir/iquant_grids.h"

namespace slmopt::iquant_detail {
namespace {

using namespace blocks;

// The scalar puts of iquant_lattice_walk.h.
// Eight values of one group: scale * grid byte j, negated where sign bit j is set.
void put_group8(float* y, float scale, uint64_t grid, unsigned signs) {
  for (int j = 0; j < 8; ++j) {
    const float v = scale * static_cast<float>(grid_byte(grid, j));
    y[j] = (signs >> j) & 1 ? -v : v;
  }
}

// IQ1: scale * (grid value + delta), grid values signed bytes in {-1, 0, 1}.
void put_iq1_group8(float* y, float scale, uint64_t grid, float delta) {
  for (int j = 0; j < 8; ++j)
    y[j] = scale * (static_cast<float>(static_cast<int8_t>(grid_byte(grid, j))) + delta);
}

}  // namespace

void decode_iq4_xs(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<IQ4_XS>(src, i);
    const float d = f16_to_f32(b.d);
    for (int s = 0; s < kQKK / 32; ++s, y += 32) {
      const int ls = ((b.scales_l[s / 2] >> (4 * (s % 2))) & 0xF) | (((b.scales_h >> (2 * s)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      const uint8_t* qs = b.qs + 16 * s;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kIq4nlValues[qs[j] & 0xF]);
        y[j + 16] = dl * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
      }
    }
  }
}

#define SLMOPT_IQ_TARGET
#include "iquant_lattice_walk.h"  // the lattice decoders, over the scalar puts above
#undef SLMOPT_IQ_TARGET

}  // namespace slmopt::iquant_detail
