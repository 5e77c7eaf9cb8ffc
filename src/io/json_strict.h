// JSON parsing for the files slmopt reads (safetensors headers, config.json, index files, tokenizer.json): a
// syntax error, a duplicate key or nesting deeper than kMaxJsonDepth is an Error(BadInput) naming the source.
// nlohmann::json silently keeps one of two equal keys, which would let a checkpoint carry two different tensors
// under one name; the parser refuses the second as it arrives.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace slmopt {

// Deeper values are refused while parsing: no file slmopt reads nests anywhere near this (tokenizer.json's
// normalizer sequences are the deepest, < 10), and every consumer of a value may recurse over it. The outermost
// value is level 1: kMaxJsonDepth nested arrays parse, one more is refused.
inline constexpr int kMaxJsonDepth = 64;

// A member whose elements are handed over one by one as they are parsed instead of being stored: a vocabulary
// of 262k tokens costs a tree node, a rebalance and a later walk per token as a DOM object. `path` names the
// member by its keys from the outermost object ({"model", "vocab"}). `take` receives each element (with its key
// for an object, an empty key for an array) in file order. The member stays in the result as an empty object or
// array, so readers still check that it is there and of the right type. Keys repeated inside a streamed object
// are the taker's to find.
struct JsonStreamedMember {
  std::vector<std::string> path;
  std::function<void(std::string_view key, nlohmann::json&& element)> take;
};

// `top_level_key` names what a key of the outermost object is ("tensor" in a safetensors header), so that the
// duplicate error reads "duplicate tensor 'x'" there and "duplicate key 'x'" deeper down.
nlohmann::json parse_json_strict(std::string_view text, const std::string& source, const char* top_level_key = "key",
                                 const std::vector<JsonStreamedMember>& streamed = {});

// Reads a small JSON file with parse_json_strict; Error(Io) when it cannot be read.
nlohmann::json read_json_file_strict(const std::string& path);

}  // namespace slmopt
