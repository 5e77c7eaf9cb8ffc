// Hugging Face tokenizer.json + tokenizer_config.json <-> Vocab.
//
// tokenizer.json is one JSON object: "added_tokens" [{id, content, special, normalized, ...}], "normalizer",
// "pre_tokenizer", "post_processor", "decoder" (each null or {"type": ..., ...}, "Sequence" nesting others) and
// "model" {"type": "BPE", "vocab": {token: id}, "merges": ["a b", ...] or [["a", "b"], ...], "unk_token",
// "byte_fallback", "fuse_unk", "ignore_merges"}. Only BPE models in the two styles ir/vocab.h describes are
// read, with the normalizers Prepend, Replace (string), NFC/NFD/NFKC/NFKD and the pre-tokenizers Split,
// Digits, Metaspace and ByteLevel (last) kept as the vocabulary's TokenizerPipeline; every other component
// (and an added token with single_word) is refused by name, so a tokenizer slmopt would silently mistokenize
// never loads. tokenizer_config.json adds the special-token names (bos_token, ... as strings or {"content": ...}),
// add_bos_token / add_eos_token and chat_template.
#include "slmopt/io/hf_tokenizer.h"

#include "hf_tokenizer_pipeline.h"

#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "slmopt/core/error.h"
#include "slmopt/core/log.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/ir/token_index.h"
#include "json_strict.h"

namespace slmopt {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // "▁" U+2581
// Ids beyond this are refused: a vocabulary this large is a corrupt file, not a model.
constexpr int64_t kMaxTokenId = int64_t{1} << 24;

// "type" of a component object; "" for null.
std::string component_type(const json& component, const std::string& path, std::string_view what) {
  if (component.is_null()) return "";
  if (!component.is_object() || !component.contains("type") || !component["type"].is_string()) {
    throw_error(ErrorKind::BadInput, "{}: {} must be null or an object with a string \"type\"", path, what);
  }
  return component["type"].get<std::string>();
}

const json& array_member(const json& object, const char* key, const std::string& path, std::string_view what) {
  if (!object.contains(key) || !object[key].is_array()) {
    throw_error(ErrorKind::BadInput, "{}: {} needs an array \"{}\"", path, what, key);
  }
  return object[key];
}

std::string string_member(const json& object, const char* key, const std::string& fallback) {
  if (object.is_object() && object.contains(key) && object[key].is_string()) return object[key].get<std::string>();
  return fallback;
}

bool bool_member(const json& object, const char* key, bool fallback) {
  if (object.is_object() && object.contains(key) && object[key].is_boolean()) return object[key].get<bool>();
  return fallback;
}

// Bytes in the UTF-8 character a lead byte starts.
size_t utf8_char_length(unsigned char lead) {
  return lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

// A pattern object {"String": text} or {"Regex": pattern}: the text and whether it is literal.
std::pair<std::string, bool> read_pattern(const json& component, const std::string& path, std::string_view what) {
  const json& pattern = component.value("pattern", json());
  if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string()) {
    return {pattern["String"].get<std::string>(), true};
  }
  if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
    return {pattern["Regex"].get<std::string>(), false};
  }
  throw_error(ErrorKind::BadInput, "{}: {} needs a \"pattern\" {{\"String\": ...}} or {{\"Regex\": ...}}", path, what);
}

void read_normalizer(const json& normalizer, const std::string& path, TokenizerPipeline& pipeline) {
  const std::string type = component_type(normalizer, path, "normalizer");
  using Kind = NormalizerStep::Kind;
  if (type.empty()) return;
  if (type == "Sequence") {
    for (const json& inner : array_member(normalizer, "normalizers", path, "normalizer Sequence")) {
      read_normalizer(inner, path, pipeline);
    }
  } else if (type == "Prepend") {
    if (!normalizer.contains("prepend") || !normalizer["prepend"].is_string()) {
      throw_error(ErrorKind::BadInput, "{}: normalizer Prepend needs a string \"prepend\"", path);
    }
    pipeline.normalizers.push_back({Kind::Prepend, "", normalizer["prepend"].get<std::string>()});
  } else if (type == "Replace") {
    const auto [pattern, literal] = read_pattern(normalizer, path, "normalizer Replace");
    if (!literal) {
      throw_error(ErrorKind::Unsupported, "{}: normalizer Replace with a Regex pattern is not supported", path);
    }
    pipeline.normalizers.push_back({Kind::Replace, pattern, string_member(normalizer, "content", "")});
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    const Kind kind = type == "NFC" ? Kind::Nfc : type == "NFD" ? Kind::Nfd : type == "NFKC" ? Kind::Nfkc : Kind::Nfkd;
    pipeline.normalizers.push_back({kind, "", ""});
  } else {
    throw_error(ErrorKind::Unsupported, "{}: normalizer '{}' is not supported", path, type);
  }
}

