// Element types of IR tensors: plain floats and integers plus the GGUF block-quantized types. Each type is
// described once in a traits table (name, elements per block, bytes per block, ggml id); quantized tensors
// store whole blocks along the innermost (last) dimension.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace slmopt {

enum class DType : uint8_t {
  F32, F16, BF16, I8, I32, I64,
  Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
  Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
  IQ4_NL,
  IQ4_XS, IQ3_S, IQ3_XXS, IQ2_S, IQ2_XS, IQ2_XXS, IQ1_M, IQ1_S,
};

struct DTypeTraits {
  DType dtype;
  std::string_view name;   // lower-case, as the CLI spells it: "f32", "q4_k"
  int64_t block_size;      // elements per block (1 for plain types)
  size_t block_bytes;      // bytes per block
  int ggml_type;           // ggml's type id in GGUF tensor infos, -1 when GGUF has none
  bool is_quantized;
};

const DTypeTraits& traits(DType dtype);
std::string_view dtype_name(DType dtype);
std::optional<DType> dtype_from_name(std::string_view name);      // case-insensitive
std::optional<DType> dtype_from_ggml_type(int ggml_type);

// Bytes needed for `elements` values along a row; throws Error(BadInput) when `elements` is not a whole
// number of blocks.
size_t row_bytes(DType dtype, int64_t elements);

}  // namespace slmopt
