// Hugging Face checkpoints of integer-quantized linears, in the two layouts transformers, vLLM and the GPTQ/AWQ
// kernels load. Per quantized linear `<base>` (e.g. model.layers.0.self_attn.q_proj), with in = input features,
// out = output features, G = in / group_size groups, b = bits:
//
// GPTQ ("classic" v1 format, AutoGPTQ/gptqmodel):
//   <base>.qweight  int32 [in·b/32, out]   column o holds the codes of input rows 0..in−1 of output o as one
//                                          LSB-first bit stream: code i occupies bits [b·i, b·i + b) of the
//                                          column's words (word k = bits 32k..32k+31). For b = 3 a code may cross
//                                          two words (codes 10 and 21 of every 32), exactly AutoGPTQ's 3-bit pack.
//   <base>.qzeros   int32 [G, out·b/32]    the same bit stream along the output dimension, each value zero − 1
//   <base>.scales   f16   [G, out]
//   <base>.g_idx    int32 [in]             group of each input row (i / group_size: slmopt writes static groups)
//   weight = scale[g, o] · (code − zero[g, o])
//   quantize_config.json {bits, group_size, desc_act, sym, damp_percent, static_groups, true_sequential,
//   quant_method "gptq", checkpoint_format "gptq"} and the same object as config.json "quantization_config".
// AWQ (AutoAWQ "gemm" version):
//   <base>.qweight  int32 [in, out/8]      8 output columns per word, nibble k (bits 4k..4k+3) holds output column
//                                          8·j + order[k] with order = 0,2,4,6,1,3,5,7
//   <base>.qzeros   int32 [G, out/8]       zeros (not minus one), same packing
//   <base>.scales   f16   [G, out]
//   config.json "quantization_config": {quant_method "awq", zero_point, q_group_size, w_bit, version "gemm"}.
// Other tensors (embeddings, norms, lm_head, biases) are plain float safetensors. Folders are written under a
// temporary name and renamed into place when complete.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "slmopt/io/stored_quantization.h"
#include "slmopt/ir/model.h"

namespace slmopt {

// One linear weight [rows = out, cols = in] in integer codes with per-(row, group) parameters.
struct HfIntWeight {
  int bits = 4;
  int64_t group_size = 128;  // a positive number of input columns
  bool symmetric = false;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> codes;  // [rows, cols]
  std::vector<float> scales;   // [rows, groups], f16-representable
  std::vector<int32_t> zeros;  // [rows, groups]

  int64_t groups() const { return (cols + group_size - 1) / group_size; }  // GPTQ: the last group may be shorter
  std::vector<float> dequantize() const;  // scale · (code − zero) in float, [rows, cols]
};

enum class HfQuantFormat { Gptq, Awq };
const char* hf_quant_format_name(HfQuantFormat format);  // "gptq", "awq"

struct HfQuantizedWriteOptions {
  HfQuantFormat format = HfQuantFormat::Gptq;
  DType float_type = DType::F16;  // the non-quantized tensors (F16, BF16 or F32)
  // Recorded in quantize_config.json (GPTQ) for consumers; they describe how the codes were made.
  bool desc_act = false;
  double damp_percent = 0.01;
  bool static_groups = false;
  bool true_sequential = true;
};

// Why `format` cannot hold a linear [rows = out, cols = in] on a grid of `bits` bits and `group_size` input
// columns per group (−1: the whole row), or "" when it can: AWQ gemm takes 4 bits, out % 8 == 0 and whole groups
// (AutoAWQ asserts in % group_size == 0); GPTQ packs in·bits and out·bits into whole 32-bit words and takes a
// shorter last group (ceil(in / group_size) groups, as AutoGPTQ's QuantLinear).
std::string hf_quantized_misfit(HfQuantFormat format, int bits, int64_t group_size, int64_t rows, int64_t cols);

// Writes `model` with every tensor named in `weights` (canonical "<base>.weight" names) replaced by its packed
// form; the other block linears stay float and quantization_config names them (GPTQ: gptqmodel's `dynamic`
// negative matches, and `modules_in_block_to_quantize` when every block keeps the same ones; AWQ:
// `modules_to_not_convert`), so transformers, gptqmodel and vLLM leave them unconverted. All quantized weights
// must share bits, group size and symmetry (one quantization_config). Errors: Error(Usage) for a combination the
// format cannot hold (hf_quantized_misfit), Error(Io) for an output folder that exists and holds something other
// than a model.
void write_hf_quantized(const Model& model, const std::map<std::string, HfIntWeight>& weights,
                        const std::string& dir, const HfQuantizedWriteOptions& options);

// The same checkpoint with the quantized linears made while the file is written: `grids` holds each weight's
// grid and shape (bits, group_size, symmetric, rows, cols; codes, scales and zeros empty), checked before any file
// is written; `make(name)` returns the weight with its codes, scales and zeros when the writer reaches it (once per
// weight). Only the packed .scales of linears whose other entries are written stay alive until the writer reaches
// them, so memory stays near one packed linear plus 2 bytes per group: the codes can come from a compact store or
// from rounding the input on demand (stage_quantize's uncalibrated RTN). Same bytes as the map form above.
struct HfIntWeightSource {
  std::map<std::string, HfIntWeight> grids;
  std::function<HfIntWeight(const std::string& name)> make;
};
void write_hf_quantized(const Model& model, const HfIntWeightSource& weights, const std::string& dir,
                        const HfQuantizedWriteOptions& options);

// True when dir/config.json declares a GPTQ or AWQ quantization_config.
bool is_hf_quantized_folder(const std::string& dir);

// Reads a GPTQ (classic format, including desc_act checkpoints through g_idx) or AWQ gemm folder back into the
// IR with every quantized linear dequantized to F32 "<base>.weight", so the forward pass and eval run it.
// Malformed packed tensors are an Error(BadInput) naming the tensor. `codes` (optional) receives the unpacked
// integer weights.
Model load_hf_quantized(const std::string& dir, std::map<std::string, HfIntWeight>* codes = nullptr);

// How a GPTQ/AWQ checkpoint stores its weights (load_hf_quantized hands back dequantized F32), for `inspect`:
// {"GPTQ int4, group 128, asymmetric", {canonical tensor name → "GPTQ int4"}}.
StoredQuantization hf_quantized_storage(const std::string& dir);

}  // namespace slmopt