SplitBehavior read_behavior(const json& component, const std::string& path) {
  const std::string behavior = string_member(component, "behavior", "");
  if (behavior == "Removed") return SplitBehavior::Removed;
  if (behavior == "Isolated") return SplitBehavior::Isolated;
  if (behavior == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (behavior == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (behavior == "Contiguous") return SplitBehavior::Contiguous;
  throw_error(ErrorKind::BadInput, "{}: pre_tokenizer Split has an unknown \"behavior\" '{}'", path, behavior);
}

void read_pre_tokenizer(const json& pre, const std::string& path, TokenizerPipeline& pipeline) {
  const std::string type = component_type(pre, path, "pre_tokenizer");
  if (type.empty()) return;
  if (type != "Sequence" && !pipeline.pre_tokenizers.empty() &&
      pipeline.pre_tokenizers.back().kind == PreTokenizerStep::Kind::ByteLevel) {
    throw_error(ErrorKind::Unsupported, "{}: pre_tokenizer '{}' after ByteLevel is not supported", path, type);
  }
  PreTokenizerStep step;
  if (type == "Sequence") {
    for (const json& inner : array_member(pre, "pretokenizers", path, "pre_tokenizer Sequence")) {
      read_pre_tokenizer(inner, path, pipeline);
    }
    return;
  } else if (type == "Split") {
    step.kind = PreTokenizerStep::Kind::Split;
    std::tie(step.pattern, step.literal) = read_pattern(pre, path, "pre_tokenizer Split");
    step.behavior = read_behavior(pre, path);
    step.invert = bool_member(pre, "invert", false);
  } else if (type == "Digits") {
    step.kind = PreTokenizerStep::Kind::Digits;
    step.individual_digits = bool_member(pre, "individual_digits", false);
  } else if (type == "Metaspace") {
    step.kind = PreTokenizerStep::Kind::Metaspace;
    step.replacement = string_member(pre, "replacement", "");
    if (step.replacement.empty() ||
        step.replacement.size() != utf8_char_length(static_cast<unsigned char>(step.replacement[0]))) {
      throw_error(ErrorKind::BadInput, "{}: pre_tokenizer Metaspace \"replacement\" must be one character", path);
    }
    // Files from before prepend_scheme have add_prefix_space; HF defaults to "always" and split true.
    std::string scheme = string_member(pre, "prepend_scheme", "");
    if (scheme.empty()) scheme = bool_member(pre, "add_prefix_space", true) ? "always" : "never";
    if (scheme == "always") {
      step.prepend = MetaspacePrepend::Always;
    } else if (scheme == "first") {
      step.prepend = MetaspacePrepend::First;
    } else if (scheme == "never") {
      step.prepend = MetaspacePrepend::Never;
    } else {
      throw_error(ErrorKind::BadInput, "{}: pre_tokenizer Metaspace prepend_scheme '{}'", path, scheme);
    }
    step.split = bool_member(pre, "split", true);
  } else if (type == "ByteLevel") {
    step.kind = PreTokenizerStep::Kind::ByteLevel;
    step.add_prefix_space = bool_member(pre, "add_prefix_space", false);
    step.use_regex = bool_member(pre, "use_regex", true);
  } else {
    throw_error(ErrorKind::Unsupported, "{}: pre_tokenizer '{}' is not supported", path, type);
  }
  pipeline.pre_tokenizers.push_back(std::move(step));
}

// The special tokens a TemplateProcessing post-processor puts before / after a single sequence.
struct Template {
  std::optional<std::string> first, last;
};

void read_post_processor(const json& post, const std::string& path, Template& tmpl) {
  const std::string type = component_type(post, path, "post_processor");
  if (type.empty() || type == "ByteLevel") return;
  if (type == "Sequence") {
    for (const json& inner : array_member(post, "processors", path, "post_processor Sequence")) {
      read_post_processor(inner, path, tmpl);
    }
  } else if (type == "TemplateProcessing") {
    const json& single = array_member(post, "single", path, "post_processor TemplateProcessing");
    auto special_of = [&](const json& piece) -> std::optional<std::string> {
      if (piece.is_object() && piece.contains("SpecialToken")) {
        return string_member(piece["SpecialToken"], "id", "");
      }
      return std::nullopt;
    };
    if (!single.empty()) {
      tmpl.first = special_of(single.front());
      if (single.size() > 1) tmpl.last = special_of(single.back());
    }
  } else {
    spdlog::warn("{}: post_processor '{}' ignored (slmopt adds only BOS/EOS)", path, type);
  }
}

// A special token in tokenizer_config.json: "text", {"content": "text", ...} or null.
std::optional<std::string> config_token(const json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const json& value = config[key];
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string()) {
    return value["content"].get<std::string>();
  }
  return std::nullopt;
}

bool is_byte_token(std::string_view token) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  return token.size() == 6 && token.substr(0, 3) == "<0x" && hex(token[3]) && hex(token[4]) && token[5] == '>';
}

