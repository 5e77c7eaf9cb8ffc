// The weight encodings of a linear layer and the standard-op norms, mask and attention (see
// onnx_export_ops.h). Weights are transposed to ONNX MatMul's [in, out] layout here, once, at export.
#include "onnx_export_ops.h"

#include <cmath>
#include <cstring>

#include "slmopt/core/error.h"
#include "slmopt/core/half.h"

namespace slmopt::onnx_export_detail {
namespace {

using onnx_graph::Attr;

std::string f32_bytes(std::span<const float> v) {
  std::string bytes(v.size() * sizeof(float), '\0');
  if (!v.empty()) std::memcpy(bytes.data(), v.data(), bytes.size());
  return bytes;
}

std::string f16_bytes(std::span<const float> v) {
  std::string bytes(v.size() * sizeof(uint16_t), '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = f32_to_f16(v[i]);
    std::memcpy(bytes.data() + i * 2, &h, 2);
  }
  return bytes;
}

// [rows, cols] → [cols, rows]
template <typename T>
std::vector<T> transposed(const std::vector<T>& m, int64_t rows, int64_t cols) {
  std::vector<T> out(m.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[static_cast<size_t>(c * rows + r)] = m[static_cast<size_t>(r * cols + c)];
  return out;
}

const Tensor& matrix(ExportContext& ctx, const std::string& name) {
  const Tensor& t = ctx.model.tensor(name);
  if (t.rank() != 2)
    throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape {}, expected a matrix", ctx.model.source_path, name,
                shape_to_string(t.shape()));
  return t;
}

const IntQuantizedWeight& quantized_weight(ExportContext& ctx, const std::string& name, int bits, bool per_channel) {
  const char* type = onnx_weight_type_name(ctx.options.weight_type);
  if (!ctx.options.quantized)
    throw_error(ErrorKind::Usage, "ONNX export as {} needs quantized weights (none were given)", type);
  auto it = ctx.options.quantized->find(name);
  if (it == ctx.options.quantized->end())
    throw_error(ErrorKind::Usage, "ONNX export as {}: no quantized weights for tensor '{}'", type, name);
  const IntQuantizedWeight& q = it->second;
  q.check(name);
  const Tensor& t = matrix(ctx, name);
  if (q.rows != t.dim(0) || q.cols != t.dim(1))
    throw_error(ErrorKind::Usage, "ONNX export: quantized '{}' is [{}, {}], the tensor {}", name, q.rows, q.cols,
                shape_to_string(t.shape()));
  if (q.bits != bits)
    throw_error(ErrorKind::Usage, "ONNX export as {}: tensor '{}' is quantized to {} bits, expected {}", type, name,
                q.bits, bits);
  if (per_channel && q.block_size < q.cols)
    throw_error(ErrorKind::Usage,
                "ONNX export as {}: tensor '{}' has blocks of {} columns; int8 exports need one "
                "scale per output channel",
                type, name, q.block_size);
  if (!per_channel && (q.block_size < 16 || (q.block_size & (q.block_size - 1)) != 0))
    throw_error(ErrorKind::Usage,
                "ONNX export as {}: tensor '{}' has block size {}; MatMulNBits needs a power of two "
                "≥ 16",
                type, name, q.block_size);
  return q;
}

enum class Int8Storage { Signed, Unsigned };

// The codes [in, out] and zero points [out] of a per-channel 8-bit weight, as int8 (code − 128, zero − 128) or
// uint8 (code, zero): the same weights either way.
void int8_initializers(ExportContext& ctx, const IntQuantizedWeight& q, const std::string& name, Int8Storage storage,
                       std::string& weight, std::string& scales, std::string& zeros) {
  // The codes are stored offset by 128 (0…255); as int8 they are shifted back, as uint8 kept.
  const int shift = storage == Int8Storage::Signed ? 128 : 0;
  const auto element = storage == Int8Storage::Signed ? onnx::TensorProto::INT8 : onnx::TensorProto::UINT8;
  std::vector<uint8_t> codes(q.codes.size());
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(static_cast<int>(q.codes[i]) - shift);
  const std::vector<uint8_t> t = transposed(codes, q.rows, q.cols);
  weight = ctx.graph.initializer(name, element, {q.cols, q.rows},
                                 std::string(reinterpret_cast<const char*>(t.data()), t.size()));
  scales = ctx.graph.initializer_f32(name + "_scale", {q.rows}, q.scales);
  std::string z(static_cast<size_t>(q.rows), '\0');
  for (int64_t r = 0; r < q.rows; ++r) z[static_cast<size_t>(r)] = static_cast<char>(q.zero(r, 0) - shift);
  zeros = ctx.graph.initializer(name + "_zero_point", element, {q.rows}, std::move(z));
}

std::string matmul_nbits(ExportContext& ctx, const std::string& x, const IntQuantizedWeight& q,
                         const std::string& weight_name, const std::string& name) {
  const int64_t n = q.rows, k = q.cols, bs = q.block_size, nb = q.blocks();
  const int64_t blob = bs * q.bits / 8;
  // B: [N, blocks, blob], element j of a block in the low nibble of byte j/2 when j is even (4 bits) or the
  // whole byte (8 bits); columns beyond K are zero codes.
  std::string b(static_cast<size_t>(n * nb * blob), '\0');
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c) {
      const uint8_t code = q.codes[static_cast<size_t>(r * k + c)];
      const int64_t block = c / bs, j = c % bs;
      auto& byte =
          reinterpret_cast<uint8_t&>(b[static_cast<size_t>((r * nb + block) * blob + (q.bits == 4 ? j / 2 : j))]);
      if (q.bits == 8)
        byte = code;
      else
        byte |= static_cast<uint8_t>((j % 2 == 0) ? code : code << 4);
    }
  std::vector<std::string> inputs{x};
  inputs.push_back(ctx.graph.initializer(weight_name + "_Q" + std::to_string(q.bits), onnx::TensorProto::UINT8,
                                         {n, nb, blob}, std::move(b)));
  inputs.push_back(ctx.graph.initializer_f32(weight_name + "_scales", {n * nb}, q.scales));
  if (!q.symmetric()) {
    // Packed per row: ceil(blocks · bits / 8) bytes, low nibble first.
    const int64_t row_bytes = (nb * q.bits + 7) / 8;
    std::string z(static_cast<size_t>(n * row_bytes), '\0');
    for (int64_t r = 0; r < n; ++r)
      for (int64_t blk = 0; blk < nb; ++blk) {
        const uint8_t zp = q.zero(r, blk);
        auto& byte = reinterpret_cast<uint8_t&>(z[static_cast<size_t>(r * row_bytes + (q.bits == 4 ? blk / 2 : blk))]);
        if (q.bits == 8)
          byte = zp;
        else
          byte |= static_cast<uint8_t>(blk % 2 == 0 ? zp : zp << 4);
      }
    inputs.push_back(
        ctx.graph.initializer(weight_name + "_zero_points", onnx::TensorProto::UINT8, {n * row_bytes}, std::move(z)));
  }
  return ctx.graph.node("MatMulNBits", name + "/MatMulNBits", inputs,
                        {{"K", k},
                         {"N", n},
                         {"bits", int64_t{q.bits}},
                         {"block_size", bs},
                         {"accuracy_level", int64_t{ctx.options.accuracy_level}}},
                        onnx_graph::kMicrosoftDomain);
}

}  // namespace

