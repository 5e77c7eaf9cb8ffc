// Building blocks shared by the family exporters (private to io/): the linear layer in each weight encoding,
// norms, the causal/padding mask and the float embedding table. See io/onnx_export.h for the encodings.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>

#include "onnx_graph.h"
#include "slmopt/io/onnx_export.h"
#include "slmopt/ir/model.h"

namespace slmopt::onnx_export_detail {

// The graph-wide symbolic dimension names.
inline const std::string kBatch = "batch_size";
inline const std::string kSequence = "sequence_length";
inline const std::string kPast = "past_sequence_length";
inline const std::string kTotal = "total_sequence_length";

struct ExportContext {
  const Model& model;
  const OnnxExportOptions& options;
  onnx_graph::GraphBuilder& graph;
};

// y = x · Wᵀ (+ bias) for the IR weight `weight_name` ([out, in]); `bias_name` empty for none. `name` prefixes
// the nodes ("/model/layers.0/attn/q_proj").
std::string linear(ExportContext& ctx, const std::string& x, const std::string& weight_name,
                   const std::string& bias_name, const std::string& name);
// y = x · Eᵀ for a float table E [out, in] already in the graph (a tied output head).
std::string linear_with_table(ExportContext& ctx, const std::string& x, const std::string& table_f32,
                              const std::string& name);

// A float32 [rows, cols] table in the graph from an IR tensor: the initializer itself, or Cast(fp16
// initializer) for F16 exports and with f16_embeddings. The initializer keeps the IR name.
std::string float_table(ExportContext& ctx, const std::string& tensor_name);
// A 1-D float32 vector initializer (norm weights, biases) under the IR name.
std::string float_vector(ExportContext& ctx, const std::string& tensor_name);

// A norm's weight vector as the graph multiplies it: the stored w, or 1 + w folded in at export when the
// description says norm_unit_offset (Gemma). The initializer keeps the IR name.
std::string norm_weight(ExportContext& ctx, const std::string& tensor_name);

// RMSNorm (x / sqrt(mean(x²) + eps) · w) in standard ops over the last axis, and LayerNorm through
// LayerNormalization (bias_name empty for none). Both read their weights through norm_weight.
std::string rms_norm(ExportContext& ctx, const std::string& x, const std::string& weight_name, float eps,
                     const std::string& name);
std::string layer_norm(ExportContext& ctx, const std::string& x, const std::string& weight_name,
                       const std::string& bias_name, float eps, const std::string& name);

// Additive attention bias [batch, 1, sequence, total] (0 where query i, in cache slot past + i, may attend key
// slot j: j ≤ past + i, attention_mask[b, j] = 1 and, when window > 0, past + i − j < window; −1e30 elsewhere),
// from input_ids and attention_mask. past comes from the shapes, so cached decoding sees the window too.
std::string causal_mask_bias(ExportContext& ctx, int64_t window = 0);

// Standard-op attention over q [B, heads, S, hd] (already rotated and scaled), keys and values
// [B, kv_heads, T, hd], with the additive bias above: returns [B, S, heads · hd]. softcap > 0 bounds the
// scores to softcap · tanh(scores / softcap) before the mask is added.
std::string attention(ExportContext& ctx, const std::string& q, const std::string& k, const std::string& v,
                      const std::string& bias, int64_t heads, int64_t kv_heads, int64_t head_dim, double softcap,
                      const std::string& name);

}  // namespace slmopt::onnx_export_detail
