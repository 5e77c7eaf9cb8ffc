// ONNX export of decoder-only models for ONNX Runtime: one graph with a KV cache that serves both the first
// prompt (past length 0) and every next token.
//
// Graph interface (the names ONNX Runtime GenAI and Optimum use):
//   inputs   input_ids        int64   [batch, sequence]
//            attention_mask   int64   [batch, past + sequence]   1 = attend, 0 = padding
//            position_ids     int64   [batch, sequence]
//            past_key_values.N.key / .value   float32 [batch, kv_heads, past, head_dim]   (N = 0 … layers−1)
//   outputs  logits           float32 [batch, sequence, vocab]
//            present.N.key / .value           float32 [batch, kv_heads, past + sequence, head_dim]
// Keys in the cache are stored after RoPE (on RoPE layers). Batch, sequence and past length are symbolic.
//
// One graph builder (src/io/onnx_export_decoder.cpp) reads only the decoder description (ir/config.h): RMSNorm in
// standard ops or LayerNormalization (with bias), (1 + w) norms folded into the exported weights (metadata
// slmopt.norm_weights = "unit_offset_folded"; load_onnx unfolds them), Pre/Sandwich/Post norm placement,
// parallel attention + MLP, SwiGLU / GeGLU(tanh) / GELU(tanh) MLPs with biases, q/k RMSNorm per head or over the
// whole projection, partial rotary, per-layer RoPE base and scaling (Linear, Llama3, LongRoPE) baked into
// cos/sin tables for positions < max_position, NoPE layers, learned positions, per-layer sliding-window masks
// (query slot − key slot < window; the past length comes from the input shapes, so cached decoding sees the
// window), attention scale and soft-cap, embedding / residual / logit scales, final logit soft-cap and a head
// bias. LongRoPE: the graph holds the short and the long tables and a run uses the long ones when its largest
// position_id is ≥ original_max_position (Hugging Face's Phi-3 rule, per call; cached keys keep the rotation
// they were stored with). llama.cpp instead picks by context size, so the two agree within
// original_max_position.
//
// File layout: <path> (ModelProto, ir_version 8, opset 17 [+ com.microsoft 1 for contrib ops]); when the
// weights exceed options.external_data_threshold bytes, every initializer of 1 KiB or more goes to
// "<path>_data" (ONNX external data: location, offset, length; offsets 64-byte aligned), so models above
// protobuf's 2 GB limit export. export_onnx writes the graph only; io/onnx_folder.h writes the self-contained
// folder (config, tokenizer, genai_config.json, onnx/<file>) that runtimes load and the stages produce. Every file is
// written through AtomicFile; the data file is committed before the model that references it. The graph is
// built in memory (weights included) before anything is written. The Hugging Face config travels in the
// metadata ("slmopt.config_json") so that io/onnx_import.h restores the model exactly.
//
// Weight encodings (OnnxWeightType), applied to the linear layers (q/k/v/o/gate/up/down and an untied head):
//   F32          float32 initializers, MatMul.
//   F16          float16 initializers each followed by Cast→float32, MatMul in float32 (ORT's CPU provider
//                has no fast fp16 MatMul; it folds the Casts at session start, so the file is half the size and
//                the speed that of F32). The embedding is stored in fp16 too; norm weights stay float32.
//   Int8         weight-only per-output-channel int8 (zero points when asymmetric): DequantizeLinear(axis 1) →
//                MatMul (QDQ).
//   Int8Dynamic  8-bit weights with per-channel scales, activations quantized per tensor at run time:
//                DynamicQuantizeLinear → MatMulInteger → Cast → Mul(activation scale · weight scales), or
//                com.microsoft DynamicQuantizeMatMul when fused_ops is set. The weights and zero points are
//                stored as uint8 (code, zero), not int8: ORT's u8·s8 kernels on x86 CPUs without VNNI saturate
//                (onnx_export_ops.cpp), its u8·u8 kernels do not.
//   Int4         com.microsoft MatMulNBits (bits 4, block_size 16…256, accuracy_level option), with packed
//                zero points when the quantization is asymmetric.
// Int8/Int8Dynamic/Int4 take their codes from options.quantized (quant/int_quantize.h RTN, or GPTQ/AWQ):
// every linear weight of the model must be there with the right bits (8, or 4) and per-channel blocks for the
// int8 types. Embedding tables and a tied output head stay float (fp16 with f16_embeddings).
//
// options.fused_ops replaces the standard-op RMSNorm/RoPE/attention with ORT's SimplifiedLayerNormalization and
// com.microsoft GroupQueryAttention with built-in rotary embedding (what ORT's own model builder emits), with
// per-layer caches, do_rotary off on NoPE/learned-position layers, scale, softcap and local_window_size. Such a
// graph needs batch 1 or right-padded attention masks (GroupQueryAttention derives positions from the mask, not
// from position_ids). The export refuses (Error(Unsupported), no file written; export without fused_ops instead)
// what GroupQueryAttention rejects: head_dim not a multiple of 16, a rotary width not a multiple of 16.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slmopt/ir/int_weights.h"
#include "slmopt/ir/model.h"

namespace slmopt {

enum class OnnxWeightType { F32, F16, Int8, Int8Dynamic, Int4 };

const char* onnx_weight_type_name(OnnxWeightType type);  // "f32", "f16", "int8", "int8-dynamic", "int4"
std::optional<OnnxWeightType> onnx_weight_type_from_name(std::string_view name);  // case-insensitive
// Bits of the integer codes a weight type needs in OnnxExportOptions::quantized (8 or 4), 0 for float types.
int onnx_weight_type_bits(OnnxWeightType type);

struct OnnxExportOptions {
  OnnxWeightType weight_type = OnnxWeightType::F32;
  const IntQuantizedWeights* quantized = nullptr;  // required for Int8, Int8Dynamic, Int4
  // Int8/Int4: a linear missing from `quantized` stays a float MatMul (quantize's per-tensor fallback and --keep)
  // instead of being an error.
  bool float_unquantized_linears = false;
  int accuracy_level = 4;                          // MatMulNBits: 4 = int8 activations on CPU, 0 = float
  bool fused_ops = false;
  // Store embedding tables (and so a tied head) as fp16 + Cast in float32/int8/int4 exports too: the table is
  // the largest float tensor left in a quantized export (F16 exports always do this).
  bool f16_embeddings = false;
  uint64_t external_data_threshold = 1800ull << 20;  // weights beyond this many bytes go to <path>_data
};

struct OnnxExportResult {
  std::vector<std::string> files;  // every file written (model first)
  uint64_t weight_bytes = 0;       // bytes of initializer data
  bool external_data = false;
};

// Exports any decoder the description states. `path` names the .onnx file; any other path
// is taken as a folder and the model is written as <path>/model.onnx. Throws Error(Unsupported) for per-layer
// head/FFN counts (the embedded config.json cannot state them) or a fused_ops graph ORT cannot run, Error(Usage) when the quantized weights do not match the
// weight type, Error(Io) when a file cannot be written.
OnnxExportResult export_onnx(const Model& model, const std::string& path, const OnnxExportOptions& options = {});

}  // namespace slmopt
