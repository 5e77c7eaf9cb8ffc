#include "json_strict.h"

#include <set>
#include <vector>

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"

namespace slmopt {

namespace {

struct DuplicateKey {
  std::string key;
  bool at_top = false;
};

// The first key that repeats within one object, and whether that object is the outermost. Only called once a
// repeat is known to exist (the error path): it keeps a set of every key of every open object.
DuplicateKey find_duplicate_key(std::string_view text) {
  using nlohmann::json;
  std::vector<std::set<std::string>> open_objects;
  DuplicateKey found;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxJsonDepth) return false;
    switch (event) {
      case json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (!open_objects.empty() && found.key.empty() && !open_objects.back().insert(key).second)
          found = {key, depth == 1};
        break;
      }
      default: break;
    }
    return true;
  };
  [[maybe_unused]] const json parsed = json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/false);
  return found;
}

}  // namespace

nlohmann::json parse_json_strict(std::string_view text, const std::string& source, const char* top_level_key) {
  using nlohmann::json;
  // Keys read per open object: nlohmann keeps one of two equal keys, so an object that ends with fewer members
  // than keys repeated one. Counting costs nothing per key; a set of every key (what find_duplicate_key keeps
  // to name the repeat) was a fifth of loading a tokenizer.json. The callback records instead of throwing, so
  // no exception has to cross nlohmann's parser.
  std::vector<size_t> keys_per_object;
  bool has_duplicate = false;
  bool too_deep = false;
  std::string last_key;  // the field a number that overflows belongs to (the parser throws before its value event)
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    // nlohmann parses iteratively, but copying, dumping and our readers recurse over the value: refuse deep
    // nesting here, before any value exists (returning false discards what the parser would build).
    if (depth > kMaxJsonDepth) {
      too_deep = true;
      return false;
    }
    switch (event) {
      case json::parse_event_t::object_start: keys_per_object.push_back(0); break;
      case json::parse_event_t::object_end:
        if (!keys_per_object.empty()) {
          if (keys_per_object.back() != parsed.size()) has_duplicate = true;
          keys_per_object.pop_back();
        }
        break;
      case json::parse_event_t::key:
        last_key.assign(parsed.get_ref<const std::string&>());
        if (!keys_per_object.empty()) ++keys_per_object.back();
        break;
      default: break;
    }
    return true;
  };
  json result;
  try {
    result = json::parse(text.begin(), text.end(), callback);
  } catch (const json::out_of_range& e) {
    // 1e400 and the like: a number no double holds. Named by its field, since that is what a user must fix.
    throw_error(ErrorKind::BadInput, "{}: the value of '{}' is a number out of range ({})", source, last_key, e.what());
  } catch (const json::exception& e) {
    throw_error(ErrorKind::BadInput, "{}: invalid JSON: {}", source, e.what());
  }
  if (too_deep)
    throw_error(ErrorKind::BadInput, "{}: JSON nesting deeper than {} levels", source, kMaxJsonDepth);
  if (has_duplicate) {
    const DuplicateKey duplicate = find_duplicate_key(text);
    throw_error(ErrorKind::BadInput, "{}: duplicate {} '{}'", source, duplicate.at_top ? top_level_key : "key",
                duplicate.key);
  }
  return result;
}

nlohmann::json read_json_file_strict(const std::string& path) { return parse_json_strict(read_text_file(path), path); }

}  // namespace slmopt
