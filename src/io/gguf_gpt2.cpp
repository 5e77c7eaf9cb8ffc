// GPT-2 ↔ GGUF, as llama.cpp's "gpt2" architecture loads it (llm_build_gpt2: LayerNorm with bias, fused QKV,
// GELU MLP, learned positions). The IR holds GPT-2 under the canonical decoder names (io/hf_gpt2.h):
//
//   IR (canonical, [out, in])                           GGUF
//   model.embed_tokens.weight      [vocab, hidden]      token_embd.weight
//   model.embed_positions.weight   [n_positions, hidden] position_embd.weight
//   layers.N.input_layernorm.{weight,bias}              blk.N.attn_norm.{weight,bias}
//   layers.N.self_attn.{q,k,v}_proj.{weight,bias}        blk.N.attn_qkv.{weight,bias} (rows Q, K, V concatenated;
//                                                        split back into views on reading)
//   layers.N.self_attn.o_proj.{weight,bias}             blk.N.attn_output.{weight,bias}
//   layers.N.post_attention_layernorm.{weight,bias}     blk.N.ffn_norm.{weight,bias}
//   layers.N.mlp.up_proj.{weight,bias}    [ffn, hidden] blk.N.ffn_up.{weight,bias}
//   layers.N.mlp.down_proj.{weight,bias}  [hidden, ffn] blk.N.ffn_down.{weight,bias}
//   model.norm.{weight,bias}                            output_norm.{weight,bias}
//   (tied head)                                         no output.weight: llama.cpp reuses token_embd
//
// The fused attn_qkv has one type: when the type choice gives q, k and v different types (a mix that favours
// attn_v), all three are stored in the one with the most bits per weight.
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
#include <iterator>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "gguf_arch.h"
#include "gguf_model_common.h"
#include "gguf_tokenizer.h"
#include "slmopt/core/error.h"
#include "slmopt/io/hf_gpt2.h"
#include "slmopt/ir/config_limits.h"
#include "slmopt/ir/tensor_names.h"

namespace slmopt {
namespace {

using namespace gguf_arch;


// Per-block tensors stored one to one: canonical name of layer N → llama.cpp suffix (after "blk.N.").
struct BlockTensor {
  std::string (*canonical)(int64_t layer);
  std::string_view gguf;
};
constexpr BlockTensor kBlockTensors[] = {
    {names::attn_norm, "attn_norm.weight"},   {names::attn_norm_bias, "attn_norm.bias"},
    {names::o_proj, "attn_output.weight"},    {names::o_bias, "attn_output.bias"},
    {names::ffn_norm, "ffn_norm.weight"},     {names::ffn_norm_bias, "ffn_norm.bias"},
    {names::up_proj, "ffn_up.weight"},        {names::up_bias, "ffn_up.bias"},
    {names::down_proj, "ffn_down.weight"},    {names::down_bias, "ffn_down.bias"},
};
// The fused projection: Q, K, V rows in this order.
struct Gpt2FusedTensor {
  std::string (*parts[3])(int64_t layer);
  std::string_view gguf;
};
constexpr Gpt2FusedTensor kFusedTensors[] = {
    {{names::q_proj, names::k_proj, names::v_proj}, "attn_qkv.weight"},
    {{names::q_bias, names::k_bias, names::v_bias}, "attn_qkv.bias"},
};

const std::pair<std::string, std::string> kGlobalTensors[] = {
    {names::kEmbedTokens, "token_embd.weight"},
    {names::kPositionEmbedding, "position_embd.weight"},
    {names::kFinalNorm, "output_norm.weight"},
    {names::kFinalNormBias, "output_norm.bias"},
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

// Bytes per element, for choosing the fused tensor's type.
double bits_per_weight(DType dtype) {
  const DTypeTraits& t = traits(dtype);
  return 8.0 * static_cast<double>(t.block_bytes) / static_cast<double>(t.block_size);
}

// Rows of `parts` (same dtype and row length) concatenated into one owned tensor named `name`.
Tensor concat_rows(const std::string& name, const std::vector<Tensor>& parts) {
  std::vector<uint8_t> bytes;
  int64_t rows = 0;
  for (const Tensor& p : parts) {
    bytes.insert(bytes.end(), p.data(), p.data() + p.nbytes());
    rows += p.dim(0);
  }
  std::vector<int64_t> shape = parts[0].shape();
  shape[0] = rows;
  return Tensor::owned(name, shape, parts[0].dtype(), std::move(bytes));
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
  check_gpt2_tensors(model, path);  // every tensor llama.cpp's gpt2 graph requires, and nothing else

  // Each GGUF tensor is made of one IR tensor, or of q/k/v for the fused projection.
  struct Entry {
    std::vector<const Tensor*> sources;
  };
  std::vector<GgufTensorPlan> plans;
  std::vector<Entry> entries;
  std::map<DType, int64_t> elements_by_dtype;
  bool any_quantized = false;
  auto add = [&](const std::string& gguf_name, std::vector<const Tensor*> sources) {
    DType dtype = gguf_detail::stored_dtype(*sources[0], options, path);
    for (size_t i = 1; i < sources.size(); ++i) {
      const DType other = gguf_detail::stored_dtype(*sources[i], options, path);
      if (bits_per_weight(other) > bits_per_weight(dtype)) dtype = other;
    }
    std::vector<int64_t> shape = sources[0]->shape();
    for (size_t i = 1; i < sources.size(); ++i) shape[0] += sources[i]->dim(0);
    any_quantized = any_quantized || traits(dtype).is_quantized;
    if (shape.size() >= 2) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      elements_by_dtype[dtype] += n;
    }
    plans.push_back({gguf_name, shape, dtype});
    entries.push_back({std::move(sources)});
  };
  add("token_embd.weight", {&model.tensor(names::kEmbedTokens)});
  add("position_embd.weight", {&model.tensor(names::kPositionEmbedding)});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string blk = "blk." + std::to_string(l) + ".";
    // In llama.cpp's order: attn_norm, attn_qkv, then the rest.
    for (size_t i = 0; i < std::size(kBlockTensors); ++i) {
      if (i == 2)
        for (const Gpt2FusedTensor& f : kFusedTensors)
          add(blk + std::string(f.gguf),
              {&model.tensor(f.parts[0](l)), &model.tensor(f.parts[1](l)), &model.tensor(f.parts[2](l))});
      add(blk + std::string(kBlockTensors[i].gguf), {&model.tensor(kBlockTensors[i].canonical(l))});
    }
  }
  add("output_norm.weight", {&model.tensor(names::kFinalNorm)});
  add("output_norm.bias", {&model.tensor(names::kFinalNormBias)});

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

