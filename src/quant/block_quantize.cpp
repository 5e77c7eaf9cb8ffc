// The encoder table (one row per quantized type: llama.cpp's reference encoder, llama.cpp's chunk encoder,
// slmopt's search) and the row / tensor entry points around it.
#include "slmopt/quant/block_quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ggml_compatible.h"
#include "iquant_encoders.h"
#include "lane_vector.h"
#include "quant_math.h"
#include "search_encoders.h"
#include "simd_dispatch.h"
#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/core/parallel.h"
#include "slmopt/exec/stored_linear.h"
#include "slmopt/ir/block_formats.h"
#include "slmopt/ir/block_structs.h"

namespace slmopt {
namespace {

using namespace quant_detail;

struct EncoderTraits {
  DType dtype;
  void (*reference)(const float* x, uint8_t* dst, int64_t n);
  void (*llama)(const float* x, uint8_t* dst, int64_t n, const float* importance);
  void (*search)(const float* x, uint8_t* dst, int64_t n, const float* importance);
  void (*fast)(const float* x, uint8_t* dst, int64_t n, const float* importance);
};

// The i-quants have one slmopt encoder (search and fast alike) and no replica of llama.cpp's encoders.
template <DType T>
void iquant(const float* x, uint8_t* dst, int64_t n, const float* importance) {
  encode_iquant(T, x, dst, n, importance);
}

constexpr EncoderTraits kEncoders[] = {
    {DType::Q4_0, ggml_reference_q4_0, ggml_chunk_q4_0, search_q4_0, fast_q4_0},
    {DType::Q4_1, ggml_reference_q4_1, ggml_chunk_q4_1, search_q4_1, fast_q4_1},
    {DType::Q5_0, ggml_reference_q5_0, ggml_chunk_q5_0, search_q5_0, fast_q5_0},
    {DType::Q5_1, ggml_reference_q5_1, ggml_chunk_q5_1, search_q5_1, fast_q5_1},
    {DType::Q8_0, ggml_reference_q8_0, ggml_chunk_q8_0, search_q8_0, fast_q8_0},
    {DType::Q2_K, ggml_reference_q2_k, ggml_chunk_q2_k, search_q2_k, fast_q2_k},
    {DType::Q3_K, ggml_reference_q3_k, ggml_chunk_q3_k, search_q3_k, fast_q3_k},
    {DType::Q4_K, ggml_reference_q4_k, ggml_chunk_q4_k, search_q4_k, fast_q4_k},
    {DType::Q5_K, ggml_reference_q5_k, ggml_chunk_q5_k, search_q5_k, fast_q5_k},
    {DType::Q6_K, ggml_reference_q6_k, ggml_chunk_q6_k, search_q6_k, fast_q6_k},
    {DType::IQ4_NL, ggml_reference_iq4_nl, ggml_chunk_iq4_nl, search_iq4_nl, fast_iq4_nl},
    {DType::IQ4_XS, nullptr, nullptr, iquant<DType::IQ4_XS>, iquant<DType::IQ4_XS>},
    {DType::IQ3_S, nullptr, nullptr, iquant<DType::IQ3_S>, iquant<DType::IQ3_S>},
    {DType::IQ3_XXS, nullptr, nullptr, iquant<DType::IQ3_XXS>, iquant<DType::IQ3_XXS>},
    {DType::IQ2_S, nullptr, nullptr, iquant<DType::IQ2_S>, iquant<DType::IQ2_S>},
    {DType::IQ2_XS, nullptr, nullptr, iquant<DType::IQ2_XS>, iquant<DType::IQ2_XS>},
    {DType::IQ2_XXS, nullptr, nullptr, iquant<DType::IQ2_XXS>, iquant<DType::IQ2_XXS>},
    {DType::IQ1_M, nullptr, nullptr, iquant<DType::IQ1_M>, iquant<DType::IQ1_M>},
    {DType::IQ1_S, nullptr, nullptr, iquant<DType::IQ1_S>, iquant<DType::IQ1_S>},
};

const EncoderTraits* find_encoder(DType dtype) {
  for (const auto& e : kEncoders)
    if (e.dtype == dtype) return &e;
  return nullptr;
}

// Largest magnitude accepted: every block type stores f16 scales, and beyond the f16 range they overflow.
constexpr float kMaxMagnitude = 65504.0f;

// Index of the first element that cannot be encoded (-1 if none) and what is wrong with it. The common case (a
// clean row) is one branch-free pass; only a bad row is scanned again for the message.
int64_t find_bad_value_body(const float* src, int64_t n, const char** what) {
  int clean = 1;
  for (int64_t i = 0; i < n; ++i) clean &= static_cast<int>(std::fabs(src[i]) <= kMaxMagnitude);  // NaN fails too
  if (clean) return -1;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(src[i])) {
      *what = "non-finite value";
      return i;
    }
    if (std::fabs(src[i]) > kMaxMagnitude) {
      *what = "value beyond the f16 range of block scales";
      return i;
    }
  }
  return -1;
}

