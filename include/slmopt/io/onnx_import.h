// Reading decoder-only ONNX models into the IR: graphs exported by PyTorch / Optimum (torch.onnx.export of a
// Hugging Face model) and slmopt's own float exports.
//
// Recognised families and how weights are found:
//   GPT-2   initializers named transformer.wte/wpe/h.N.*/ln_f.* (Conv1D weights [in, out] feeding Gemm or
//           MatMul are transposed to the IR's [out, in]);
//   llama   initializers named model.embed_tokens / model.layers.N.* / model.norm / lm_head, or anonymous
//           MatMul weights (onnx::MatMul_123) named after the node that consumes them
//           (/model/layers.N/self_attn/q_proj/MatMul → model.layers.N.self_attn.q_proj.weight).
// A weight's layout comes from its position in the graph: the B input of MatMul (directly or through Cast) is
// [in, out]; Gemm's follows transB; Gather's table is [rows, hidden].
// Configuration: the "slmopt.config_json" metadata of slmopt's exports, else config.json beside the file, else
// (GPT-2 only) the shapes of the weights and KV-cache inputs. A tokenizer.json beside the file is loaded.
// Initializer data may be inline (raw_data or typed fields) or external (location/offset/length, resolved
// beside the model and bounds-checked). Float32, float16 and bfloat16 weights are read.
//
// Weight-only quantized matrices of slmopt's int4/int8 exports — MatMulNBits (com.microsoft) and per-channel int8
// (DequantizeLinear, MatMulInteger, DynamicQuantizeMatMul with NAME_scale / NAME_zero_point) — are dequantized to
// float, the values ONNX Runtime computes with; onnx_quantized_storage says how they were stored.
//
// Refused with a clear Error: unparsable files (BadInput), graphs without a known family's weights or with
// activation-quantized ops (QLinearMatMul) or other int layouts (Unsupported), missing or mis-shaped tensors
// (BadInput, naming the tensor).
#pragma once

#include <string>

#include "slmopt/io/stored_quantization.h"
#include "slmopt/ir/model.h"

namespace slmopt {

Model load_onnx(const std::string& path);
StoredQuantization onnx_quantized_storage(const std::string& path);

}  // namespace slmopt