// SentencePiece-style consumers without a merge list (llama.cpp's "llama" vocabulary) merge the adjacent pair
// whose concatenation has the highest score. Scoring each token by its first merge's rank (−rank) makes that
// follow the merge order; normal tokens no merge makes score below all of them, the others 0 as in SentencePiece.
// SentencePiece-BPE scores from the merges: a token made by merge r scores -r (its first merge), a normal token
// no merge makes scores below every merge, in id order. first_rank[id]: the first merge that makes the token
// with that id (npos: none); canonical_id maps a token's text to the id that first_rank is kept under.
template <typename CanonicalId>
std::vector<float> scores_from_merges(const Vocab& vocab, const std::vector<size_t>& first_rank,
                                      CanonicalId canonical_id) {
  std::vector<float> scores(vocab.tokens.size(), 0.0f);
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    if (vocab.types[id] != TokenType::Normal) continue;
    const size_t rank = first_rank[static_cast<size_t>(canonical_id(vocab.tokens[id]))];
    scores[id] = -static_cast<float>(rank != std::string::npos ? rank : vocab.merges.size() + id);
  }
  return scores;
}

// `kind` and `token` name the entry in an error ("vocab token 'x'"); formatted only then, since a vocabulary
// has up to hundreds of thousands of entries.
int32_t checked_id(const json& value, const std::string& path, const char* kind, std::string_view token) {
  if (!value.is_number_integer())
    throw_error(ErrorKind::BadInput, "{}: {} '{}' has a non-integer id", path, kind, token);
  const int64_t id = value.get<int64_t>();
  if (id < 0 || id >= kMaxTokenId)
    throw_error(ErrorKind::BadInput, "{}: {} '{}' has id {} out of range", path, kind, token, id);
  return static_cast<int32_t>(id);
}

}  // namespace