// Error sums of one row (see RowErrorSums), accumulated in float per 8-element lane and 256-element stretch,
// then in double: a report figure, cheap next to the encoding it describes.
RowErrorSums row_error_sums_body(const float* x, const float* y, const float* w, int64_t n) {
  RowErrorSums s;
  int64_t c0 = 0;
  for (; c0 + 256 <= n; c0 += 256) {
    F8 e{}, en{}, we{}, wen{};
    for (int64_t c = c0; c < c0 + 256; c += kLanes) {
      F8 xv, yv;
      std::memcpy(&xv, x + c, sizeof(F8));
      std::memcpy(&yv, y + c, sizeof(F8));
      const F8 d = xv - yv;
      e += d * d;
      en += xv * xv;
      if (w) {
        F8 wv;
        std::memcpy(&wv, w + c, sizeof(F8));
        we += wv * d * d;
        wen += wv * xv * xv;
      }
    }
    for (int k = 0; k < kLanes; ++k) {
      s.error += e[k];
      s.energy += en[k];
      s.weighted_error += we[k];
      s.weighted_energy += wen[k];
    }
  }
  for (int64_t c = c0; c < n; ++c) {  // the tail, in double
    const double d = static_cast<double>(x[c]) - y[c], xx = static_cast<double>(x[c]) * x[c];
    s.error += d * d;
    s.energy += xx;
    if (w) {
      s.weighted_error += w[c] * d * d;
      s.weighted_energy += w[c] * xx;
    }
  }
  return s;
}

// Both row scans in the AVX2 copy too: 8 lanes a vector where the baseline has 4.
SLMOPT_QUANT_DISPATCH(int64_t, find_bad_value, (const float* src, int64_t n, const char** what), (src, n, what))
SLMOPT_QUANT_DISPATCH(RowErrorSums, row_error_sums, (const float* x, const float* y, const float* w, int64_t n),
                      (x, y, w, n))

// Index of the first importance weight that is negative or not finite, -1 if none.
int64_t find_bad_importance(const float* importance, int64_t n) {
  if (!importance) return -1;
  for (int64_t i = 0; i < n; ++i)
    if (!(importance[i] >= 0 && std::isfinite(importance[i]))) return i;
  return -1;
}

void check_row_length(DType dtype, int64_t n) {
  const auto& t = traits(dtype);
  if (n < 0 || n % t.block_size != 0)
    throw_error(ErrorKind::BadInput, "{} rows need a multiple of {} elements, got {}", t.name, t.block_size, n);
}

