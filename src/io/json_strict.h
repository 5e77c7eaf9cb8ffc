// JSON parsing for the files slmopt reads (safetensors headers, config.json, index files): a syntax error, a
// duplicate key or nesting deeper than kMaxJsonDepth is an Error(BadInput) naming the source. nlohmann::json
// silently keeps one of two equal keys, which would let a checkpoint carry two different tensors under one name;
// the parser callback catches them.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace slmopt {

// Deeper values are refused while parsing: no file slmopt reads nests anywhere near this (tokenizer.json's
// normalizer sequences are the deepest, < 10), and every consumer of a value may recurse over it.
inline constexpr int kMaxJsonDepth = 64;

// `top_level_key` names what a key of the outermost object is ("tensor" in a safetensors header), so that the
// duplicate error reads "duplicate tensor 'x'" there and "duplicate key 'x'" deeper down.
nlohmann::json parse_json_strict(std::string_view text, const std::string& source,
                                 const char* top_level_key = "key");

// Reads a small JSON file with parse_json_strict; Error(Io) when it cannot be read.
nlohmann::json read_json_file_strict(const std::string& path);

}  // namespace slmopt
