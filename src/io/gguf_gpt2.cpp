// GPT-2 ↔ GGUF, as llama.cpp's "gpt2" architecture loads it (llm_build_gpt2: LayerNorm with bias, fused QKV,
// GELU MLP, learned positions):
//
//   IR (Hugging Face GPT2LMHeadModel, Conv1D already [out, in])    GGUF
//   transformer.wte.weight            [vocab, hidden]               token_embd.weight
//   transformer.wpe.weight            [n_positions, hidden]         position_embd.weight
//   transformer.h.N.ln_1.{weight,bias}                              blk.N.attn_norm.{weight,bias}
//   transformer.h.N.attn.c_attn.{weight,bias} [3·hidden, hidden]    blk.N.attn_qkv.{weight,bias} (rows Q, K, V)
//   transformer.h.N.attn.c_proj.{weight,bias}                       blk.N.attn_output.{weight,bias}
//   transformer.h.N.ln_2.{weight,bias}                              blk.N.ffn_norm.{weight,bias}
//   transformer.h.N.mlp.c_fc.{weight,bias}   [ffn, hidden]          blk.N.ffn_up.{weight,bias}
//   transformer.h.N.mlp.c_proj.{weight,bias} [hidden, ffn]          blk.N.ffn_down.{weight,bias}
//   transformer.ln_f.{weight,bias}                                  output_norm.{weight,bias}
//   (tied head)                                                     no output.weight: llama.cpp reuses token_embd
//
// Keys: gpt2.context_length (= n_positions, the rows of position_embd), .embedding_length, .feed_forward_length,
// .block_count, .attention.head_count, .attention.layer_norm_epsilon. No RoPE keys: GPT-2 has none.
//
// Vocabulary. llama.cpp sizes the vocabulary from tokenizer.ggml.tokens, and token_embd must match it, so a
// model without a tokenizer (e.g. the ONNX-exported capp-gpt2-onnx, whose ids are process steps rather than
// text) still needs a token list. For VocabKind::None the writer stores a placeholder: tokenizer.ggml.model
// "gpt2" (pre "gpt-2"), tokens "<|id_N|>" of type user-defined, no merges (an empty list, which llama.cpp
// accepts), and slmopt.tokenizer.placeholder = true so that load_gguf gives the model back without a
// vocabulary. llama.cpp evaluates such a file from token ids; its text tokenizer only knows the placeholders.
// Models with a real vocabulary store it as the llama writer does (gguf_tokenizer.h).
#include "gguf_gpt2.h"

#include <filesystem>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "gguf_arch.h"
#include "gguf_model_common.h"
#include "gguf_tokenizer.h"
#include "slmopt/core/error.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

using namespace gguf_arch;
namespace g = names::gpt2;

constexpr std::string_view kPlaceholderVocab = "slmopt.tokenizer.placeholder";

// Per-block suffixes: Hugging Face (after "transformer.h.N.") → llama.cpp (after "blk.N.").
constexpr std::pair<std::string_view, std::string_view> kBlockTensors[] = {
    {"ln_1.weight", "attn_norm.weight"},         {"ln_1.bias", "attn_norm.bias"},
    {"attn.c_attn.weight", "attn_qkv.weight"},   {"attn.c_attn.bias", "attn_qkv.bias"},
    {"attn.c_proj.weight", "attn_output.weight"}, {"attn.c_proj.bias", "attn_output.bias"},
    {"ln_2.weight", "ffn_norm.weight"},          {"ln_2.bias", "ffn_norm.bias"},
    {"mlp.c_fc.weight", "ffn_up.weight"},        {"mlp.c_fc.bias", "ffn_up.bias"},
    {"mlp.c_proj.weight", "ffn_down.weight"},    {"mlp.c_proj.bias", "ffn_down.bias"},
};

const std::pair<std::string, std::string> kGlobalTensors[] = {
    {g::kTokenEmbedding, "token_embd.weight"},
    {g::kPositionEmbedding, "position_embd.weight"},
    {g::kFinalNormWeight, "output_norm.weight"},
    {g::kFinalNormBias, "output_norm.bias"},
};

