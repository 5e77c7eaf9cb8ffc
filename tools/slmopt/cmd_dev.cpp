// slmopt dev …: developer tools, hidden from --help. `dev random-checkpoint` writes a Hugging Face folder with
// random weights for any config.json slmopt reads — the family fixtures of the tests and the real-shape checkpoints
// of the scale benchmarks (no model hub is reachable, so these stand in for real checkpoints). `dev man` and
// `dev completion bash|zsh` print the man page and completions the build installs (cli_docs.h).
#include <cstdio>

#include "cli_docs.h"
#include "commands.h"
#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf.h"
#include "slmopt/io/hf_tokenizer.h"
#include "slmopt/ir/random_weights.h"

namespace slmopt::driver {
namespace {

struct RandomCheckpointOptions {
  std::string config_path;
  std::string output;
  std::string dtype = "bf16";
  uint64_t seed = 0;
  std::string tokenizer_dir;
};

void write_random_checkpoint(const RandomCheckpointOptions& o) {
  const Config config = parse_hf_config(read_text_file(o.config_path), o.config_path);
  const auto dtype = dtype_from_name(o.dtype);
  if (!dtype || !(*dtype == DType::F32 || *dtype == DType::F16 || *dtype == DType::BF16))
    throw_error(ErrorKind::Usage, "--dtype must be f32, f16 or bf16, not '{}'", o.dtype);
  Model model = random_model(config, *dtype, o.seed);
  model.config.name = config.name.empty() ? "random-" + config.family : config.name;
  if (!o.tokenizer_dir.empty()) {
    const std::string tokenizer = o.tokenizer_dir + "/tokenizer.json";
    model.vocab = load_hf_vocab(tokenizer, o.tokenizer_dir + "/tokenizer_config.json");
    if (static_cast<int64_t>(model.vocab.size()) > config.vocab_size)
      throw_error(ErrorKind::Usage, "{}: the tokenizer has {} tokens, more than the config's vocab_size {}", tokenizer,
                  model.vocab.size(), config.vocab_size);
  }
  write_hf_model(model, o.output, {.float_type = *dtype});
  std::printf("%s: %s, %lld parameters (%s, seed %llu)\n", o.output.c_str(), config.architecture.c_str(),
              static_cast<long long>(model.parameter_count()), o.dtype.c_str(),
              static_cast<unsigned long long>(o.seed));
}

}  // namespace

CommandSpec dev_command() {
  return {"dev", "Developer tools (fixtures for tests and benchmarks)",
          [](CLI::App& sub, const GlobalOptions&) -> std::function<void()> {
            sub.group("");  // hidden from `slmopt --help`
            sub.require_subcommand(1);
            auto o = std::make_shared<RandomCheckpointOptions>();
            CLI::App* random = sub.add_subcommand(
                "random-checkpoint",
                "Write a Hugging Face folder with deterministic random weights for CONFIG (a config.json of any "
                "family slmopt reads); values depend only on --seed and the tensor names");
            random->add_option("CONFIG", o->config_path, "config.json to instantiate")->required();
            random->add_option("-o,--output", o->output, "Output folder")->required();
            random->add_option("--dtype", o->dtype, "Stored float type: f32, f16 or bf16 (default bf16)");
            random->add_option("--seed", o->seed, "Random seed (default 0)");
            random->add_option("--tokenizer", o->tokenizer_dir,
                               "Folder whose tokenizer.json (+ tokenizer_config.json) the checkpoint carries");
            // The man page and completions walk the whole command tree (the root app), read at run time.
            CLI::App* root = sub.get_parent();
            auto doc = std::make_shared<std::string>();
            sub.add_subcommand("man", "Print the slmopt(1) man page (roff), generated from the command tables")
                ->callback([doc] { *doc = "man"; });
            auto shell = std::make_shared<std::string>();
            CLI::App* completion =
                sub.add_subcommand("completion", "Print a shell completion script generated from the command tables");
            completion->add_option("SHELL", *shell, "bash or zsh")->required();
            completion->callback([doc] { *doc = "completion"; });
            return [o, root, doc, shell] {
              if (*doc == "man") {
                std::fputs(man_page(*root).c_str(), stdout);
                return;
              }
              if (*doc == "completion") {
                if (*shell == "bash") std::fputs(bash_completion(*root).c_str(), stdout);
                else if (*shell == "zsh") std::fputs(zsh_completion(*root).c_str(), stdout);
                else throw_error(ErrorKind::Usage, "completion: SHELL '{}': choose bash or zsh", *shell);
                return;
              }
              require_path("CONFIG", o->config_path);
              if (!o->tokenizer_dir.empty()) require_path("--tokenizer", o->tokenizer_dir);
              write_random_checkpoint(*o);
            };
          }};
}

}  // namespace slmopt::driver
