// "Did you mean" for the command line: the closest known spelling of a mistyped subcommand or option, found by
// edit distance (a typo, a missing or extra letter, a swapped pair).
#pragma once

#include <string>
#include <vector>

namespace slmopt::driver {

// Optimal-string-alignment distance (insertions, deletions, substitutions, adjacent transpositions).
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `word` within a distance of max(2, |word| / 3), or "" when none is that close. A
// candidate that starts with `word` (an abbreviation) also counts.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace slmopt::driver
