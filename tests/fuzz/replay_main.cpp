// slmopt_fuzz_replay TARGET PATH...: runs every file under the paths (folders recursively, in name order) through
// one harness once, as libFuzzer would, and fails naming the input when one ends in anything but a clean
// slmopt::Error. The ordinary build's regression test for every saved fuzz input.
#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <typeinfo>
#include <vector>

#include "fuzz_target.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc < 3 || slmopt::fuzz::targets().count(argv[1]) == 0) {
    std::cerr << "usage: slmopt_fuzz_replay TARGET CORPUS_DIR_OR_FILE...\ntargets:";
    for (const auto& [name, fn] : slmopt::fuzz::targets()) std::cerr << ' ' << name;
    std::cerr << '\n';
    return 2;
  }
  const auto target = slmopt::fuzz::targets().at(argv[1]);
  std::vector<fs::path> inputs;
  for (int i = 2; i < argc; ++i) {
    if (fs::is_directory(argv[i])) {
      for (const auto& entry : fs::recursive_directory_iterator(argv[i]))
        if (entry.is_regular_file()) inputs.push_back(entry.path());
    } else {
      inputs.emplace_back(argv[i]);
    }
  }
  std::sort(inputs.begin(), inputs.end());
  if (inputs.empty()) {
    std::cerr << "no inputs to replay\n";
    return 1;
  }
  int failed = 0;
  for (const auto& path : inputs) {
    std::ifstream in(path, std::ios::binary);
    const std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    try {
      target(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    } catch (const std::exception& e) {
      std::cerr << path.string() << ": escaped as " << typeid(e).name() << ": " << e.what() << '\n';
      ++failed;
    }
  }
  std::cout << inputs.size() - static_cast<size_t>(failed) << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}
