// llama.cpp as a test oracle: the prebuilt libggml-base.so and libllama of the npm package node-llama-cpp
// (tests/consumers/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/), opened with dlopen at run time.
//
// GgmlLibrary exposes ggml's block codecs (dequantize_row_<type>, quantize_row_<type>_ref, ggml_quantize_chunk);
// LlamaTypeOracle asks libllama's quantizer which type it would give each tensor (llama_quant_* hooks that
// llama.cpp's own test-quant-type-selection uses). When the package is missing, tests FAIL with the path they
// looked for, unless SLMOPT_SKIP_CONSUMERS=1 asks them to skip (SLMOPT_REQUIRE_LLAMA_CPP below).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "slmopt/ir/dtype.h"

namespace slmopt::testing {

// Folder holding the node-llama-cpp binaries.
std::string llama_cpp_bin_dir();
// Empty when both libraries load and export what the tests need; otherwise a one-line reason naming the path.
std::string llama_cpp_unavailable_reason();
// SLMOPT_SKIP_CONSUMERS=1
bool skip_consumer_checks();

class GgmlLibrary {
 public:
  // The process-wide instance; throws std::runtime_error (with llama_cpp_unavailable_reason) when unavailable.
  static const GgmlLibrary& get();

  void dequantize_row(DType dtype, const uint8_t* src, float* dst, int64_t n) const;
  void quantize_row_reference(DType dtype, const float* src, uint8_t* dst, int64_t n) const;
  // ggml_quantize_chunk over nrows rows of n_per_row; imatrix is null or n_per_row weights. Returns bytes written.
  size_t quantize_chunk(DType dtype, const float* src, uint8_t* dst, int64_t nrows, int64_t n_per_row,
                        const float* imatrix) const;

  struct Impl;

 private:
  explicit GgmlLibrary(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One tensor as llama.cpp's quantizer sees it: a GGUF name and ggml dims (ne0 = row length).
struct GgufTensorShape {
  std::string name;
  int64_t ne0 = 0, ne1 = 1;
};

struct LlamaModelShape {
  uint32_t n_embd = 0, n_ff = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
};

// ggml type ids llama.cpp chooses for `tensors` (in the given order, -1 for tensors it would not quantize)
// for the llama architecture, file type `ftype` (LLAMA_FTYPE_*) and no importance matrix.
std::vector<int> llama_tensor_types(const LlamaModelShape& shape, const std::vector<GgufTensorShape>& tensors,
                                    int ftype);

// llama.cpp's own quantizer, llama_model_quantize(in, out), to file type `ftype` (LLAMA_FTYPE_*, e.g. 15 for
// Q4_K_M) on `threads` threads, with an importance matrix (GGUF tensor name → mean x² per input column) when
// `imatrix` is not null. Checks first that llama_model_quantize_default_params() returns the tag's defaults (a
// guard on the struct mirror). Throws std::runtime_error when the library is unavailable or quantization fails.
void llama_quantize_file(const std::string& in, const std::string& out, int ftype, int threads,
                         const std::map<std::string, std::vector<float>>* imatrix);
// llama_model_quantize_default_params() as "field=value" pairs, for checking the mirror by eye.
std::string llama_quantize_default_params_text();

}  // namespace slmopt::testing

// Use at the top of a test that needs llama.cpp: fails (or skips with SLMOPT_SKIP_CONSUMERS=1) with the reason.
#define SLMOPT_REQUIRE_LLAMA_CPP()                                                        \
  do {                                                                                    \
    const std::string why_ = ::slmopt::testing::llama_cpp_unavailable_reason();           \
    if (!why_.empty()) {                                                                  \
      if (::slmopt::testing::skip_consumer_checks()) GTEST_SKIP() << why_;                \
      FAIL() << why_ << " (set SLMOPT_SKIP_CONSUMERS=1 to skip llama.cpp cross-checks)";  \
    }                                                                                     \
  } while (0)
