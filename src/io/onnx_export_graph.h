// The decoder graph builder of the ONNX exporter (private to io/): one builder for every decoder the description
// (ir/config.h) can state, in standard ONNX ops or, with fused_ops, ONNX Runtime's contrib ops where they can
// express the description.
#pragma once

#include <map>
#include <utility>

#include "onnx_export_ops.h"

namespace slmopt::onnx_export_detail {

void build_decoder_graph(ExportContext& ctx);  // onnx_export_decoder.cpp

// ---- RoPE (onnx_export_rope.cpp) ----

// cos/sin caches [max_position, rotary_dims / 2] for one RoPE variant (base, scaling). For LongRope the graph
// holds both the short and the long tables and selects one per run: long when the largest position_id
// reaches original_max_position (Hugging Face's Phi-3 rule, evaluated per forward call; keys already in the
// cache keep the rotation they were stored with). Values carry LongRope's attention_factor.
struct RopeCaches {
  std::string cos, sin;  // [max_position, rotary_dims / 2] float
};

// The per-layer RoPE tables, built once per distinct variant.
class RopeTableSet {
 public:
  explicit RopeTableSet(ExportContext& ctx) : ctx_(ctx) {}
  // Raw caches for `layer` (the GroupQueryAttention cos_cache/sin_cache inputs).
  const RopeCaches& caches(int64_t layer);
  // cos/sin gathered at position_ids and widened to the rotate_half layout: [B, 1, S, rotary_dims].
  const RopeCaches& gathered(int64_t layer);

 private:
  std::pair<double, bool> key(int64_t layer) const;
  ExportContext& ctx_;
  std::map<std::pair<double, bool>, RopeCaches> caches_, gathered_;
};

// ---- ONNX Runtime contrib ops (onnx_export_fused.cpp) ----

// Why fused_ops cannot express this description (one line naming the feature), or empty when it can.
std::string fused_ops_refusal(const Config& c);

// Inputs GroupQueryAttention derives from attention_mask, shared by all layers.
struct GqaMaskInputs {
  std::string seqlens_k, total_sequence_length;
};
GqaMaskInputs gqa_mask_inputs(ExportContext& ctx);

// com.microsoft GroupQueryAttention for `layer`: q [B, S, heads·hd], k/v [B, S, kv·hd] (q/k norms already
// applied, not rotated); writes present.<layer>.key/value and returns the attended values [B, S, heads·hd].
std::string fused_attention(ExportContext& ctx, RopeTableSet& rope, const GqaMaskInputs& mask, int64_t layer,
                            const std::string& q, const std::string& k, const std::string& v, const std::string& name);

}  // namespace slmopt::onnx_export_detail