Vocab load_hf_vocab(const std::string& tokenizer_json_path, const std::string& tokenizer_config_path) {
  const std::string& path = tokenizer_json_path;
  Vocab vocab;
  vocab.source_tokenizer_json = read_text_file(path);
  // model.vocab and model.merges are most of the file (Gemma 3: 262k tokens, 515k merges): streamed, in file
  // order, instead of stored as a DOM object and array. The parser is depth-limited and duplicate-refusing except
  // inside the vocab, whose repeated tokens are found below.
  std::vector<std::pair<std::string, json>> vocab_entries;  // (token, id)
  std::vector<json> merge_entries;
  const json root = parse_json_strict(
      vocab.source_tokenizer_json, path, "key",
      {{{"model", "vocab"},
        [&](std::string_view token, json&& id) { vocab_entries.emplace_back(token, std::move(id)); }},
       {{"model", "merges"}, [&](std::string_view, json&& merge) { merge_entries.push_back(std::move(merge)); }}});
  if (!root.is_object()) throw_error(ErrorKind::BadInput, "{}: not a JSON object", path);
  if (!root.contains("model") || !root["model"].is_object()) {
    throw_error(ErrorKind::BadInput, "{}: missing the \"model\" object", path);
  }
  const json& model = root["model"];
  // Files written before the model was tagged have no "type"; a "merges" list means BPE.
  const std::string model_type = string_member(model, "type", model.contains("merges") ? "BPE" : "");
  if (model_type != "BPE") {
    throw_error(ErrorKind::Unsupported, "{}: tokenizer model type '{}' is not supported (only BPE)", path,
                model_type.empty() ? "untagged" : model_type);
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    throw_error(ErrorKind::BadInput, "{}: model has no \"vocab\" object", path);
  }

  // Vocabulary: model.vocab, overridden and extended by added_tokens (HF resolves ids the same way).
  std::vector<int32_t> vocab_ids;
  vocab_ids.reserve(vocab_entries.size());
  int32_t size = 0;
  std::string_view last_token;  // the token with the highest id, named if its id leaves too many holes
  auto extend = [&](int32_t id, std::string_view token) {
    if (id + 1 > size) {
      size = id + 1;
      last_token = token;
    }
  };
  for (const auto& [token, id_value] : vocab_entries) {
    vocab_ids.push_back(checked_id(id_value, path, "vocab token", token));
    extend(vocab_ids.back(), token);
  }
  struct Added {
    int32_t id;
    bool special, normalized;
    std::string_view content;  // a view into root
  };
  std::vector<Added> added;
  if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
    for (const json& entry : array_member(root, "added_tokens", path, "tokenizer")) {
      if (!entry.is_object() || !entry.contains("content") || !entry["content"].is_string() ||
          !entry.contains("id")) {
        throw_error(ErrorKind::BadInput, "{}: an added_tokens entry lacks \"id\" or \"content\"", path);
      }
      const std::string& content = entry["content"].get_ref<const std::string&>();
      const int32_t id = checked_id(entry["id"], path, "added token", content);
      extend(id, content);
      const bool special = bool_member(entry, "special", false);
      added.push_back({id, special, bool_member(entry, "normalized", !special), content});
      if (bool_member(entry, "single_word", false)) {
        throw_error(ErrorKind::Unsupported, "{}: added token '{}' with \"single_word\": true is not supported", path,
                    content);
      }
      if (bool_member(entry, "lstrip", false)) vocab.lstrip_added_ids.push_back(id);
      if (bool_member(entry, "rstrip", false)) vocab.rstrip_added_ids.push_back(id);
    }
  }
  // Holes in the ids become placeholder tokens. They are allowed (llama.cpp's converter keeps them too) but must
  // stay proportional to the tokens the file defines: one stray id near 2^24 used to allocate 1.5 GB of them.
  // Tables indexed by id are allocated only once `size` is known to be within that bound of the entries.
  auto refuse_holes = [&](int64_t defined) {
    const int64_t max_holes = defined + 1024;
    if (static_cast<int64_t>(size) - defined > max_holes)
      throw_error(ErrorKind::BadInput,
                  "{}: token id {} ('{}') leaves {} unused ids below it for {} tokens (at most {})", path, size - 1,
                  last_token, static_cast<int64_t>(size) - defined, defined, max_holes);
  };
  refuse_holes(static_cast<int64_t>(vocab_entries.size() + added.size()));
  enum class Origin : uint8_t { Hole, Vocab, Added };
  std::vector<std::string_view> text_of(static_cast<size_t>(size));  // views into vocab_entries and root
  std::vector<Origin> origin(static_cast<size_t>(size), Origin::Hole);
  for (size_t i = 0; i < vocab_entries.size(); ++i) {
    const auto id = static_cast<size_t>(vocab_ids[i]);
    if (origin[id] != Origin::Hole)
      throw_error(ErrorKind::BadInput, "{}: vocab id {} is used by '{}' and '{}'", path, id, text_of[id],
                  vocab_entries[i].first);
    text_of[id] = vocab_entries[i].first;
    origin[id] = Origin::Vocab;
  }
  for (const Added& a : added) {
    text_of[static_cast<size_t>(a.id)] = a.content;
    origin[static_cast<size_t>(a.id)] = Origin::Added;
  }
  refuse_holes(std::count_if(origin.begin(), origin.end(), [](Origin o) { return o != Origin::Hole; }));
  vocab.tokens.resize(static_cast<size_t>(size));
  vocab.types.assign(static_cast<size_t>(size), TokenType::Normal);
  for (size_t id = 0; id < static_cast<size_t>(size); ++id) {
    if (origin[id] != Origin::Hole) {
      vocab.tokens[id] = std::string(text_of[id]);
    } else {  // a hole in the ids: keep positions, as llama.cpp's converter does
      vocab.tokens[id] = fmt::format("[PAD{}]", id);
      vocab.types[id] = TokenType::Unused;
    }
  }
  // A token's id is its first; the vocab itself may not name one token twice (a JSON object with a repeated key,
  // which the streamed parse leaves to this reader).
  const TokenIndex id_of(vocab.tokens, RepeatedText::KeepFirstId, [&](int32_t first, int32_t repeat) {
    if (origin[static_cast<size_t>(first)] == Origin::Vocab && origin[static_cast<size_t>(repeat)] == Origin::Vocab)
      throw_error(ErrorKind::BadInput, "{}: duplicate vocab token '{}' (ids {} and {})", path,
                  vocab.tokens[static_cast<size_t>(first)], first, repeat);
  });
  auto find_id = [&](std::string_view token) { return id_of.find(token); };

  // Merges: "a b" strings (one space) or ["a", "b"] pairs; both halves and their concatenation must exist.
  // The first merge that makes each token (under find_id's id for its text): SentencePiece-BPE's scores.
  std::vector<size_t> first_merge_rank(vocab.tokens.size(), std::string::npos);
  if (model.contains("merges") && !model["merges"].is_null()) {
    array_member(model, "merges", path, "model");  // its elements are merge_entries
    vocab.merges.reserve(merge_entries.size());
    std::string merged;  // reused: one allocation for every merge
    for (size_t rank = 0; rank < merge_entries.size(); ++rank) {
      const json& merge = merge_entries[rank];
      std::string_view left, right;  // views into the parsed JSON
      if (merge.is_string()) {
        const std::string_view text = merge.get_ref<const std::string&>();
        const size_t space = text.find(' ');
        if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
          throw_error(ErrorKind::BadInput, "{}: merge {} ('{}') is not two tokens separated by one space", path,
                      rank, text);
        }
        left = text.substr(0, space);
        right = text.substr(space + 1);
      } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
        left = merge[0].get_ref<const std::string&>();
        right = merge[1].get_ref<const std::string&>();
        if (left.find(' ') != std::string::npos || right.find(' ') != std::string::npos) {
          throw_error(ErrorKind::Unsupported, "{}: merge {} has a token containing a space", path, rank);
        }
      } else {
        throw_error(ErrorKind::BadInput, "{}: merge {} is neither \"a b\" nor [\"a\", \"b\"]", path, rank);
      }
      merged.assign(left).append(right);
      const std::optional<int32_t> merged_id = find_id(merged);
      if (!find_id(left) || !find_id(right) || !merged_id) {
        throw_error(ErrorKind::BadInput, "{}: merge {} ('{} {}') uses or makes a token not in the vocab", path,
                    rank, left, right);
      }
      size_t& first = first_merge_rank[static_cast<size_t>(*merged_id)];
      if (first == std::string::npos) first = rank;
      std::string& stored = vocab.merges.emplace_back();
      stored.reserve(left.size() + 1 + right.size());
      stored.append(left).append(" ").append(right);
    }
  }
  vocab.byte_fallback = bool_member(model, "byte_fallback", false);
  vocab.ignore_merges = bool_member(model, "ignore_merges", false);
  vocab.fuse_unk = bool_member(model, "fuse_unk", false);
  if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() > 0.0) {
    throw_error(ErrorKind::Unsupported, "{}: BPE dropout is not supported", path);
  }
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (!string_member(model, affix, "").empty()) {
      throw_error(ErrorKind::Unsupported, "{}: BPE {} is not supported", path, affix);
    }
  }

  // Style: the pipeline as written, and the shorthand fields GGUF can carry.
  TokenizerPipeline pipeline;
  read_normalizer(root.value("normalizer", json()), path, pipeline);
  read_pre_tokenizer(root.value("pre_tokenizer", json()), path, pipeline);
  const auto& steps = pipeline.pre_tokenizers;
  const bool byte_level = !steps.empty() && steps.back().kind == PreTokenizerStep::Kind::ByteLevel;
  bool replaces_spaces = false, prepends = false;
  std::optional<MetaspacePrepend> metaspace;
  for (const NormalizerStep& n : pipeline.normalizers) {
    replaces_spaces |= n.kind == NormalizerStep::Kind::Replace && n.pattern == " ";
    prepends |= n.kind == NormalizerStep::Kind::Prepend;
  }
  for (const PreTokenizerStep& p : steps) {
    if (p.kind == PreTokenizerStep::Kind::Metaspace) metaspace = p.prepend;
  }
  if (byte_level) {
    if (replaces_spaces || metaspace || vocab.byte_fallback) {
      throw_error(ErrorKind::Unsupported, "{}: mixes byte-level and SentencePiece-style components", path);
    }
    vocab.kind = VocabKind::ByteLevelBpe;
    std::vector<PreTokenizerStep> named = steps;
    named.back().add_prefix_space = false;
    vocab.pre = llama_cpp_pre_name(named).value_or("default");
    if (steps.size() == 1 && steps[0].use_regex) {
      vocab.split_regex = kGpt2SplitRegex;
    } else if (steps.size() == 2 && steps[0].kind == PreTokenizerStep::Kind::Split && !steps[0].literal &&
               steps[0].behavior == SplitBehavior::Isolated && !steps[0].invert && !steps[1].use_regex) {
      vocab.split_regex = steps[0].pattern;
    }
    vocab.add_prefix_space = steps.back().add_prefix_space;
    vocab.prefix_scheme = PrefixScheme::IfMissing;
  } else if (replaces_spaces || metaspace) {
    vocab.kind = VocabKind::SentencePieceBpe;
    vocab.add_prefix_space = prepends || (metaspace && *metaspace != MetaspacePrepend::Never);
    vocab.prefix_scheme = prepends || !metaspace               ? PrefixScheme::Always
                          : *metaspace == MetaspacePrepend::First ? PrefixScheme::FirstIfMissing
                                                                  : PrefixScheme::IfMissing;
  } else {
    throw_error(ErrorKind::Unsupported,
                "{}: BPE tokenizer is neither SentencePiece-style (\"▁\" for spaces) nor byte-level", path);
  }
  vocab.pipeline = std::move(pipeline);

  // Token types.
  for (const Added& a : added) {
    vocab.types[static_cast<size_t>(a.id)] = a.special ? TokenType::Control : TokenType::UserDefined;
    if (a.normalized) vocab.normalized_added_ids.push_back(a.id);
  }
  if (vocab.kind == VocabKind::SentencePieceBpe) {
    for (size_t id = 0; id < vocab.tokens.size(); ++id) {
      if (vocab.types[id] == TokenType::Normal && is_byte_token(vocab.tokens[id])) vocab.types[id] = TokenType::Byte;
    }
  }
  if (const std::string unk = string_member(model, "unk_token", ""); !unk.empty()) {
    vocab.unk_id = find_id(unk);
    if (!vocab.unk_id) throw_error(ErrorKind::BadInput, "{}: unk_token '{}' is not in the vocab", path, unk);
  }

  // BOS/EOS: the post-processor's template, then tokenizer_config.json (which transformers lets override it).
  Template tmpl;
  read_post_processor(root.value("post_processor", json()), path, tmpl);
  auto template_id = [&](const std::optional<std::string>& token) -> std::optional<int32_t> {
    if (!token) return std::nullopt;
    const auto id = find_id(*token);
    if (!id) throw_error(ErrorKind::BadInput, "{}: post_processor token '{}' is not in the vocab", path, *token);
    return id;
  };
  if (const auto first = template_id(tmpl.first)) {
    vocab.bos_id = first;
    vocab.add_bos = true;
  }
  if (const auto last = template_id(tmpl.last)) {
    vocab.eos_id = last;
    vocab.add_eos = true;
  }
  if (!tokenizer_config_path.empty() && file_exists(tokenizer_config_path)) {
    const std::string& config_path = tokenizer_config_path;
    vocab.source_tokenizer_config_json = read_text_file(config_path);
    const json config = parse_json_strict(vocab.source_tokenizer_config_json, config_path);
    if (!config.is_object()) throw_error(ErrorKind::BadInput, "{}: not a JSON object", config_path);
    auto resolve = [&](const char* key, std::optional<int32_t>& slot) {
      const auto token = config_token(config, key);
      if (!token) return;
      if (const auto id = find_id(*token)) {
        slot = id;
      } else {
        spdlog::warn("{}: {} '{}' is not in the vocabulary; ignored", config_path, key, *token);
      }
    };
    resolve("bos_token", vocab.bos_id);
    resolve("eos_token", vocab.eos_id);
    if (!vocab.unk_id) resolve("unk_token", vocab.unk_id);
    resolve("pad_token", vocab.pad_id);
    vocab.add_bos = bool_member(config, "add_bos_token", vocab.add_bos);
    vocab.add_eos = bool_member(config, "add_eos_token", vocab.add_eos);
    if (config.contains("chat_template")) {
      const json& chat = config["chat_template"];
      if (chat.is_string()) {
        vocab.chat_template = chat.get<std::string>();
      } else if (chat.is_array()) {  // [{"name": ..., "template": ...}]: the "default" one, else the first
        for (const json& entry : chat) {
          const std::string name = string_member(entry, "name", "");
          if (vocab.chat_template.empty() || name == "default") {
            vocab.chat_template = string_member(entry, "template", vocab.chat_template);
          }
        }
      }
    }
    if (vocab.add_bos && !vocab.bos_id) {
      throw_error(ErrorKind::BadInput, "{}: add_bos_token is set but there is no bos_token", config_path);
    }
    if (vocab.add_eos && !vocab.eos_id) {
      throw_error(ErrorKind::BadInput, "{}: add_eos_token is set but there is no eos_token", config_path);
    }
  }
  if (vocab.unk_id && *vocab.unk_id != vocab.bos_id && *vocab.unk_id != vocab.eos_id) {
    vocab.types[static_cast<size_t>(*vocab.unk_id)] = TokenType::Unknown;
  }
  if (vocab.kind == VocabKind::SentencePieceBpe)
    vocab.scores = scores_from_merges(vocab, first_merge_rank, [&](std::string_view token) { return *find_id(token); });
  return vocab;
}

