#include "json_strict.h"

#include <set>
#include <vector>

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"

namespace slmopt {

nlohmann::json parse_json_strict(std::string_view text, const std::string& source, const char* top_level_key) {
  using nlohmann::json;
  // One set of seen keys per open object. The callback records the first duplicate instead of throwing, so
  // no exception has to cross nlohmann's parser.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  bool duplicate_at_top = false;
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
      case json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        last_key = parsed.get<std::string>();
        if (!open_objects.empty() && duplicate.empty() && !open_objects.back().insert(parsed.get<std::string>()).second) {
          duplicate = parsed.get<std::string>();
          duplicate_at_top = depth == 1;
        }
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
  if (!duplicate.empty())
    throw_error(ErrorKind::BadInput, "{}: duplicate {} '{}'", source, duplicate_at_top ? top_level_key : "key",
                duplicate);
  return result;
}

nlohmann::json read_json_file_strict(const std::string& path) { return parse_json_strict(read_text_file(path), path); }

}  // namespace slmopt