std::string float_table(ExportContext& ctx, const std::string& tensor_name) {
  const Tensor& t = matrix(ctx, tensor_name);
  const std::vector<float> v = t.to_f32();
  if (ctx.options.weight_type == OnnxWeightType::F16 || ctx.options.f16_embeddings) {
    const std::string init =
        ctx.graph.initializer(tensor_name, onnx::TensorProto::FLOAT16, {t.dim(0), t.dim(1)}, f16_bytes(v));
    return ctx.graph.node("Cast", "/" + tensor_name + "/Cast", {init}, {{"to", int64_t{onnx::TensorProto::FLOAT}}});
  }
  return ctx.graph.initializer(tensor_name, onnx::TensorProto::FLOAT, {t.dim(0), t.dim(1)}, f32_bytes(v));
}

std::string float_vector(ExportContext& ctx, const std::string& tensor_name) {
  const Tensor& t = ctx.model.tensor(tensor_name);
  if (t.rank() != 1)
    throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape {}, expected a vector", ctx.model.source_path,
                tensor_name, shape_to_string(t.shape()));
  return ctx.graph.initializer_f32(tensor_name, {t.dim(0)}, t.to_f32());
}

std::string linear(ExportContext& ctx, const std::string& x, const std::string& weight_name,
                   const std::string& bias_name, const std::string& name) {
  const Tensor& t = matrix(ctx, weight_name);
  const int64_t out = t.dim(0), in = t.dim(1);
  std::string y;
  OnnxWeightType type = ctx.options.weight_type;
  if (type != OnnxWeightType::F16 && ctx.options.float_unquantized_linears && ctx.options.quantized &&
      !ctx.options.quantized->count(weight_name))
    type = OnnxWeightType::F32;
  switch (type) {
    case OnnxWeightType::F32:
    case OnnxWeightType::F16: {
      const std::vector<float> wt = transposed(t.to_f32(), out, in);
      std::string w;
      if (type == OnnxWeightType::F32) {
        w = ctx.graph.initializer(weight_name, onnx::TensorProto::FLOAT, {in, out}, f32_bytes(wt));
      } else {
        const std::string h = ctx.graph.initializer(weight_name, onnx::TensorProto::FLOAT16, {in, out}, f16_bytes(wt));
        w = ctx.graph.node("Cast", name + "/Cast", {h}, {{"to", int64_t{onnx::TensorProto::FLOAT}}});
      }
      y = ctx.graph.node("MatMul", name + "/MatMul", {x, w});
      break;
    }
    case OnnxWeightType::Int8: {
      const IntQuantizedWeight& q = quantized_weight(ctx, weight_name, 8, true);
      std::string w, s, z;
      int8_initializers(ctx, q, weight_name, Int8Storage::Signed, w, s, z);
      const std::string dq =
          ctx.graph.node("DequantizeLinear", name + "/DequantizeLinear", {w, s, z}, {{"axis", int64_t{1}}});
      y = ctx.graph.node("MatMul", name + "/MatMul", {x, dq});
      break;
    }
    case OnnxWeightType::Int8Dynamic: {
      const IntQuantizedWeight& q = quantized_weight(ctx, weight_name, 8, true);
      std::string w, s, z;
      // uint8 weights: with uint8 activations ORT then runs its u8·u8 kernels. Its u8·s8 kernels on x86 CPUs
      // without VNNI add pairs of u8·s8 products in int16 with saturation (VPMADDUBSW). On an AVX2 EPYC,
      // llama-5m-kjv's int8 RTN weights on 2,040 KJV tokens, against the same weights with float activations:
      // int8 storage mean KL 0.0138, top-1 agreement 90.9 %, ΔNLL +0.0042; uint8 storage 0.0049, 94.4 %,
      // +0.0021 (the activation rounding alone), for ~10 % more prompt time in ORT there.
      int8_initializers(ctx, q, weight_name, Int8Storage::Unsigned, w, s, z);
      if (ctx.options.fused_ops) {  // one contrib node instead of the four standard ones
        y = ctx.graph.node("DynamicQuantizeMatMul", name + "/DynamicQuantizeMatMul", {x, w, s, z}, {},
                           onnx_graph::kMicrosoftDomain);
        break;
      }
      const auto xq = ctx.graph.node_n("DynamicQuantizeLinear", name + "/DynamicQuantizeLinear", {x}, 3);
      const std::string acc = ctx.graph.node("MatMulInteger", name + "/MatMulInteger", {xq[0], w, xq[2], z});
      const std::string accf =
          ctx.graph.node("Cast", name + "/Cast", {acc}, {{"to", int64_t{onnx::TensorProto::FLOAT}}});
      const std::string scale = ctx.graph.node("Mul", name + "/ScaleProduct", {xq[1], s});
      y = ctx.graph.node("Mul", name + "/Mul", {accf, scale});
      break;
    }
    case OnnxWeightType::Int4: {
      const IntQuantizedWeight& q = quantized_weight(ctx, weight_name, 4, false);
      y = matmul_nbits(ctx, x, q, weight_name, name);
      break;
    }
  }
  if (!bias_name.empty()) y = ctx.graph.node("Add", name + "/Add", {y, float_vector(ctx, bias_name)});
  return y;
}

