// The pipeline a vocabulary's text goes through before BPE (see ir/vocab.h), and the table that ties
// llama.cpp's tokenizer.ggml.pre names to it.
//
// llama.cpp runs a "gpt2" vocabulary's pre-tokenizer as a list of regexes, each cutting every piece into its
// matches and the text between them (Hugging Face's Split with behaviour Isolated), then maps bytes through
// GPT-2's table; the list depends only on the pre name (llm_tokenizer_bpe in llama.cpp's src/llama-vocab.cpp).
// The table below holds those lists as Hugging Face steps, written the way tokenizer.json writes them where
// Hugging Face has an equivalent (ByteLevel's own regex, Digits), so that a tokenizer.json pipeline can be
// named by comparing steps. GPT-2's regex ends in "|\s+" in Hugging Face and not in llama.cpp; with Isolated
// splitting the two cut text identically (whitespace the last alternative would take is left between matches
// and becomes a piece of its own either way).
#include <optional>
#include <string>
#include <vector>

#include "slmopt/ir/vocab.h"

namespace slmopt {
namespace {

using Kind = PreTokenizerStep::Kind;

PreTokenizerStep split(const char* regex) {
  PreTokenizerStep s;
  s.kind = Kind::Split;
  s.pattern = regex;
  return s;
}
PreTokenizerStep digits(bool individual) {
  PreTokenizerStep s;
  s.kind = Kind::Digits;
  s.individual_digits = individual;
  return s;
}
PreTokenizerStep byte_level(bool use_regex) {
  PreTokenizerStep s;
  s.kind = Kind::ByteLevel;
  s.use_regex = use_regex;
  return s;
}

// Regexes of llama.cpp pre-tokenizers that Hugging Face writes as a Split step (tokenizer.json's own text).
constexpr const char* kGpt4oRegex =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct PreName {
  std::vector<const char*> names;  // the first is the one slmopt writes
  std::vector<PreTokenizerStep> steps;
};

const std::vector<PreName>& pre_names() {
  static const std::vector<PreName> table = {
      {{"gpt-2", "phi-2", "mpt", "olmo", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de", "gigachat", "a.x-4.0",
        "mellum", "exaone4", "trillion", "granite-docling"},
       {byte_level(true)}},
      {{"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"},
       {digits(true), byte_level(true)}},
      {{"llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "dbrx",
        "smaug-bpe", "glm4", "chatglm-bpe"},
       {split(kLlama3SplitRegex), byte_level(false)}},
      {{"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", "hunyuan", "kormo"},
       {split(kQwen2SplitRegex), byte_level(false)}},
      {{"gpt-4o", "llama4"}, {split(kGpt4oRegex), byte_level(false)}},
      // Lists only llama.cpp writes this way (Hugging Face's own files use other components).
      {{"falcon"},
       {split(R"([\p{P}\$\+<=>\^~\|`]+)"), split(kGpt2SplitRegex), split("[0-9][0-9][0-9]"), byte_level(false)}},
      {{"deepseek-llm"},
       {split("[\r\n]"), split("\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+"),
        split("\\s?[!-/:-~！-／：-～‘-‟　-。]+"), split("\\s+$"), split("[一-龥ࠀ-一가-퟿]+"), split("\\p{N}+"),
        byte_level(false)}},
      {{"deepseek-coder"},
       {split("[\r\n]"), split("\\s?\\p{L}+"), split("\\s?\\p{P}+"), split("[一-龥ࠀ-一가-퟿]+"), split("\\p{N}"),
        byte_level(false)}},
      {{"default"},
       {split(R"([\p{P}\$\+<=>\^~\|]+)"), split(kGpt2SplitRegex), split(R"(\p{N}+)"), split("[0-9][0-9][0-9]"),
        byte_level(false)}},
  };
  return table;
}

std::vector<PreTokenizerStep> byte_level_steps(const Vocab& vocab) {
  std::vector<PreTokenizerStep> steps;
  if (!vocab.split_regex.empty()) {
    steps = vocab.split_regex == kGpt2SplitRegex
                ? std::vector<PreTokenizerStep>{byte_level(true)}
                : std::vector<PreTokenizerStep>{split(vocab.split_regex.c_str()), byte_level(false)};
  } else if (auto named = pipeline_for_pre_name(vocab.pre)) {
    steps = std::move(*named);
  } else {  // no name (or one slmopt does not know): GPT-2's
    steps = {byte_level(true)};
  }
  steps.back().add_prefix_space = vocab.add_prefix_space;
  return steps;
}

}  // namespace

std::optional<std::vector<PreTokenizerStep>> pipeline_for_pre_name(const std::string& name) {
  for (const PreName& entry : pre_names()) {
    for (const char* n : entry.names) {
      if (name == n) return entry.steps;
    }
  }
  return std::nullopt;
}

std::optional<std::string> llama_cpp_pre_name(const std::vector<PreTokenizerStep>& steps) {
  for (const PreName& entry : pre_names()) {
    if (entry.steps == steps) return std::string(entry.names.front());
  }
  return std::nullopt;
}

TokenizerPipeline effective_pipeline(const Vocab& vocab) {
  if (vocab.pipeline) return *vocab.pipeline;
  TokenizerPipeline p;
  if (vocab.kind == VocabKind::ByteLevelBpe) {
    p.pre_tokenizers = byte_level_steps(vocab);
    return p;
  }
  if (vocab.kind != VocabKind::SentencePieceBpe) return p;
  const std::string metaspace = "\xE2\x96\x81";  // "▁"
  if (vocab.add_prefix_space && vocab.prefix_scheme != PrefixScheme::Always) {
    PreTokenizerStep m;
    m.kind = Kind::Metaspace;
    m.replacement = metaspace;
    m.prepend = vocab.prefix_scheme == PrefixScheme::IfMissing ? MetaspacePrepend::Always : MetaspacePrepend::First;
    m.split = false;
    p.pre_tokenizers.push_back(m);
    return p;
  }
  if (vocab.add_prefix_space) p.normalizers.push_back({NormalizerStep::Kind::Prepend, "", metaspace});
  p.normalizers.push_back({NormalizerStep::Kind::Replace, " ", metaspace});
  return p;
}

}  // namespace slmopt