// "<prefix>N.<rest>" → (N, rest); nullopt when `name` does not have that form.
std::optional<std::pair<int64_t, std::string>> split_block(const std::string& name, std::string_view prefix) {
  if (name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  size_t pos = prefix.size();
  int64_t layer = 0;
  const size_t begin = pos;
  while (pos < name.size() && pos - begin < 9 && name[pos] >= '0' && name[pos] <= '9') layer = layer * 10 + (name[pos++] - '0');
  if (pos == begin || pos >= name.size() || name[pos] != '.') return std::nullopt;
  if (name[begin] == '0' && pos - begin > 1) return std::nullopt;
  return std::make_pair(layer, name.substr(pos + 1));
}

std::optional<std::string> to_gguf_name(const std::string& hf) {
  for (const auto& [from, to] : kGlobalTensors)
    if (hf == from) return to;
  if (auto split = split_block(hf, "transformer.h."))
    for (const auto& [from, to] : kBlockTensors)
      if (split->second == from) return "blk." + std::to_string(split->first) + "." + std::string(to);
  return std::nullopt;
}

std::optional<std::pair<int64_t, std::string>> to_hf_name(const std::string& gguf) {
  for (const auto& [to, from] : kGlobalTensors)
    if (gguf == from) return std::make_pair(int64_t{-1}, to);
  if (auto split = split_block(gguf, "blk."))
    for (const auto& [to, from] : kBlockTensors)
      if (split->second == from) return std::make_pair(split->first, g::block(split->first, std::string(to)));
  return std::nullopt;
}

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

}  // namespace

void write_gpt2_gguf(const Model& model, const std::string& path, const GgufWriteOptions& options) {
  const Config& c = model.config;
  c.validate(path);
  if (!c.tie_word_embeddings || model.has(names::kLmHead))
    throw_error(ErrorKind::Unsupported, "{}: GGUF output for GPT-2 supports the tied output head only", path);

  std::vector<GgufTensorPlan> plans;
  std::vector<const Tensor*> sources;
  std::map<DType, int64_t> elements_by_dtype;
  bool any_quantized = false;
  for (const Tensor* t : model.ordered_tensors()) {
    const auto gguf_name = to_gguf_name(t->name());
    if (!gguf_name)
      throw_error(ErrorKind::Unsupported, "{}: tensor '{}' has no counterpart in llama.cpp's gpt2 architecture", path,
                  t->name());
    const DType dtype = gguf_detail::stored_dtype(*t, options, path);
    any_quantized = any_quantized || traits(dtype).is_quantized;
    if (t->rank() >= 2) elements_by_dtype[dtype] += t->numel();
    plans.push_back({*gguf_name, t->shape(), dtype});
    sources.push_back(t);
  }
  // Every tensor llama.cpp's gpt2 graph requires must be there (a GGUF it cannot load is no use).
  for (const auto& [hf, gguf] : kGlobalTensors)
    if (!model.has(hf)) throw_error(ErrorKind::BadInput, "{}: GPT-2 tensor '{}' is missing", path, hf);
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (const auto& [hf, gguf] : kBlockTensors)
      if (!model.has(g::block(l, std::string(hf))))
        throw_error(ErrorKind::BadInput, "{}: GPT-2 tensor '{}' is missing", path, g::block(l, std::string(hf)));

  GgufMetadata md;
  const std::string_view a = kGpt2GgufArchitecture;
  md.set(kArchitecture, GgufValue::string(std::string(a)));
  md.set(kName, GgufValue::string(!options.name.empty() ? options.name : !c.name.empty() ? c.name : "model"));
  md.set(kAlignment, GgufValue::u32(options.alignment));
  md.set(kFileType, GgufValue::u32(static_cast<uint32_t>(gguf_detail::file_type_for(elements_by_dtype, options))));
  if (any_quantized) md.set(kQuantizationVersion, GgufValue::u32(2));
  md.set(arch_key(a, "context_length"), GgufValue::u32(static_cast<uint32_t>(c.max_position)));
  md.set(arch_key(a, "embedding_length"), GgufValue::u32(static_cast<uint32_t>(c.hidden_size)));
  md.set(arch_key(a, "feed_forward_length"), GgufValue::u32(static_cast<uint32_t>(c.intermediate_size)));
  md.set(arch_key(a, "block_count"), GgufValue::u32(static_cast<uint32_t>(c.num_layers)));
  md.set(arch_key(a, "attention.head_count"), GgufValue::u32(static_cast<uint32_t>(c.num_heads)));
  md.set(arch_key(a, "attention.layer_norm_epsilon"), GgufValue::f32(static_cast<float>(c.norm_eps)));
  if (model.vocab.kind == VocabKind::None)
    add_placeholder_vocab(c.vocab_size, md);
  else
    gguf_tokenizer::add_vocab_metadata(model.vocab, c.vocab_size, md, path);
  if (!c.architecture.empty()) md.set(kHfArchitecture, GgufValue::string(c.architecture));

  write_gguf_file_streamed(path, md, plans, [&](size_t i, const GgufByteSink& write) {
    gguf_detail::stream_for_gguf(*sources[i], plans[i].dtype, options, path, write);
  });
}

