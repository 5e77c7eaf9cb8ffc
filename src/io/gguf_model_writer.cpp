// Model → GGUF (see io/gguf.h): builds the llama.cpp metadata and the tensor plans from the IR, then streams
// the tensors — renamed, Q/K rows regrouped for the "llama" graph, converted to their chosen dtype — one at a
// time through the container writer. GPT-2 models go to gguf_gpt2.cpp.
#include <algorithm>
#include <cstring>
#include <map>

#include "gguf_arch.h"
#include "gguf_gpt2.h"
#include "gguf_model_common.h"
#include "gguf_tokenizer.h"
#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/gguf_format.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

using namespace gguf_arch;
using namespace gguf_detail;

struct PlannedTensor {
  const Tensor* source = nullptr;   // nullptr: generated (rope_freqs)
  std::vector<float> generated;
  std::optional<int64_t> rope_heads;  // regroup Q/K rows for this many heads
  GgufTensorPlan plan;
};

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_plain_float(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16; }

// A per-layer count as llama.cpp reads it: a scalar when every layer agrees, else an array (i32, as
// convert_hf_to_gguf.py writes lists).
GgufValue per_layer_value(const Config& c, int64_t (Config::*count)(int64_t) const) {
  std::vector<int32_t> values;
  bool uniform = true;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    values.push_back(static_cast<int32_t>((c.*count)(l)));
    uniform = uniform && values.back() == values.front();
  }
  if (uniform) return GgufValue::u32(static_cast<uint32_t>(values.front()));
  return GgufValue::i32_array(values);
}

void add_architecture_metadata(const Config& c, const Architecture& arch, const std::string& path,
                               GgufMetadata& md) {
  const std::string_view a = arch.gguf_name;
  md.set(arch_key(a, "context_length"), GgufValue::u32(static_cast<uint32_t>(c.max_position)));
  md.set(arch_key(a, "embedding_length"), GgufValue::u32(static_cast<uint32_t>(c.hidden_size)));
  md.set(arch_key(a, "block_count"), GgufValue::u32(static_cast<uint32_t>(c.num_layers)));
  md.set(arch_key(a, "feed_forward_length"), per_layer_value(c, &Config::ffn));
  md.set(arch_key(a, "rope.dimension_count"), GgufValue::u32(static_cast<uint32_t>(c.head_dim)));
  md.set(arch_key(a, "attention.head_count"), per_layer_value(c, &Config::heads));
  md.set(arch_key(a, "attention.head_count_kv"), per_layer_value(c, &Config::kv_heads));
  // llama.cpp assumes head_dim = hidden / heads (of layer 0) unless told otherwise.
  if (c.head_dim * c.heads(0) != c.hidden_size) {
    md.set(arch_key(a, "attention.key_length"), GgufValue::u32(static_cast<uint32_t>(c.head_dim)));
    md.set(arch_key(a, "attention.value_length"), GgufValue::u32(static_cast<uint32_t>(c.head_dim)));
  }
  md.set(arch_key(a, "attention.layer_norm_rms_epsilon"), GgufValue::f32(static_cast<float>(c.norm_eps)));
  md.set(arch_key(a, "rope.freq_base"), GgufValue::f32(static_cast<float>(c.rope_theta)));
  md.set(arch_key(a, "vocab_size"), GgufValue::u32(static_cast<uint32_t>(c.vocab_size)));
  switch (c.rope_scaling.type) {
    case RopeScalingType::None:
      break;
    case RopeScalingType::Linear:
      md.set(arch_key(a, "rope.scaling.type"), GgufValue::string("linear"));
      md.set(arch_key(a, "rope.scaling.factor"), GgufValue::f32(static_cast<float>(c.rope_scaling.factor)));
      break;
    case RopeScalingType::Llama3:
      // llama.cpp reads Llama-3 scaling only from the rope_freqs tensor, which only its "llama" graph loads.
      if (!arch.regroup_rope_rows)
        throw_error(ErrorKind::Unsupported, "{}: llama.cpp's {} architecture has no Llama-3 RoPE scaling", path, a);
      md.set(kRopeLlama3Factor, GgufValue::f32(static_cast<float>(c.rope_scaling.factor)));
      md.set(kRopeLlama3LowFreqFactor, GgufValue::f32(static_cast<float>(c.rope_scaling.low_freq_factor)));
      md.set(kRopeLlama3HighFreqFactor, GgufValue::f32(static_cast<float>(c.rope_scaling.high_freq_factor)));
      md.set(kRopeLlama3OriginalContext, GgufValue::u32(static_cast<uint32_t>(c.rope_scaling.original_max_position)));
      break;
  }
}

}  // namespace

