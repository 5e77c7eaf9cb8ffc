// Helpers shared by unit tests: paths to the bundled models and texts, scratch folders.
#pragma once

#include <string>

namespace slmopt::testing {

// <repo>/models/<relative>
std::string model_path(const std::string& relative);
// <repo>/models/data/<file>
std::string data_path(const std::string& file);
// A fresh, empty folder under the system temp dir, unique to this test process and name.
std::string scratch_dir(const std::string& name);

}  // namespace slmopt::testing
