#include "slmopt/ir/dtype.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include "slmopt/core/error.h"

namespace slmopt {
namespace {

// Block sizes and bytes per block follow ggml-common.h; the ids follow ggml.h's enum ggml_type.
constexpr std::array<DTypeTraits, 25> kTraits = {{
    {DType::F32, "f32", 1, 4, 0, false},
    {DType::F16, "f16", 1, 2, 1, false},
    {DType::BF16, "bf16", 1, 2, 30, false},
    {DType::I8, "i8", 1, 1, 24, false},
    {DType::I32, "i32", 1, 4, 26, false},
    {DType::I64, "i64", 1, 8, 27, false},
    {DType::Q4_0, "q4_0", 32, 18, 2, true},
    {DType::Q4_1, "q4_1", 32, 20, 3, true},
    {DType::Q5_0, "q5_0", 32, 22, 6, true},
    {DType::Q5_1, "q5_1", 32, 24, 7, true},
    {DType::Q8_0, "q8_0", 32, 34, 8, true},
    {DType::Q2_K, "q2_k", 256, 84, 10, true},
    {DType::Q3_K, "q3_k", 256, 110, 11, true},
    {DType::Q4_K, "q4_k", 256, 144, 12, true},
    {DType::Q5_K, "q5_k", 256, 176, 13, true},
    {DType::Q6_K, "q6_k", 256, 210, 14, true},
    {DType::IQ4_NL, "iq4_nl", 32, 18, 20, true},
    {DType::IQ4_XS, "iq4_xs", 256, 136, 23, true},
    {DType::IQ3_S, "iq3_s", 256, 110, 21, true},
    {DType::IQ3_XXS, "iq3_xxs", 256, 98, 18, true},
    {DType::IQ2_S, "iq2_s", 256, 82, 22, true},
    {DType::IQ2_XS, "iq2_xs", 256, 74, 17, true},
    {DType::IQ2_XXS, "iq2_xxs", 256, 66, 16, true},
    {DType::IQ1_M, "iq1_m", 256, 56, 29, true},
    {DType::IQ1_S, "iq1_s", 256, 50, 19, true},
}};

}  // namespace

const DTypeTraits& traits(DType dtype) { return kTraits[static_cast<size_t>(dtype)]; }

std::string_view dtype_name(DType dtype) { return traits(dtype).name; }

std::optional<DType> dtype_from_name(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const auto& t : kTraits)
    if (t.name == lower) return t.dtype;
  return std::nullopt;
}

std::optional<DType> dtype_from_ggml_type(int ggml_type) {
  for (const auto& t : kTraits)
    if (t.ggml_type == ggml_type) return t.dtype;
  return std::nullopt;
}

size_t row_bytes(DType dtype, int64_t elements) {
  const auto& t = traits(dtype);
  if (elements < 0 || elements % t.block_size != 0)
    throw_error(ErrorKind::BadInput, "{} rows need a multiple of {} elements, got {}", t.name, t.block_size,
                elements);
  return static_cast<size_t>(elements / t.block_size) * t.block_bytes;
}

}  // namespace slmopt