namespace gguf_detail {

void write_released(const uint8_t* data, size_t n, const GgufByteSink& write) {
  constexpr size_t kPiece = size_t{16} << 20;
  for (size_t off = 0; off < n; off += kPiece) {
    const size_t len = std::min(kPiece, n - off);
    write(data + off, len);
    release_mapped_pages(data + off, len);
  }
}

void stream_for_gguf(const Tensor& tensor, DType target, const GgufWriteOptions& options, const std::string& path,
                     const GgufByteSink& write) {
  if (tensor.dtype() == target) return write_released(tensor.data(), tensor.nbytes(), write);
  if (is_plain_float(target) && tensor.rank() >= 1 && tensor.numel() > 0) {
    // Row chunks of about 4 MB decoded, converted with ggml's rounding (as Tensor::from_f32_as does).
    const int64_t rows = tensor.rows(), cols = tensor.cols();
    const size_t in_row = tensor.nbytes() / static_cast<size_t>(rows);
    const int64_t chunk = std::max<int64_t>(1, static_cast<int64_t>((size_t{4} << 20) / (4 * static_cast<size_t>(cols))));
    std::vector<float> f(static_cast<size_t>(std::min(chunk, rows) * cols));
    std::vector<uint8_t> out(f.size() * traits(target).block_bytes);
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
      const int64_t r1 = std::min(rows, r0 + chunk);
      const size_t count = static_cast<size_t>((r1 - r0) * cols);
      tensor.rows_to_f32(r0, r1, f.data());
      for (size_t k = 0; k < count; ++k) {
        if (target == DType::F32) {
          std::memcpy(out.data() + 4 * k, &f[k], 4);
        } else {
          const uint16_t h = target == DType::F16 ? f32_to_f16(f[k]) : f32_to_bf16(f[k]);
          std::memcpy(out.data() + 2 * k, &h, 2);
        }
      }
      write(out.data(), count * traits(target).block_bytes);
      release_mapped_pages(tensor.data() + static_cast<size_t>(r0) * in_row, static_cast<size_t>(r1 - r0) * in_row);
    }
    return;
  }
  if (!is_plain_float(target) && options.encode_streamed) {
    uint64_t produced = 0;
    options.encode_streamed(tensor, target, [&](const uint8_t* data, size_t n) {
      produced += n;
      write(data, n);
    });
    const size_t expected = Tensor::bytes_for(tensor.shape(), target);
    if (produced != expected)
      throw_error(ErrorKind::Internal, "{}: the {} encoder produced {} bytes for tensor '{}', expected {}", path,
                  dtype_name(target), produced, tensor.name(), expected);
    return;
  }
  const Tensor converted = convert_for_gguf(tensor, target, options, path);
  write(converted.data(), converted.nbytes());
}

Tensor convert_for_gguf(const Tensor& tensor, DType target, const GgufWriteOptions& options, const std::string& path) {
  if (tensor.dtype() == target) return tensor;
  if (is_plain_float(target)) return Tensor::from_f32_as(tensor.name(), tensor.shape(), tensor.to_f32(), target);
  if (!options.encode)
    throw_error(ErrorKind::Unsupported,
                "{}: tensor '{}' should be stored as {}, but no encoder was given (quantizers plug in through "
                "GgufWriteOptions::encode)",
                path, tensor.name(), dtype_name(target));
  std::vector<uint8_t> bytes = options.encode(tensor, target);
  const size_t expected = Tensor::bytes_for(tensor.shape(), target);
  if (bytes.size() != expected)
    throw_error(ErrorKind::Internal, "{}: the {} encoder returned {} bytes for tensor '{}', expected {}", path,
                dtype_name(target), bytes.size(), tensor.name(), expected);
  return Tensor::owned(tensor.name(), tensor.shape(), target, std::move(bytes));
}

DType stored_dtype(const Tensor& t, const GgufWriteOptions& options, const std::string& path) {
  const std::string& name = t.name();
  DType dtype = DType::F32;
  if (t.rank() >= 2) dtype = options.choose_dtype ? options.choose_dtype(name, t) : t.dtype();
  const auto& tr = traits(dtype);
  if (tr.ggml_type < 0 || (!tr.is_quantized && !is_plain_float(dtype)))
    throw_error(ErrorKind::Unsupported, "{}: tensor '{}' cannot be stored as {} in GGUF", path, name, tr.name);
  if (t.cols() % tr.block_size != 0)
    throw_error(ErrorKind::Unsupported, "{}: tensor '{}' has rows of {} values, not a multiple of the {} block of {}",
                path, name, t.cols(), tr.name, tr.block_size);
  return dtype;
}

LlamaFileType file_type_for(const std::map<DType, int64_t>& elements_by_dtype, const GgufWriteOptions& options) {
  if (options.file_type) return *options.file_type;
  LlamaFileType file_type = LlamaFileType::AllF32;
  int64_t most = -1;
  for (const auto& [dtype, n] : elements_by_dtype)
    if (n > most) most = n, file_type = llama_file_type_for(dtype);
  return file_type;
}

}  // namespace gguf_detail