std::string linear_with_table(ExportContext& ctx, const std::string& x, const std::string& table_f32,
                              const std::string& name) {
  const std::string wt =
      ctx.graph.node("Transpose", name + "/Transpose", {table_f32}, {{"perm", std::vector<int64_t>{1, 0}}});
  return ctx.graph.node("MatMul", name + "/MatMul", {x, wt});
}

std::string norm_weight(ExportContext& ctx, const std::string& tensor_name) {
  const Tensor& t = ctx.model.tensor(tensor_name);
  if (t.rank() != 1)
    throw_error(ErrorKind::BadInput, "{}: tensor '{}' has shape {}, expected a vector", ctx.model.source_path,
                tensor_name, shape_to_string(t.shape()));
  std::vector<float> w = t.to_f32();
  if (ctx.model.config.norm_unit_offset)
    for (float& v : w) v += 1.0f;
  return ctx.graph.initializer_f32(tensor_name, {t.dim(0)}, w);
}

std::string rms_norm(ExportContext& ctx, const std::string& x, const std::string& weight_name, float eps,
                     const std::string& name) {
  auto& g = ctx.graph;
  const std::string sq = g.node("Mul", name + "/Square", {x, x});
  const std::string ms = g.node("ReduceMean", name + "/ReduceMean", {sq}, {{"axes", std::vector<int64_t>{-1}}});
  const std::string var = g.node("Add", name + "/AddEps", {ms, g.const_f32(eps)});
  const std::string rms = g.node("Sqrt", name + "/Sqrt", {var});
  const std::string normed = g.node("Div", name + "/Div", {x, rms});
  return g.node("Mul", name + "/MulWeight", {normed, norm_weight(ctx, weight_name)});
}

