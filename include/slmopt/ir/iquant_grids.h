// The i-quant codebooks of llama.cpp (generated into src/ir/iquant_grids.cpp by scripts/gen_iquant_grids.py).
//
// The lattice types quantize groups of 8 (IQ2_*, IQ1_*) or 4 (IQ3_*) magnitudes together: a block stores, per
// group, an index into a table of allowed points (E8-lattice points for IQ2, a D4-like set for IQ3, points of
// {-1, 0, 1}^8 for IQ1), plus signs (IQ2/IQ3) and scales. Each grid entry packs its coordinates one per byte,
// element j of the group in byte j (little-endian): IQ2 grids hold magnitudes from {8, 25, 43}, the IQ3_S grid
// odd magnitudes 1..15, the IQ3_XXS grid magnitudes from {4, 12, 20, 28, 36, 44, 52, 62}, the IQ1 grid signed
// bytes in {-1, 0, 1}.
//
// kIq2Signs maps 7 stored sign bits to 8 with an even number of minus signs (bit 7 = parity of bits 0-6); bit j
// set means element j is negative.
#pragma once

#include <array>
#include <cstdint>

namespace slmopt::blocks {

extern const std::array<uint8_t, 128> kIq2Signs;
extern const std::array<uint64_t, 256> kIq2xxsGrid;
extern const std::array<uint64_t, 512> kIq2xsGrid;
extern const std::array<uint64_t, 1024> kIq2sGrid;
extern const std::array<uint32_t, 256> kIq3xxsGrid;
extern const std::array<uint32_t, 512> kIq3sGrid;
extern const std::array<uint64_t, 2048> kIq1sGrid;

// Byte j (0-based) of a packed grid entry.
inline uint8_t grid_byte(uint64_t entry, int j) { return static_cast<uint8_t>(entry >> (8 * j)); }

// IQ1_S / IQ1_M: the shift added to every grid value (its sign chosen per group of 8).
inline constexpr float kIq1Delta = 0.125f;

}  // namespace slmopt::blocks