LlamaFileType llama_file_type_for(DType dtype) {
  switch (dtype) {
    case DType::F16: return LlamaFileType::MostlyF16;
    case DType::BF16: return LlamaFileType::MostlyBF16;
    case DType::Q4_0: return LlamaFileType::MostlyQ4_0;
    case DType::Q4_1: return LlamaFileType::MostlyQ4_1;
    case DType::Q5_0: return LlamaFileType::MostlyQ5_0;
    case DType::Q5_1: return LlamaFileType::MostlyQ5_1;
    case DType::Q8_0: return LlamaFileType::MostlyQ8_0;
    case DType::Q2_K: return LlamaFileType::MostlyQ2_K;
    case DType::Q3_K: return LlamaFileType::MostlyQ3_K_M;
    case DType::Q4_K: return LlamaFileType::MostlyQ4_K_M;
    case DType::Q5_K: return LlamaFileType::MostlyQ5_K_M;
    case DType::Q6_K: return LlamaFileType::MostlyQ6_K;
    case DType::IQ4_NL: return LlamaFileType::MostlyIQ4_NL;
    default: return LlamaFileType::AllF32;
  }
}

void write_gguf(const Model& model, const std::string& path, const GgufWriteOptions& options) {
  if (model.config.family == Family::Gpt2) return write_gpt2_gguf(model, path, options);
  model.validate();
  const Config& c = model.config;
  const Architecture& arch = architecture_for(c, path);

  std::vector<PlannedTensor> planned;
  if (c.rope_scaling.type == RopeScalingType::Llama3) {
    PlannedTensor p;
    p.generated = llama3_rope_factors(c);
    p.plan = {std::string(kRopeFreqsTensor), {static_cast<int64_t>(p.generated.size())}, DType::F32};
    planned.push_back(std::move(p));
  }
  std::map<DType, int64_t> elements_by_dtype;
  bool any_quantized = false;
  for (const Tensor* t : model.ordered_tensors()) {
    const std::string& name = t->name();
    if (c.tie_word_embeddings && name == names::kLmHead) continue;  // llama.cpp reuses token_embd
    if (ends_with(name, "rotary_emb.inv_freq")) continue;           // a buffer, recomputed from the config
    const auto gguf_name = gguf_tensor_name(name);
    if (!gguf_name) throw_error(ErrorKind::Unsupported, "{}: tensor '{}' has no llama.cpp counterpart", path, name);
    const DType dtype = stored_dtype(*t, options, path);
    const auto& tr = traits(dtype);
    any_quantized = any_quantized || tr.is_quantized;
    if (t->rank() >= 2) elements_by_dtype[dtype] += t->numel();
    PlannedTensor p;
    p.source = t;
    if (arch.regroup_rope_rows) p.rope_heads = rope_heads_of(name, c);
    p.plan = {*gguf_name, t->shape(), dtype};
    planned.push_back(std::move(p));
  }

  const LlamaFileType file_type = file_type_for(elements_by_dtype, options);

  GgufMetadata md;
  md.set(kArchitecture, GgufValue::string(std::string(arch.gguf_name)));
  md.set(kName, GgufValue::string(!options.name.empty() ? options.name : !c.name.empty() ? c.name : "model"));
  md.set(kAlignment, GgufValue::u32(options.alignment));
  md.set(kFileType, GgufValue::u32(static_cast<uint32_t>(file_type)));
  if (any_quantized) md.set(kQuantizationVersion, GgufValue::u32(2));
  add_architecture_metadata(c, arch, path, md);
  gguf_tokenizer::add_vocab_metadata(model.vocab, c.vocab_size, md, path);
  if (!c.architecture.empty()) md.set(kHfArchitecture, GgufValue::string(c.architecture));

  std::vector<GgufTensorPlan> plans;
  plans.reserve(planned.size());
  for (const auto& p : planned) plans.push_back(p.plan);
  write_gguf_file_streamed(path, md, plans, [&](size_t i, const GgufByteSink& write) {
    const PlannedTensor& p = planned[i];
    if (!p.source) {
      const Tensor t = Tensor::from_f32(p.plan.name, p.plan.shape, p.generated);
      return write(t.data(), t.nbytes());
    }
    Tensor t = *p.source;
    if (p.rope_heads) {
      t = regroup_rope_rows(t, *p.rope_heads, /*to_gguf=*/true);  // an owned copy: the mapped rows are done
      release_mapped_pages(p.source->data(), p.source->nbytes());
    }
    stream_for_gguf(t, p.plan.dtype, options, path, write);
    release_mapped_pages(p.source->data(), p.source->nbytes());
  });
}

}  // namespace slmopt
