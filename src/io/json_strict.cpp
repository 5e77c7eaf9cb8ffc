#include "json_strict.h"

#include <algorithm>
#include <utility>

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"

namespace slmopt {

namespace {

using nlohmann::json;

// nlohmann's SAX interface, building the DOM as nlohmann's own parser does, with the checks that parser lacks made
// as each event arrives: a repeated key fails when it is read (nlohmann would keep one of the two), a container
// past kMaxJsonDepth fails before it exists, and parse errors become slmopt errors naming the source. Members
// listed as streamed are not stored: their elements go to the member's taker as they complete.
class StrictDomBuilder {
 public:
  StrictDomBuilder(const std::string& source, const char* top_level_key,
                   const std::vector<JsonStreamedMember>& streamed)
      : source_(source), top_level_key_(top_level_key), streamed_(streamed) {
    open_.reserve(kMaxJsonDepth);
    for (const JsonStreamedMember& member : streamed_)
      max_streamed_depth_ = std::max(max_streamed_depth_, member.path.size());
  }

  json take_result() { return std::move(root_); }

  bool null() { return put(json(nullptr)); }
  bool boolean(bool value) { return put(json(value)); }
  bool number_integer(json::number_integer_t value) { return put(json(value)); }
  bool number_unsigned(json::number_unsigned_t value) { return put(json(value)); }
  bool number_float(json::number_float_t value, const std::string& /*text*/) { return put(json(value)); }
  // The lexer clears its token buffer before the next token, so the text can be moved out.
  bool string(std::string& value) { return put(json(std::move(value))); }
  bool binary(json::binary_t& value) { return put(json(std::move(value))); }  // not produced by JSON text

  bool start_object(std::size_t /*unknown*/) { return open(json::value_t::object); }
  bool start_array(std::size_t /*unknown*/) { return open(json::value_t::array); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(std::string& key) {
    last_key_ = std::move(key);
    Container& top = open_.back();
    if (top.stream != nullptr) {
      stream_key_.assign(last_key_);
      return true;
    }
    auto [member, inserted] = top.value->get_ref<json::object_t&>().emplace(last_key_, nullptr);
    if (!inserted)
      throw_error(ErrorKind::BadInput, "{}: duplicate {} '{}'", source_, open_.size() == 1 ? top_level_key_ : "key",
                  last_key_);
    member_ = &member->second;
    return true;
  }

  bool parse_error(std::size_t /*position*/, const std::string& /*token*/, const json::exception& e) {
    // 1e400 and the like (out_of_range 406): a number no double holds, named by its field, since that is what a
    // user must fix.
    if (dynamic_cast<const json::out_of_range*>(&e) != nullptr)
      throw_error(ErrorKind::BadInput, "{}: the value of '{}' is a number out of range ({})", source_, last_key_,
                  e.what());
    throw_error(ErrorKind::BadInput, "{}: invalid JSON: {}", source_, e.what());
  }

 private:
  struct Container {
    json* value;                              // where its members go; the empty member itself when streamed
    const JsonStreamedMember* stream;         // non-null: members go to stream->take instead
    bool streamed_element;                    // a direct element of a streamed member: handed over when closed
    bool keyed;                               // a member of an object (the key is in `key`)
    std::string key;                          // only for containers on a streamed member's path
  };

  // Places a finished scalar, or a new empty container; returns where it lives (null once handed to a taker).
  json* place(json&& value) {
    if (open_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    Container& top = open_.back();
    if (top.stream != nullptr) {
      if (value.is_structured()) {  // built in element_ and handed over when it closes
        element_ = std::move(value);
        return &element_;
      }
      hand_over(top, std::move(value));
      return nullptr;
    }
    if (top.value->is_array()) {
      json::array_t& array = top.value->get_ref<json::array_t&>();
      array.push_back(std::move(value));
      return &array.back();
    }
    *member_ = std::move(value);
    return member_;
  }

  bool put(json&& value) {
    place(std::move(value));
    return true;
  }

  void hand_over(const Container& streamed_member, json&& element) {
    const bool keyed = streamed_member.value->is_object();
    streamed_member.stream->take(keyed ? std::string_view(stream_key_) : std::string_view(), std::move(element));
  }

  // The streamed member this new container is, if any: its keys from the outermost object are the member's path.
  const JsonStreamedMember* streamed_member_opening() const {
    if (streamed_.empty() || open_.empty() || !open_.back().value->is_object()) return nullptr;
    for (const JsonStreamedMember& member : streamed_) {
      if (member.path.size() != open_.size() || member.path.back() != last_key_) continue;
      bool on_path = true;
      for (size_t level = 1; level < open_.size() && on_path; ++level)
        on_path = open_[level].keyed && open_[level].key == member.path[level - 1];
      if (on_path) return &member;
    }
    return nullptr;
  }

  bool open(json::value_t type) {
    // nlohmann parses iteratively, but copying, dumping and our readers recurse over the value: refuse deep
    // nesting here, before any value exists.
    if (open_.size() >= static_cast<size_t>(kMaxJsonDepth))
      throw_error(ErrorKind::BadInput, "{}: JSON nesting deeper than {} levels", source_, kMaxJsonDepth);
    const bool in_stream = !open_.empty() && open_.back().stream != nullptr;
    const bool keyed = !open_.empty() && open_.back().value->is_object();
    const JsonStreamedMember* stream = streamed_member_opening();
    json* value = place(json(type));
    Container container{value, stream, in_stream, keyed, {}};
    // Only containers that a streamed path can run through keep their key (a streamed path is short).
    if (keyed && !in_stream && open_.size() < max_streamed_depth_) container.key = last_key_;
    open_.push_back(std::move(container));
    return true;
  }

  bool close() {
    const bool hand = open_.back().streamed_element;
    open_.pop_back();
    if (hand) hand_over(open_.back(), std::move(element_));
    return true;
  }

  const std::string& source_;
  const char* top_level_key_;
  const std::vector<JsonStreamedMember>& streamed_;
  size_t max_streamed_depth_ = 0;  // the longest streamed path: containers deeper than it keep no key
  json root_;
  std::vector<Container> open_;
  json* member_ = nullptr;   // the slot of the object member whose key was read last
  json element_;             // a streamed member's element being built
  std::string last_key_;     // the most recent key at any level (for the out-of-range message)
  std::string stream_key_;   // the key of the streamed member's element being read
};

}  // namespace

json parse_json_strict(std::string_view text, const std::string& source, const char* top_level_key,
                       const std::vector<JsonStreamedMember>& streamed) {
  StrictDomBuilder builder(source, top_level_key, streamed);
  json::sax_parse(text.begin(), text.end(), &builder);
  return builder.take_result();
}

json read_json_file_strict(const std::string& path) { return parse_json_strict(read_text_file(path), path); }

}  // namespace slmopt