  write_gguf_file(path, md, plans, [&](size_t i) {
    const Entry& e = entries[i];
    if (e.sources.size() == 1) return gguf_detail::convert_for_gguf(*e.sources[0], plans[i].dtype, options, path);
    std::vector<Tensor> parts;
    for (const Tensor* t : e.sources) parts.push_back(gguf_detail::convert_for_gguf(*t, plans[i].dtype, options, path));
    return concat_rows(plans[i].name, parts);
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
  check_config_sizes(c, src);
  c.norm_eps = file.require_float(arch_key(a, "attention.layer_norm_epsilon"));
  set_gpt2_description(c);

  for (const GgufTensorInfo& info : file.tensors()) {
    if (info.name == "output.weight")
      throw_error(ErrorKind::Unsupported, "{}: an untied GPT-2 output head (output.weight) is not supported", src);
    Tensor t = file.view(info);
    bool known = false;
    for (const auto& [canonical, gguf] : kGlobalTensors)
      if (info.name == gguf) {
        t.set_name(canonical);
        model.set(std::move(t));
        known = true;
        break;
      }
    if (known) continue;
    const auto split = split_block(info.name, "blk.");
    if (split && split->first >= c.num_layers)
      throw_error(ErrorKind::BadInput, "{}: tensor '{}' belongs to layer {}, but block_count is {}", src, info.name,
                  split->first, c.num_layers);
    if (split)
      for (const BlockTensor& b : kBlockTensors)
        if (split->second == b.gguf) {
          t.set_name(b.canonical(split->first));
          model.set(std::move(t));
          known = true;
          break;
        }
    if (split && !known)
      for (const Gpt2FusedTensor& f : kFusedTensors)
        if (split->second == f.gguf) {
          if (t.dim(0) % 3 != 0)
            throw_error(ErrorKind::BadInput, "{}: tensor '{}' has {} rows, not 3 equal parts", src, info.name, t.dim(0));
          const int64_t rows = t.dim(0) / 3;
          for (int64_t part = 0; part < 3; ++part) {
            const std::string name = f.parts[part](split->first);
            if (t.rank() == 2) {
              model.set(t.rows_view(name, part * rows, (part + 1) * rows));
            } else {
              const std::vector<float> v = t.to_f32();
              model.set(Tensor::from_f32(name, {rows}, std::span<const float>(v).subspan(
                                                           static_cast<size_t>(part * rows), static_cast<size_t>(rows))));
            }
          }
          known = true;
          break;
        }
    if (!known)
      throw_error(ErrorKind::Unsupported, "{}: tensor '{}' is not part of the gpt2 graph slmopt reads", src, info.name);
  }
  const Tensor* wte = model.find(names::kEmbedTokens);
  if (!wte || wte->rank() != 2)
    throw_error(ErrorKind::BadInput, "{}: tensor 'token_embd.weight' is missing or not 2-D", src);
  c.vocab_size = wte->dim(0);
  c.validate(src);
  check_gpt2_tensors(model, src);
  if (!file.get_bool(kPlaceholderVocab).value_or(false)) model.vocab = gguf_tokenizer::read_vocab_metadata(file);
  return model;
}

}  // namespace slmopt
