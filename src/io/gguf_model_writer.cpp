// Model → GGUF (see io/gguf.h), for every architecture of the registry (gguf_arch.h): picks the llama.cpp
// architecture and checks its graph computes the model's description, builds the metadata from the description
// fields, then streams the tensors — renamed, Q/K rows regrouped for "normal"-RoPE graphs, Gemma norms stored as
// 1 + w, fused tensors stacked, converted to their chosen dtype — one at a time through the container writer.
#include <cctype>
#include <cmath>
#include <algorithm>
#include <cstring>
#include <map>

#include "gguf_arch.h"
#include "gguf_model_common.h"
#include "gguf_tokenizer.h"
#include "slmopt/core/error.h"
#include "slmopt/core/log.h"  // spdlog
#include "slmopt/core/half.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/gguf.h"
#include "slmopt/io/gguf_format.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

using namespace gguf_arch;
using namespace gguf_detail;

// One GGUF tensor: IR tensors stacked by rows (one unless fused), or generated values (RoPE factor tensors).
struct PlannedTensor {
  std::vector<const Tensor*> sources;
  std::string rename;               // the canonical name the sources carry in the GGUF (a tied copy of the head)
  std::vector<float> generated;
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

GgufValue bool_array(const std::vector<uint8_t>& flags) {
  std::vector<GgufValue> values;
  for (uint8_t f : flags) values.push_back(GgufValue::boolean(f != 0));
  return GgufValue::array(GgufType::Bool, std::move(values));
}

void add_rope_metadata(const Config& c, const Architecture& arch, GgufMetadata& md) {
  const std::string_view a = arch.gguf_name;
  auto f32 = [](double v) { return GgufValue::f32(static_cast<float>(v)); };
  md.set(arch_key(a, "rope.dimension_count"), GgufValue::u32(static_cast<uint32_t>(c.rotary_dims())));
  md.set(arch_key(a, "rope.freq_base"), f32(c.rope_theta));
  const RopeScaling& r = c.rope_scaling;
  switch (r.type) {
    case RopeScalingType::None:
      break;
    case RopeScalingType::Linear:
      md.set(arch_key(a, "rope.scaling.type"), GgufValue::string("linear"));
      md.set(arch_key(a, "rope.scaling.factor"), f32(r.factor));
      break;
    case RopeScalingType::Llama3:
      // llama.cpp reads Llama-3 scaling only from the rope_freqs tensor; slmopt keeps the parameters beside it.
      md.set(kRopeLlama3Factor, f32(r.factor));
      md.set(kRopeLlama3LowFreqFactor, f32(r.low_freq_factor));
      md.set(kRopeLlama3HighFreqFactor, f32(r.high_freq_factor));
      md.set(kRopeLlama3OriginalContext, GgufValue::u32(static_cast<uint32_t>(r.original_max_position)));
      break;
    case RopeScalingType::LongRope:
      // As convert_hf_to_gguf.py writes Phi-3: the type, the original context (llama.cpp picks the long factors
      // when its context exceeds it) and the cos/sin magnitude; the factors go out as tensors.
      md.set(arch_key(a, "rope.scaling.type"), GgufValue::string("longrope"));
      md.set(arch_key(a, "rope.scaling.original_context_length"),
             GgufValue::u32(static_cast<uint32_t>(r.original_max_position)));
      md.set(arch_key(a, "rope.scaling.attn_factor"), f32(r.attention_factor));
      md.set(kRopeLongRopeFactor, f32(r.factor));
      break;
  }
}

void add_architecture_metadata(const Config& c, const Architecture& arch, GgufMetadata& md) {
  const std::string_view a = arch.gguf_name;
  auto u32 = [](int64_t v) { return GgufValue::u32(static_cast<uint32_t>(v)); };
  auto f32 = [](double v) { return GgufValue::f32(static_cast<float>(v)); };
  md.set(arch_key(a, "context_length"), u32(c.max_position));
  md.set(arch_key(a, "embedding_length"), u32(c.hidden_size));
  md.set(arch_key(a, "block_count"), u32(c.num_layers));
  md.set(arch_key(a, "feed_forward_length"), per_layer_value(c, &Config::ffn));
  md.set(arch_key(a, "attention.head_count"), per_layer_value(c, &Config::heads));
  md.set(arch_key(a, "attention.head_count_kv"), per_layer_value(c, &Config::kv_heads));
  // llama.cpp assumes head_dim = hidden / heads (of layer 0) unless told otherwise.
  if (c.head_dim * c.heads(0) != c.hidden_size) {
    md.set(arch_key(a, "attention.key_length"), u32(c.head_dim));
    md.set(arch_key(a, "attention.value_length"), u32(c.head_dim));
  }
  md.set(arch_key(a, c.norm_kind == NormKind::LayerNorm ? "attention.layer_norm_epsilon"
                                                        : "attention.layer_norm_rms_epsilon"),
         f32(c.norm_eps));
  md.set(arch_key(a, "vocab_size"), u32(c.vocab_size));
  if (c.position_kind == PositionKind::Rope) add_rope_metadata(c, arch, md);

  // Sliding windows: the window, and for graphs with local and global layers the per-layer pattern (a bool
  // array, 1 = local), always written there because llama.cpp's default pattern is per architecture.
  std::vector<uint8_t> local(static_cast<size_t>(c.num_layers));
  bool any_local = false;
  for (int64_t l = 0; l < c.num_layers; ++l) any_local |= (local[static_cast<size_t>(l)] = c.layer_is_sliding(l)) != 0;
  if (c.sliding_window > 0) md.set(arch_key(a, "attention.sliding_window"), u32(c.sliding_window));
  if (arch.swa == Swa::Pattern && (c.sliding_window > 0 || arch.swa_default_window > 0))
    md.set(arch_key(a, "attention.sliding_window_pattern"), bool_array(local));
  if (arch.swa_rope_base && any_local) {
    for (int64_t l = 0; l < c.num_layers; ++l)
      if (c.layer_is_sliding(l)) {
        md.set(arch_key(a, "rope.freq_base_swa"), f32(c.layer_rope_theta(l)));
        break;
      }
  }
  if (arch.attn_softcap) md.set(arch_key(a, "attn_logit_softcapping"), f32(c.attn_softcap));
  if (arch.final_softcap && c.final_logit_softcap > 0)
    md.set(arch_key(a, "final_logit_softcapping"), f32(c.final_logit_softcap));
  if (arch.multipliers) {
    // Granite's keys hold Hugging Face's values: logits are divided by logit_scale (logits_scaling).
    md.set(arch_key(a, "logit_scale"), f32(1.0 / c.logit_scale));
    if (c.embedding_scale != 1) md.set(arch_key(a, "embedding_scale"), f32(c.embedding_scale));
    if (c.residual_scale != 1) md.set(arch_key(a, "residual_scale"), f32(c.residual_scale));
    if (c.attn_scale > 0) md.set(arch_key(a, "attention.scale"), f32(c.attn_scale));
  }
}

// A model without a tokenizer (e.g. the ONNX-exported capp-gpt2-onnx, whose ids are process steps rather than
// text) still needs a token list: llama.cpp sizes the vocabulary from tokenizer.ggml.tokens. The placeholder is
// tokenizer.ggml.model "gpt2" (pre "gpt-2"), tokens "<|id_N|>" of type user-defined, no merges (an empty list,
// which llama.cpp accepts), and slmopt.tokenizer.placeholder = true so that load_gguf gives the model back
// without a vocabulary. llama.cpp evaluates such a file from token ids.
void add_placeholder_vocab(int64_t n_tokens, GgufMetadata& md) {
  std::vector<std::string> tokens;
  for (int64_t i = 0; i < n_tokens; ++i) tokens.push_back("<|id_" + std::to_string(i) + "|>");
  md.set(kTokenizerModel, GgufValue::string("gpt2"));
  md.set(kTokenizerPre, GgufValue::string("gpt-2"));
  md.set(kTokens, GgufValue::string_array(tokens));
  md.set(kTokenTypes, GgufValue::i32_array(std::vector<int32_t>(static_cast<size_t>(n_tokens), 4)));  // user-defined
  md.set(kMerges, GgufValue::string_array({}));
  md.set(kAddBos, GgufValue::boolean(false));
  md.set(kPlaceholderVocab, GgufValue::boolean(true));
}

// llama.cpp marks special tokens of any model whose general.name contains "phi3" or "phi-3" (llama-vocab.cpp)
// and fails to load one whose token list lacks those tokens: say so here rather than leave a file it rejects.
void check_phi3_name_quirk(const std::string& name, const GgufMetadata& md, const std::string& path) {
  std::string lower = name;
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower.find("phi3") == std::string::npos && lower.find("phi-3") == std::string::npos) return;
  const GgufValue* tokens = md.find(kTokens);
  for (const char* needed : {"</s>", "<unk>", "<s>", "<|endoftext|>"}) {
    bool found = false;
    if (tokens && tokens->to_array())
      for (const GgufValue& t : *tokens->to_array()) found = found || (t.to_string() && *t.to_string() == needed);
    if (!found)
      throw_error(ErrorKind::Unsupported, "{}: llama.cpp cannot load a model named '{}' whose vocabulary lacks the "
                  "token '{}' (it special-cases names containing \"phi3\"); pass another name", path, name, needed);
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
    case DType::IQ4_XS: return LlamaFileType::MostlyIQ4_XS;
    case DType::IQ3_S: return LlamaFileType::MostlyIQ3_S;
    case DType::IQ3_XXS: return LlamaFileType::MostlyIQ3_XXS;
    case DType::IQ2_S: return LlamaFileType::MostlyIQ2_M;  // llama.cpp's IQ2_S mix is mostly IQ2_XS
    case DType::IQ2_XS: return LlamaFileType::MostlyIQ2_XS;
    case DType::IQ2_XXS: return LlamaFileType::MostlyIQ2_XXS;
    case DType::IQ1_M: return LlamaFileType::MostlyIQ1_M;
    case DType::IQ1_S: return LlamaFileType::MostlyIQ1_S;
    default: return LlamaFileType::AllF32;
  }
}