std::string layer_norm(ExportContext& ctx, const std::string& x, const std::string& weight_name,
                       const std::string& bias_name, float eps, const std::string& name) {
  std::vector<std::string> inputs{x, norm_weight(ctx, weight_name)};
  if (!bias_name.empty()) inputs.push_back(float_vector(ctx, bias_name));
  return ctx.graph.node("LayerNormalization", name + "/LayerNormalization", inputs,
                        {{"axis", int64_t{-1}}, {"epsilon", eps}});
}

std::string causal_mask_bias(ExportContext& ctx, int64_t window) {
  auto& g = ctx.graph;
  const std::string n = window > 0 ? "/model/attn_mask_local" : "/model/attn_mask";
  const std::string one = g.const_i64({1}, true);
  const std::string seq =
      g.node("Gather", n + "/Sequence", {g.node("Shape", n + "/IdsShape", {"input_ids"}), one}, {{"axis", int64_t{0}}});
  const std::string total = g.node("Gather", n + "/Total", {g.node("Shape", n + "/MaskShape", {"attention_mask"}), one},
                                   {{"axis", int64_t{0}}});
  const std::string past = g.node("Sub", n + "/Past", {total, seq});
  const std::string key_pos = g.node("Range", n + "/KeyPositions", {g.const_i64({0}, true), total, one});
  const std::string query_pos = g.node("Range", n + "/QueryPositions", {past, total, one});
  const std::string query_col = g.node("Unsqueeze", n + "/QueryColumn", {query_pos, g.const_i64({1})});
  std::string causal = g.node("LessOrEqual", n + "/Causal", {key_pos, query_col});
  if (window > 0) {  // query − key < window
    const std::string distance = g.node("Sub", n + "/Distance", {query_col, key_pos});
    const std::string near = g.node("Less", n + "/InWindow", {distance, g.const_i64({window}, true)});
    causal = g.node("And", n + "/CausalLocal", {causal, near});
  }
  const std::string keep = g.node("Cast", n + "/Keep", {"attention_mask"}, {{"to", int64_t{onnx::TensorProto::BOOL}}});
  const std::string keep4 = g.node("Unsqueeze", n + "/Keep4", {keep, g.const_i64({1, 2})});
  const std::string allowed = g.node("And", n + "/Allowed", {causal, keep4});
  return g.node("Where", n + "/Bias", {allowed, g.const_f32(0.0f), g.const_f32(-1e30f)});
}

std::string attention(ExportContext& ctx, const std::string& q, const std::string& k, const std::string& v,
                      const std::string& bias, int64_t heads, int64_t kv_heads, int64_t head_dim, double softcap,
                      const std::string& name) {
  auto& g = ctx.graph;
  const int64_t group = heads / kv_heads;
  // Query head h reads KV head h / group: folding [B, heads, S, hd] into [B, kv_heads, group·S, hd] puts each
  // KV head's queries in one matrix, so no key/value copies are needed. The mask's rows repeat per group.
  std::string qg = q, mask = bias;
  if (group > 1) {
    qg = g.node("Reshape", name + "/GroupQueries", {q, g.const_i64({0, kv_heads, -1, head_dim})});
    mask = g.node("Tile", name + "/GroupMask", {bias, g.const_i64({1, 1, group, 1})});
  }
  const std::string kt = g.node("Transpose", name + "/KeysT", {k}, {{"perm", std::vector<int64_t>{0, 1, 3, 2}}});
  std::string scores = g.node("MatMul", name + "/Scores", {qg, kt});
  if (softcap > 0) {
    const std::string cap = g.const_f32(static_cast<float>(softcap));
    const std::string t = g.node("Tanh", name + "/SoftcapTanh", {g.node("Div", name + "/SoftcapDiv", {scores, cap})});
    scores = g.node("Mul", name + "/Softcap", {t, cap});
  }
  const std::string masked = g.node("Add", name + "/Mask", {scores, mask});
  const std::string probs = g.node("Softmax", name + "/Softmax", {masked}, {{"axis", int64_t{-1}}});
  std::string ctx_v = g.node("MatMul", name + "/Context", {probs, v});
  if (group > 1) ctx_v = g.node("Reshape", name + "/UngroupHeads", {ctx_v, g.const_i64({0, heads, -1, head_dim})});
  const std::string bshd =
      g.node("Transpose", name + "/ToTokens", {ctx_v}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
  return g.node("Reshape", name + "/Merge", {bshd, g.const_i64({0, 0, heads * head_dim})});
}

}  // namespace slmopt::onnx_export_detail