// ---------------------------------------------------------------------------------------------------------
// Writing: tokenizer.json / tokenizer_config.json for a Vocab that did not come from them (GGUF).

namespace {

ordered_json special_token_template(const Vocab& vocab) {
  ordered_json single = ordered_json::array();
  ordered_json pair = ordered_json::array();
  ordered_json specials = ordered_json::object();
  auto special = [&](int32_t id, int type_id) {
    const std::string& content = vocab.tokens.at(static_cast<size_t>(id));
    specials[content] = {{"id", content}, {"ids", {id}}, {"tokens", {content}}};
    return ordered_json{{"SpecialToken", {{"id", content}, {"type_id", type_id}}}};
  };
  auto sequence = [](const char* name, int type_id) {
    return ordered_json{{"Sequence", {{"id", name}, {"type_id", type_id}}}};
  };
  for (int type_id = 0; type_id < 2; ++type_id) {
    ordered_json& out = type_id == 0 ? single : pair;
    for (int part = 0; part <= type_id; ++part) {
      if (vocab.add_bos && vocab.bos_id) out.push_back(special(*vocab.bos_id, part));
      out.push_back(sequence(part == 0 ? "A" : "B", part));
      if (vocab.add_eos && vocab.eos_id) out.push_back(special(*vocab.eos_id, part));
    }
  }
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
}

ordered_json byte_level_component(bool add_prefix_space, bool trim_offsets, bool use_regex) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", add_prefix_space},
          {"trim_offsets", trim_offsets},
          {"use_regex", use_regex}};
}