Model load_gpt2_gguf(const GgufFile& file, const std::string& path) {
  const std::string& src = file.source();
  const std::string_view a = kGpt2GgufArchitecture;
  Model model;
  model.source_path = path;
  model.source_format = "gguf";
  Config& c = model.config;
  c.family = Family::Gpt2;
  c.architecture = "GPT2LMHeadModel";
  c.name = file.get_string(kName).value_or(std::filesystem::path(src).stem().string());
  auto positive = [&](std::string_view suffix) {
    const std::string key = arch_key(a, suffix);
    const int64_t v = file.require_int(key);
    if (v <= 0 || v > (int64_t{1} << 31)) throw_error(ErrorKind::BadInput, "{}: key '{}' has the value {}", src, key, v);
    return v;
  };
  c.hidden_size = positive("embedding_length");
  c.num_layers = positive("block_count");
  c.max_position = positive("context_length");
  c.intermediate_size = positive("feed_forward_length");
  c.num_heads = c.num_kv_heads = positive("attention.head_count");
  if (c.num_layers > 100000) throw_error(ErrorKind::BadInput, "{}: {} layers is absurd", src, c.num_layers);
  if (c.hidden_size % c.num_heads != 0)
    throw_error(ErrorKind::BadInput, "{}: embedding_length {} is not a multiple of head_count {}", src, c.hidden_size,
                c.num_heads);
  c.head_dim = c.hidden_size / c.num_heads;
  c.norm_eps = file.require_float(arch_key(a, "attention.layer_norm_epsilon"));
  c.tie_word_embeddings = true;
  c.attention_bias = c.attention_out_bias = c.mlp_bias = true;

  for (const GgufTensorInfo& info : file.tensors()) {
    if (info.name == "output.weight")
      throw_error(ErrorKind::Unsupported, "{}: an untied GPT-2 output head (output.weight) is not supported", src);
    const auto hf = to_hf_name(info.name);
    if (!hf)
      throw_error(ErrorKind::Unsupported, "{}: tensor '{}' is not part of the gpt2 graph slmopt reads", src, info.name);
    if (hf->first >= c.num_layers)
      throw_error(ErrorKind::BadInput, "{}: tensor '{}' belongs to layer {}, but block_count is {}", src, info.name,
                  hf->first, c.num_layers);
    Tensor t = file.view(info);
    t.set_name(hf->second);
    model.set(std::move(t));
  }
  const Tensor* wte = model.find(g::kTokenEmbedding);
  if (!wte || wte->rank() != 2)
    throw_error(ErrorKind::BadInput, "{}: tensor 'token_embd.weight' is missing or not 2-D", src);
  c.vocab_size = wte->dim(0);
  c.validate(src);
  if (!file.get_bool(kPlaceholderVocab).value_or(false)) model.vocab = gguf_tokenizer::read_vocab_metadata(file);
  return model;
}

}  // namespace slmopt