void check_gguf_architecture(const Config& config, const std::string& context) {
  config.validate(context);
  architecture_for(config, context);
}

void write_gguf(const Model& model, const std::string& path, const GgufWriteOptions& options) {
  model.validate();
  const Config& c = model.config;
  const Architecture& arch = architecture_for(c, path);
  if (arch.swa == Swa::Ignored && c.sliding_window > 0 && c.sliding_window < c.max_position)
    spdlog::warn("{}: llama.cpp's {} graph has no sliding window: its logits match the model's only up to {} tokens",
                 path, arch.gguf_name, c.sliding_window);

  std::vector<PlannedTensor> planned;
  auto generated = [&](std::string_view name, std::vector<float> values) {
    PlannedTensor p;
    p.generated = std::move(values);
    p.plan = {std::string(name), {static_cast<int64_t>(p.generated.size())}, DType::F32};
    planned.push_back(std::move(p));
  };
  if (c.rope_scaling.type == RopeScalingType::Llama3) generated(kRopeFreqsTensor, llama3_rope_factors(c));
  if (c.rope_scaling.type == RopeScalingType::LongRope) {
    auto f32 = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
    generated(kRopeFactorsLong, f32(c.rope_scaling.long_factor));
    generated(kRopeFactorsShort, f32(c.rope_scaling.short_factor));
  }

  // Fused GGUF tensors, keyed by their first part; the other parts are skipped when met.
  std::map<std::string, FusedTensor> fused_by_first;
  std::map<std::string, bool> fused_part;
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (FusedTensor& f : fused_tensors(arch, c, l)) {
      for (const auto& part : f.parts) fused_part[part] = true;
      std::string first = f.parts.front();
      fused_by_first.emplace(std::move(first), std::move(f));
    }

  std::map<DType, int64_t> elements_by_dtype;
  bool any_quantized = false;
  auto plan = [&](std::vector<const Tensor*> sources, std::string gguf_name, std::string rename = {}) {
    PlannedTensor p;
    std::vector<int64_t> shape = sources.front()->shape();
    shape[0] = 0;
    for (const Tensor* s : sources) shape[0] += s->dim(0);
    // A fused tensor has one type: the parts' choice with the most bits per weight (a mix may favour attn_v).
    DType dtype = DType::F32;
    double best_bits = -1;
    for (const Tensor* s : sources) {
      Tensor probe = *s;
      if (!rename.empty()) probe.set_name(rename);
      const DType d = stored_dtype(probe, options, path);
      const double bits = 8.0 * static_cast<double>(traits(d).block_bytes) / static_cast<double>(traits(d).block_size);
      if (bits > best_bits) best_bits = bits, dtype = d;
    }
    const Tensor& probe = *sources.front();
    any_quantized = any_quantized || traits(dtype).is_quantized;
    if (probe.rank() >= 2) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      elements_by_dtype[dtype] += n;
    }
    p.sources = std::move(sources);
    p.rename = std::move(rename);
    p.plan = {std::move(gguf_name), std::move(shape), dtype};
    planned.push_back(std::move(p));
  };
  for (const Tensor* t : model.ordered_tensors()) {
    const std::string& name = t->name();
    if (ends_with(name, "rotary_emb.inv_freq")) continue;  // a buffer, recomputed from the config
    if (c.tie_word_embeddings && name == names::kLmHead) continue;  // llama.cpp reuses token_embd
    if (auto f = fused_by_first.find(name); f != fused_by_first.end()) {
      std::vector<const Tensor*> parts;
      for (const auto& part : f->second.parts) parts.push_back(&model.tensor(part));
      plan(std::move(parts), f->second.gguf_name);
      continue;
    }
    if (fused_part.count(name)) continue;
    const auto gguf_name = gguf_tensor_name(name);
    if (!gguf_name)
      throw_error(ErrorKind::Unsupported, "{}: tensor '{}' has no counterpart in llama.cpp's {} graph", path, name,
                  arch.gguf_name);
    plan({t}, *gguf_name);
    // A head llama.cpp's loader requires goes out as a copy of the embedding when the model ties them.
    if (name == names::kEmbedTokens && c.tie_word_embeddings && arch.head == Head::Required)
      plan({t}, std::string(kOutputTensor), names::kLmHead);
  }

  const LlamaFileType file_type = file_type_for(elements_by_dtype, options);

  GgufMetadata md;
  md.set(kArchitecture, GgufValue::string(std::string(arch.gguf_name)));
  md.set(kName, GgufValue::string(!options.name.empty() ? options.name : !c.name.empty() ? c.name : "model"));
  md.set(kAlignment, GgufValue::u32(options.alignment));
  md.set(kFileType, GgufValue::u32(static_cast<uint32_t>(file_type)));
  if (any_quantized) md.set(kQuantizationVersion, GgufValue::u32(2));
  add_architecture_metadata(c, arch, md);
  if (model.vocab.kind == VocabKind::None)
    add_placeholder_vocab(c.vocab_size, md);
  else
    gguf_tokenizer::add_vocab_metadata(model.vocab, c.vocab_size, md, path);
  check_phi3_name_quirk(md.find(kName)->to_string() ? *md.find(kName)->to_string() : "", md, path);
  if (!c.architecture.empty()) md.set(kHfArchitecture, GgufValue::string(c.architecture));
  if (c.tie_word_embeddings && arch.head == Head::Required) md.set(kTiedOutput, GgufValue::boolean(true));

  std::vector<GgufTensorPlan> plans;
  plans.reserve(planned.size());
  for (const auto& p : planned) plans.push_back(p.plan);
  write_gguf_file_streamed(path, md, plans, [&](size_t i, const GgufByteSink& write) {
    const PlannedTensor& p = planned[i];
    if (p.sources.empty()) {
      const Tensor t = Tensor::from_f32(p.plan.name, p.plan.shape, p.generated);
      return write(t.data(), t.nbytes());
    }
    auto transformed = [&](const Tensor* source) {
      Tensor t = *source;
      if (!p.rename.empty()) t.set_name(p.rename);
      if (arch.interleaved_rope)
        if (auto heads = rope_heads_of(t.name(), c)) t = regroup_rope_rows(t, *heads, /*to_gguf=*/true);
      if (arch.norm_unit_offset && is_norm_weight(t.name())) t = add_offset(t, 1.0f);
      return t;
    };
    if (p.sources.size() == 1) {  // the common case streams in row chunks, dropping the mapped input behind it
      stream_for_gguf(transformed(p.sources.front()), p.plan.dtype, options, path, write);
      release_mapped_pages(p.sources.front()->data(), p.sources.front()->nbytes());
      return;
    }
    std::vector<Tensor> parts;  // fused tensors (Phi-3 ffn_up, attn_qkv) are stacked whole
    for (const Tensor* source : p.sources) {
      parts.push_back(convert_for_gguf(transformed(source), p.plan.dtype, options, path));
      release_mapped_pages(source->data(), source->nbytes());
    }
    const Tensor stacked = stack_rows(parts, p.plan.name);
    write(stacked.data(), stacked.nbytes());
  });
}

}  // namespace slmopt