std::string dump_json(const ordered_json& value, std::string_view what) {
  try {
    return value.dump(2) + "\n";
  } catch (const ordered_json::type_error& e) {
    throw_error(ErrorKind::BadInput, "{}: vocabulary is not valid UTF-8 text: {}", what, e.what());
  }
}

const char* behavior_name(SplitBehavior b) {
  switch (b) {
    case SplitBehavior::Removed: return "Removed";
    case SplitBehavior::Isolated: return "Isolated";
    case SplitBehavior::MergedWithPrevious: return "MergedWithPrevious";
    case SplitBehavior::MergedWithNext: return "MergedWithNext";
    case SplitBehavior::Contiguous: return "Contiguous";
  }
  return "Isolated";
}

ordered_json normalizer_json(const std::vector<NormalizerStep>& steps) {
  ordered_json list = ordered_json::array();
  for (const NormalizerStep& n : steps) {
    switch (n.kind) {
      case NormalizerStep::Kind::Prepend: list.push_back({{"type", "Prepend"}, {"prepend", n.content}}); break;
      case NormalizerStep::Kind::Replace:
        list.push_back({{"type", "Replace"}, {"pattern", {{"String", n.pattern}}}, {"content", n.content}});
        break;
      case NormalizerStep::Kind::Nfc: list.push_back({{"type", "NFC"}}); break;
      case NormalizerStep::Kind::Nfd: list.push_back({{"type", "NFD"}}); break;
      case NormalizerStep::Kind::Nfkc: list.push_back({{"type", "NFKC"}}); break;
      case NormalizerStep::Kind::Nfkd: list.push_back({{"type", "NFKD"}}); break;
    }
  }
  if (list.empty()) return nullptr;
  if (list.size() == 1) return list[0];
  return {{"type", "Sequence"}, {"normalizers", list}};
}

