// slmopt inspect MODEL [--json]: what a model is — architecture, hyper-parameters, tokenizer, every tensor.
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "slmopt/io/hf_gptq.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/io/onnx_import.h"
#include "slmopt/ir/model.h"
#include "slmopt/pipeline/stage_report.h"

namespace slmopt::driver {
namespace {

const char* vocab_kind_name(VocabKind kind) {
  switch (kind) {
    case VocabKind::SentencePieceBpe: return "sentencepiece-bpe";
    case VocabKind::ByteLevelBpe: return "byte-level-bpe";
    case VocabKind::None: return "none";
  }
  return "none";
}

const char* rope_scaling_name(RopeScalingType t) {
  switch (t) {
    case RopeScalingType::None: return "none";
    case RopeScalingType::Linear: return "linear";
    case RopeScalingType::Llama3: return "llama3";
    case RopeScalingType::LongRope: return "longrope";
  }
  return "none";
}

nlohmann::json describe(const Model& m, const StoredQuantization& stored) {
  const Config& c = m.config;
  nlohmann::json j;
  j["path"] = m.source_path;
  j["format"] = m.source_format;
  j["architecture"] = c.architecture;
  j["family"] = c.family;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_layers"] = c.num_layers;
  j["num_heads"] = c.num_heads;
  j["num_kv_heads"] = c.num_kv_heads;
  j["head_dim"] = c.head_dim;
  j["vocab_size"] = c.vocab_size;
  j["context_length"] = c.max_position;
  j["norm_eps"] = c.norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["rope_scaling"] = rope_scaling_name(c.rope_scaling.type);
  if (c.rope_scaling.type != RopeScalingType::None) j["rope_scaling_factor"] = c.rope_scaling.factor;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["attention_bias"] = c.attention_bias;
  if (!c.uniform_layers()) {
    j["layer_num_heads"] = c.layer_num_heads;
    j["layer_num_kv_heads"] = c.layer_num_kv_heads;
    j["layer_intermediate_size"] = c.layer_intermediate_size;
  }
  j["parameters"] = m.parameter_count();
  j["total_bytes"] = m.total_bytes();  // in memory, as loaded (packed integer weights are dequantized)
  j["bytes_on_disk"] = pipeline::path_bytes(m.source_path);
  if (!stored.description.empty()) j["quantization"] = stored.description;
  j["tokenizer"] = {{"kind", vocab_kind_name(m.vocab.kind)}, {"vocab_size", m.vocab.size()}};
  if (m.vocab.bos_id) j["tokenizer"]["bos_id"] = *m.vocab.bos_id;
  if (m.vocab.eos_id) j["tokenizer"]["eos_id"] = *m.vocab.eos_id;
  j["tokenizer"]["add_bos"] = m.vocab.add_bos;
  nlohmann::json tensors = nlohmann::json::array();
  for (const Tensor* t : m.ordered_tensors()) {
    nlohmann::json e = {{"name", t->name()}, {"shape", t->shape()}, {"dtype", dtype_name(t->dtype())},
                        {"bytes", t->nbytes()}};
    if (auto it = stored.tensors.find(t->name()); it != stored.tensors.end()) e["stored_as"] = it->second;
    tensors.push_back(e);
  }
  j["tensors"] = tensors;
  return j;
}

void print_text(const Model& m, const StoredQuantization& stored) {
  const Config& c = m.config;
  std::printf("model        %s (%s)\n", m.source_path.c_str(), m.source_format.c_str());
  std::printf("architecture %s (family %s)\n", c.architecture.c_str(), c.family.c_str());
  std::printf("layers %lld  hidden %lld  ffn %lld  heads %lld  kv_heads %lld  head_dim %lld\n",
              (long long)c.num_layers, (long long)c.hidden_size, (long long)c.intermediate_size,
              (long long)c.num_heads, (long long)c.num_kv_heads, (long long)c.head_dim);
  std::printf("vocab %lld  context %lld  norm_eps %g  rope_theta %g  rope_scaling %s  tied %s  attn_bias %s\n",
              (long long)c.vocab_size, (long long)c.max_position, c.norm_eps, c.rope_theta,
              rope_scaling_name(c.rope_scaling.type), c.tie_word_embeddings ? "yes" : "no",
              c.attention_bias ? "yes" : "no");
  if (!c.uniform_layers()) {
    std::printf("per-layer heads/kv/ffn:");
    for (int64_t l = 0; l < c.num_layers; ++l)
      std::printf(" %lld/%lld/%lld", (long long)c.heads(l), (long long)c.kv_heads(l), (long long)c.ffn(l));
    std::printf("\n");
  }
  std::printf("tokenizer %s, %lld tokens", vocab_kind_name(m.vocab.kind), (long long)m.vocab.size());
  if (m.vocab.bos_id) std::printf(", bos %d", *m.vocab.bos_id);
  if (m.vocab.eos_id) std::printf(", eos %d", *m.vocab.eos_id);
  std::printf("\n");
  if (!stored.description.empty())
    std::printf("quantization %s (%zu packed matrices, dequantized to F32 when loaded)\n", stored.description.c_str(),
                stored.tensors.size());
  std::printf("\n%-56s %-16s %-18s %12s\n", "tensor", "shape", "stored as", "bytes");
  for (const Tensor* t : m.ordered_tensors()) {
    const auto it = stored.tensors.find(t->name());
    // Packed tensors: their dequantized size in memory is not what the files hold, so no byte count.
    std::printf("%-56s %-16s %-18s %12s\n", t->name().c_str(), shape_to_string(t->shape()).c_str(),
                it != stored.tensors.end() ? it->second.c_str() : std::string(dtype_name(t->dtype())).c_str(),
                it != stored.tensors.end() ? "packed" : std::to_string(t->nbytes()).c_str());
  }
  const uint64_t on_disk = pipeline::path_bytes(m.source_path);
  std::printf("\n%zu tensors, %lld parameters, %s on disk", m.tensors().size(), (long long)m.parameter_count(),
              pipeline::human_bytes(static_cast<double>(on_disk)).c_str());
  if (on_disk != m.total_bytes())
    std::printf(" (%s in memory as loaded)", pipeline::human_bytes(static_cast<double>(m.total_bytes())).c_str());
  std::printf("\n");
}

// Packed integer weights the loader dequantized: GPTQ/AWQ folders, slmopt's int4/int8 ONNX exports.
StoredQuantization stored_quantization(const std::string& path) {
  if (is_hf_quantized_folder(path)) return hf_quantized_storage(path);
  if (path.size() > 5 && path.compare(path.size() - 5, 5, ".onnx") == 0) return onnx_quantized_storage(path);
  return {};
}

}  // namespace

CommandSpec inspect_command() {
  return {"inspect", "Show a model's architecture, hyper-parameters, tokenizer and tensors",
          [](CLI::App& sub, const GlobalOptions&) -> std::function<void()> {
            auto model_path = std::make_shared<std::string>();
            auto json = std::make_shared<bool>(false);
            sub.add_option("MODEL", *model_path, "Hugging Face folder, .gguf or .onnx file")->required();
            sub.add_flag("--json", *json, "Print one JSON document");
            return [=] {
              const Model model = load_model(*model_path);
              // The loaded file (an ONNX export folder resolves to its onnx/*.onnx graph).
              const StoredQuantization stored =
                  stored_quantization(model.source_path.empty() ? *model_path : model.source_path);
              if (*json) pipeline::print_json(describe(model, stored));
              else print_text(model, stored);
            };
          }};
}

}  // namespace slmopt::driver