void encode_unchecked(Encoder encoder, const EncoderTraits& e, const float* src, uint8_t* dst, int64_t n,
                      const float* importance) {
  if ((encoder == Encoder::Reference && !e.reference) || (encoder == Encoder::Llama && !e.llama))
    throw_error(ErrorKind::Unsupported, "the {} encoder does not exist for {}: use 'fast' or 'search'",
                encoder_name(encoder), dtype_name(e.dtype));
  switch (encoder) {
    case Encoder::Reference: return e.reference(src, dst, n);
    case Encoder::Llama: return e.llama(src, dst, n, importance);
    case Encoder::Search: return e.search(src, dst, n, importance);
    case Encoder::Fast: return e.fast(src, dst, n, importance);
  }
}

void convert_row(DType dtype, const float* src, uint8_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype) {
      case DType::F32: std::memcpy(dst + 4 * i, src + i, 4); break;
      case DType::F16: {
        const uint16_t h = f32_to_f16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
        break;
      }
      case DType::BF16: {
        const uint16_t h = f32_to_bf16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
        break;
      }
      default: throw_error(ErrorKind::Internal, "convert_row: {} is not a float type", dtype_name(dtype));
    }
  }
}

}  // namespace

namespace quant_detail {

namespace {
void keep_better_block_body(DType dtype, const float* x, const float* w, int block_elems, uint8_t* current,
                            const uint8_t* candidate, size_t block_bytes) {
  float y_current[blocks::kQKK], y_candidate[blocks::kQKK];
  decode_stored_rows(dtype, current, block_bytes, 1, block_elems, y_current);
  decode_stored_rows(dtype, candidate, block_bytes, 1, block_elems, y_candidate);
  if (weighted_sq_error(x, y_candidate, w, block_elems) < weighted_sq_error(x, y_current, w, block_elems))
    std::memcpy(current, candidate, block_bytes);
}
}  // namespace

SLMOPT_QUANT_DISPATCH(void, keep_better_block,
                      (DType dtype, const float* x, const float* w, int block_elems, uint8_t* current,
                       const uint8_t* candidate, size_t block_bytes),
                      (dtype, x, w, block_elems, current, candidate, block_bytes))

}  // namespace quant_detail

std::string_view encoder_name(Encoder encoder) {
  switch (encoder) {
    case Encoder::Fast: return "fast";
    case Encoder::Search: return "search";
    case Encoder::Reference: return "reference";
    case Encoder::Llama: return "llama";
  }
  return "?";
}

std::optional<Encoder> encoder_from_name(std::string_view name) {
  for (const Encoder e : {Encoder::Fast, Encoder::Search, Encoder::Reference, Encoder::Llama})
    if (encoder_name(e) == name) return e;
  return std::nullopt;
}

bool can_encode(DType dtype) { return find_encoder(dtype) != nullptr; }

bool needs_importance(DType dtype) { return iquant_needs_importance(dtype); }

void quantize_row(DType dtype, const float* src, uint8_t* dst, int64_t n, const float* importance) {
  quantize_row(Encoder::Fast, dtype, src, dst, n, importance);
}

void quantize_row(Encoder encoder, DType dtype, const float* src, uint8_t* dst, int64_t n, const float* importance) {
  const EncoderTraits* e = find_encoder(dtype);
  if (!e) throw_error(ErrorKind::Unsupported, "no encoder for {}", dtype_name(dtype));
  check_row_length(dtype, n);
  const char* what = nullptr;
  const int64_t bad = find_bad_value(src, n, &what);
  if (bad >= 0) throw_error(ErrorKind::BadInput, "cannot encode {}: {} at element {}", dtype_name(dtype), what, bad);
  const int64_t bad_weight = find_bad_importance(importance, n);
  if (bad_weight >= 0)
    throw_error(ErrorKind::BadInput, "cannot encode {}: negative or non-finite importance at element {}",
                dtype_name(dtype), bad_weight);
  encode_unchecked(encoder, *e, src, dst, n, importance);
}