ordered_json pre_tokenizer_json(const std::vector<PreTokenizerStep>& steps) {
  ordered_json list = ordered_json::array();
  for (const PreTokenizerStep& p : steps) {
    switch (p.kind) {
      case PreTokenizerStep::Kind::Split:
        list.push_back({{"type", "Split"},
                        {"pattern", {{p.literal ? "String" : "Regex", p.pattern}}},
                        {"behavior", behavior_name(p.behavior)},
                        {"invert", p.invert}});
        break;
      case PreTokenizerStep::Kind::Digits:
        list.push_back({{"type", "Digits"}, {"individual_digits", p.individual_digits}});
        break;
      case PreTokenizerStep::Kind::Metaspace:
        list.push_back({{"type", "Metaspace"},
                        {"replacement", p.replacement},
                        {"prepend_scheme", p.prepend == MetaspacePrepend::Always  ? "always"
                                           : p.prepend == MetaspacePrepend::First ? "first"
                                                                                  : "never"},
                        {"split", p.split}});
        break;
      case PreTokenizerStep::Kind::ByteLevel:
        list.push_back(byte_level_component(p.add_prefix_space, true, p.use_regex));
        break;
    }
  }
  if (list.empty()) return nullptr;
  if (list.size() == 1) return list[0];
  return {{"type", "Sequence"}, {"pretokenizers", list}};
}

}  // namespace

std::string hf_pipeline::to_json(const TokenizerPipeline& pipeline) {
  const ordered_json j = {{"normalizer", normalizer_json(pipeline.normalizers)},
                          {"pre_tokenizer", pre_tokenizer_json(pipeline.pre_tokenizers)}};
  return j.dump();
}

TokenizerPipeline hf_pipeline::from_json(const std::string& text, const std::string& context) {
  const json j = parse_json_strict(text, context);
  if (!j.is_object()) throw_error(ErrorKind::BadInput, "{}: tokenizer pipeline is not a JSON object", context);
  TokenizerPipeline pipeline;
  read_normalizer(j.value("normalizer", json()), context, pipeline);
  read_pre_tokenizer(j.value("pre_tokenizer", json()), context, pipeline);
  return pipeline;
}

