// SHA-256 of files and folders, for the manifest (core/sha256.h holds the hash itself).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "slmopt/core/sha256.h"

namespace slmopt::pipeline {

using slmopt::sha256_of_file;
// A file: {"sha256", "bytes"}. A folder: every regular file below it, sorted by relative path, as
// {"files": [{"path", "sha256", "bytes"}...], "bytes": sum, "sha256": hash of the "HASH  PATH\n" lines (the
// `sha256sum` listing, so `cd DIR && sha256sum -c` checks it)}.
nlohmann::json hash_path(const std::string& path);

}  // namespace slmopt::pipeline
