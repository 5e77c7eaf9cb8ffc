// What the tokenizer cross-checks share: the real tokenizer files (bundled in models/tokenizers, or in the
// project's shared folder for the ones whose licence keeps them out of the repository), the texts they are
// compared on, and llama.cpp's .inp format.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "slmopt/core/mapped_file.h"
#include "test_support.h"

namespace slmopt::testing {

// The texts of a llama.cpp NAME.gguf.inp file, split as test-tokenizer-0 splits them.
inline std::vector<std::string> read_llama_cpp_inp(const std::string& path) {
  const std::string raw = read_text_file(path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(raw.substr(pos));
      break;
    }
    texts.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  return texts;
}

inline std::string ids_to_string(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s + "]";
}

// The project's shared tokenizer folder (shared/tokenizers beside the checkout or beside its parent, or
// $SLMOPT_SHARED_DIR/tokenizers); "" when there is none.
inline std::string shared_tokenizers_dir() {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("SLMOPT_SHARED_DIR")) candidates.push_back(fs::path(env) / "tokenizers");
  const fs::path source = fs::path(model_path("")).parent_path().parent_path();
  candidates.push_back(source.parent_path() / "shared" / "tokenizers");
  candidates.push_back(source.parent_path().parent_path() / "shared" / "tokenizers");
  for (const fs::path& c : candidates) {
    std::error_code ec;
    if (fs::is_directory(c, ec)) return c.string();
  }
  return "";
}

struct TokenizerFolder {
  std::string name;
  std::string dir;  // "" when the folder is missing (only for shared ones)
  bool shared;      // not bundled: it lives in the shared folder
};

// Every tokenizer.json the tokenizer tests cover: bundled ones (MIT) and shared-only ones.
inline std::vector<TokenizerFolder> tokenizer_folders() {
  std::vector<TokenizerFolder> out;
  for (const char* name : {"llama2", "gpt2", "phi2", "smollm"}) out.push_back({name, model_path("tokenizers/") + name, false});
  const std::string shared = shared_tokenizers_dir();
  for (const char* name : {"mistral", "gemma3"}) {
    const std::string dir = shared.empty() ? "" : shared + "/" + name;
    out.push_back({name, std::filesystem::exists(dir + "/tokenizer.json") ? dir : "", true});
  }
  return out;
}

// The texts of the cross-checks: every line (without its "\n") of each bundled text file, then the 46 texts of
// llama.cpp's .inp. (Whole files as one text are left to the bundled-model suites: a SentencePiece-style file
// is one BPE word, which the JavaScript reference takes minutes over.)
inline std::vector<std::string> cross_check_texts() {
  std::vector<std::string> texts;
  for (const char* file : {"tinystories-eval.txt", "kjv-eval.txt", "tinystories-calib.txt", "kjv-calib.txt"}) {
    std::istringstream lines(read_text_file(data_path(file)));
    for (std::string line; std::getline(lines, line);) texts.push_back(line);
  }
  for (std::string& t : read_llama_cpp_inp(model_path("tokenizers/llamacpp/ggml-vocab-gpt-2.gguf.inp")))
    texts.push_back(std::move(t));
  return texts;
}

}  // namespace slmopt::testing