void quantize_rows(const Tensor& src, DType dtype, int64_t row_begin, int64_t row_end,
                   const float* importance_per_column, Encoder encoder, uint8_t* dst, RowErrorSums* errors) {
  const bool plain = dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16;
  const EncoderTraits* e = find_encoder(dtype);
  if (!plain && !e)
    throw_error(ErrorKind::Unsupported, "tensor '{}': no encoder for {}", src.name(), dtype_name(dtype));
  const int64_t cols = src.cols();
  const auto& t = traits(dtype);
  if (cols % t.block_size != 0)
    throw_error(ErrorKind::BadInput, "tensor '{}': rows of {} elements are not a whole number of {}-element {} blocks",
                src.name(), cols, t.block_size, t.name);
  if (row_begin < 0 || row_end > src.rows() || row_begin > row_end)
    throw_error(ErrorKind::Internal, "tensor '{}': rows {}..{} outside 0..{}", src.name(), row_begin, row_end,
                src.rows());
  const size_t out_row_bytes = row_bytes(dtype, cols), in_row_bytes = row_bytes(src.dtype(), cols);
  const int64_t bad_weight = plain ? -1 : find_bad_importance(importance_per_column, cols);
  if (bad_weight >= 0)
    throw_error(ErrorKind::BadInput, "tensor '{}': negative or non-finite importance for column {}", src.name(),
                bad_weight);
  // Rows are independent, so any split over threads gives the same bytes.
  const size_t min_rows = static_cast<size_t>(std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)));
  parallel_for(
      static_cast<size_t>(row_end - row_begin),
      [&](size_t begin, size_t end) {
        std::vector<float> row(static_cast<size_t>(cols)), decoded(errors ? static_cast<size_t>(cols) : 0);
        for (size_t k = begin; k < end; ++k) {
          const int64_t r = row_begin + static_cast<int64_t>(k);
          // The exec layer's SIMD decoders: BF16 → F32 alone was ~10 % of a Q4_0 run through dequantize_row.
          decode_stored_rows(src.dtype(), src.data() + static_cast<size_t>(r) * in_row_bytes, in_row_bytes, 1, cols,
                             row.data());
          uint8_t* out = dst + k * out_row_bytes;
          if (plain) {
            convert_row(dtype, row.data(), out, cols);
          } else {
            const char* what = nullptr;
            const int64_t bad = find_bad_value(row.data(), cols, &what);
            if (bad >= 0)
              throw_error(ErrorKind::BadInput, "tensor '{}': {} at row {}, column {}", src.name(), what, r, bad);
            encode_unchecked(encoder, *e, row.data(), out, cols, importance_per_column);
          }
          if (!errors) continue;
          decode_stored_rows(dtype, out, out_row_bytes, 1, cols, decoded.data());
          const RowErrorSums s = row_error_sums(row.data(), decoded.data(), importance_per_column, cols);
          errors[k] = s;
        }
      },
      min_rows);
}

Tensor quantize_tensor(const Tensor& src, DType dtype, const float* importance_per_column, Encoder encoder) {
  const auto& t = traits(dtype);
  if (src.cols() % t.block_size != 0)  // before row_bytes, whose message would not name the tensor
    throw_error(ErrorKind::BadInput, "tensor '{}': rows of {} elements are not a whole number of {}-element {} blocks",
                src.name(), src.cols(), t.block_size, t.name);
  std::vector<uint8_t> out(static_cast<size_t>(src.rows()) * row_bytes(dtype, src.cols()));
  quantize_rows(src, dtype, 0, src.rows(), importance_per_column, encoder, out.data());
  return Tensor::owned(src.name(), src.shape(), dtype, std::move(out));
}

double quantization_error(DType dtype, const float* src, const uint8_t* quantized, int64_t n,
                          const float* importance) {
  check_row_length(dtype, n);
  std::vector<float> decoded(static_cast<size_t>(n));
  dequantize_row(dtype, quantized, decoded.data(), n);
  double err = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double diff = static_cast<double>(src[i]) - static_cast<double>(decoded[static_cast<size_t>(i)]);
    err += (importance ? static_cast<double>(importance[i]) : 1.0) * diff * diff;
  }
  return err;
}

}  // namespace slmopt
