// Student construction by layer selection: a full prune plan restricted to the chosen layers, so the cut and
// the renumbering are exactly apply_prune_plan's.
#include "slmopt/distill/student.h"

#include <algorithm>
#include <charconv>

#include "slmopt/core/error.h"
#include "slmopt/prune/structured.h"

namespace slmopt {

Model select_student_layers(const Model& source, std::span<const int64_t> layers) {
  if (layers.empty()) throw_error(ErrorKind::Usage, "the student needs at least one layer");
  const PrunePlan full = full_plan(source.config);
  PrunePlan plan;
  for (size_t i = 0; i < layers.size(); ++i) {
    const int64_t l = layers[i];
    if (l < 0 || l >= source.config.num_layers)
      throw_error(ErrorKind::Usage, "student layer {} is out of range (the model has {} layers)", l,
                  source.config.num_layers);
    if (i > 0 && l <= layers[i - 1])
      throw_error(ErrorKind::Usage, "student layers must be ascending and distinct (got {} after {})", l,
                  layers[i - 1]);
    plan.layers.push_back(full.layers[static_cast<size_t>(l)]);
  }
  Model student = source;
  apply_prune_plan(student, plan);
  return student;
}

std::vector<int64_t> parse_layer_list(std::string_view text, int64_t layer_count) {
  auto fail = [&](std::string_view why) {
    throw_error(ErrorKind::Usage, "layer list '{}': {} (expected e.g. 0,2 or 0-3,6 with layers 0..{})", text, why,
                layer_count - 1);
  };
  auto number = [&](std::string_view s) {
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) fail("not a number");
    if (v < 0 || v >= layer_count) fail("index out of range");
    return v;
  };
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(layer_count, 0)), false);
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string_view item = text.substr(pos, comma - pos);
    const size_t dash = item.find('-');
    const int64_t first = number(item.substr(0, dash));
    const int64_t last = dash == std::string_view::npos ? first : number(item.substr(dash + 1));
    if (last < first) fail("a descending range");
    for (int64_t l = first; l <= last; ++l) {
      if (seen[static_cast<size_t>(l)]) fail("a repeated layer");
      seen[static_cast<size_t>(l)] = true;
    }
    pos = comma + 1;
  }
  std::vector<int64_t> out;
  for (size_t l = 0; l < seen.size(); ++l)
    if (seen[l]) out.push_back(static_cast<int64_t>(l));
  return out;
}

}  // namespace slmopt