std::string hf_tokenizer_json(const Vocab& vocab) {
  if (!vocab.source_tokenizer_json.empty()) return vocab.source_tokenizer_json;
  const bool sentencepiece = vocab.kind == VocabKind::SentencePieceBpe;
  if (!sentencepiece && vocab.kind != VocabKind::ByteLevelBpe) {
    throw_error(ErrorKind::Unsupported, "tokenizer.json: vocabulary kind has no tokenizer.json form");
  }
  const std::unordered_set<int32_t> normalized(vocab.normalized_added_ids.begin(), vocab.normalized_added_ids.end());
  const std::unordered_set<int32_t> lstrip(vocab.lstrip_added_ids.begin(), vocab.lstrip_added_ids.end());
  const std::unordered_set<int32_t> rstrip(vocab.rstrip_added_ids.begin(), vocab.rstrip_added_ids.end());
  auto type_of = [&](size_t id) { return id < vocab.types.size() ? vocab.types[id] : TokenType::Normal; };

  ordered_json added = ordered_json::array();
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    const TokenType type = type_of(id);
    if (type != TokenType::Control && type != TokenType::UserDefined && type != TokenType::Unknown) continue;
    added.push_back({{"id", id},
                     {"content", vocab.tokens[id]},
                     {"single_word", false},
                     {"lstrip", lstrip.count(static_cast<int32_t>(id)) > 0},
                     {"rstrip", rstrip.count(static_cast<int32_t>(id)) > 0},
                     {"normalized", normalized.count(static_cast<int32_t>(id)) > 0},
                     {"special", type != TokenType::UserDefined}});
  }

  ordered_json root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  root["added_tokens"] = added;
  const bool template_needed = (vocab.add_bos && vocab.bos_id) || (vocab.add_eos && vocab.eos_id);
  const TokenizerPipeline pipeline = effective_pipeline(vocab);
  root["normalizer"] = normalizer_json(pipeline.normalizers);
  root["pre_tokenizer"] = pre_tokenizer_json(pipeline.pre_tokenizers);
  if (sentencepiece) {
    root["post_processor"] = template_needed ? special_token_template(vocab) : ordered_json(nullptr);
    std::string space = std::string(kMetaspace);
    bool prefixed = false;
    for (const NormalizerStep& n : pipeline.normalizers) {
      if (n.kind == NormalizerStep::Kind::Replace && n.pattern == " ") space = n.content;
      prefixed |= n.kind == NormalizerStep::Kind::Prepend;
    }
    for (const PreTokenizerStep& p : pipeline.pre_tokenizers) {
      if (p.kind != PreTokenizerStep::Kind::Metaspace) continue;
      space = p.replacement;
      prefixed |= p.prepend != MetaspacePrepend::Never;
    }
    ordered_json decoders = ordered_json::array();
    decoders.push_back({{"type", "Replace"}, {"pattern", {{"String", space}}}, {"content", " "}});
    decoders.push_back({{"type", "ByteFallback"}});
    decoders.push_back({{"type", "Fuse"}});
    if (prefixed) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    root["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
  } else {
    const ordered_json byte_level_post = byte_level_component(true, false, true);
    root["post_processor"] = template_needed
                                 ? ordered_json{{"type", "Sequence"},
                                                {"processors", {byte_level_post, special_token_template(vocab)}}}
                                 : byte_level_post;
    root["decoder"] = byte_level_component(true, true, true);
  }

  ordered_json model;
  model["type"] = "BPE";
  model["dropout"] = nullptr;
  model["unk_token"] = vocab.unk_id ? ordered_json(vocab.tokens.at(static_cast<size_t>(*vocab.unk_id)))
                                    : ordered_json(nullptr);
  model["continuing_subword_prefix"] = nullptr;
  model["end_of_word_suffix"] = nullptr;
  model["fuse_unk"] = sentencepiece && vocab.fuse_unk;
  model["byte_fallback"] = sentencepiece && vocab.byte_fallback;
  model["ignore_merges"] = vocab.ignore_merges;
  ordered_json tokens = ordered_json::object();
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    if (tokens.contains(vocab.tokens[id])) {
      spdlog::warn("tokenizer.json: token {} repeats the text of an earlier token; HF keeps the first", id);
      continue;
    }
    tokens[vocab.tokens[id]] = id;
  }
  model["vocab"] = tokens;
  const std::vector<std::string> merges =
      vocab.merges.empty() && sentencepiece ? merges_from_scores(vocab) : vocab.merges;
  model["merges"] = merges;
  root["model"] = model;
  return dump_json(root, "tokenizer.json");
}

std::string hf_tokenizer_config_json(const Vocab& vocab) {
  if (!vocab.source_tokenizer_config_json.empty()) return vocab.source_tokenizer_config_json;
  ordered_json config;
  config["add_bos_token"] = vocab.add_bos;
  config["add_eos_token"] = vocab.add_eos;
  auto token = [&](const char* key, const std::optional<int32_t>& id) {
    if (id && *id >= 0 && *id < vocab.size()) config[key] = vocab.tokens[static_cast<size_t>(*id)];
  };
  token("bos_token", vocab.bos_id);
  token("eos_token", vocab.eos_id);
  token("unk_token", vocab.unk_id);
  token("pad_token", vocab.pad_id);
  config["clean_up_tokenization_spaces"] = false;
  // The generic fast tokenizer runs tokenizer.json exactly as written (BOS/EOS come from its post-processor).
  config["tokenizer_class"] = "PreTrainedTokenizerFast";
  if (!vocab.chat_template.empty()) config["chat_template"] = vocab.chat_template;
  return dump_json(config, "tokenizer_config.json");
}

}  // namespace slmopt
