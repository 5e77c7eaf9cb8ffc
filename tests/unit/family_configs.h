// The family test configs (tests/families/<folder>/config.json: each family's real keys at shrunk sizes), read
// by the Hugging Face config loader: the one source of the per-family descriptions the tests run on, so a test
// never keeps its own copy of a family's shape. Header-only; used by unit and consumer tests.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf.h"
#include "slmopt/ir/config.h"
#include "source_dir.h"

namespace slmopt::testing {

inline std::string families_dir() {
  return source_dir() + "/tests/families";
}

inline std::string family_config_path(const std::string& folder) {
  return families_dir() + "/" + folder + "/config.json";
}

// Every folder of tests/families holding a config.json, sorted.
inline std::vector<std::string> family_folders() {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(families_dir()))
    if (std::filesystem::exists(entry.path() / "config.json")) out.push_back(entry.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

inline Config family_config(const std::string& folder) {
  const std::string path = family_config_path(folder);
  return parse_hf_config(read_text_file(path), path);
}

// A folder name as a GoogleTest parameter name ("phi3.5-mini" → "phi3_5_mini").
inline std::string family_test_name(std::string folder) {
  for (char& ch : folder)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return folder;
}

}  // namespace slmopt::testing
