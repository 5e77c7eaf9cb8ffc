// slmopt tokenize MODEL (--text STRING | --file FILE) [--special] [--json]: the model's own tokenizer on a
// string — ids and pieces — so a user can see how a model (or a converted artifact) splits text.
#include <cstdio>

#include "commands.h"
#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/pipeline/stage_report.h"
#include "slmopt/text/tokenizer.h"

namespace slmopt::driver {

CommandSpec tokenize_command() {
  return {"tokenize", "Token ids and pieces of a text under a model's tokenizer",
          [](CLI::App& sub, const GlobalOptions&) -> std::function<void()> {
            struct Options {
              std::string model, text, file;
              bool special = false, json = false;
            };
            auto o = std::make_shared<Options>();
            sub.add_option("MODEL", o->model, "Hugging Face folder, .gguf or .onnx file")->required();
            auto* text_option = sub.add_option("--text", o->text, "The text to tokenize");
            auto* file = sub.add_option("--file", o->file, "Tokenize this UTF-8 file instead")->check(CLI::ExistingFile);
            text_option->excludes(file);
            sub.add_flag("--special", o->special, "Add the tokenizer's special tokens (BOS when it adds one)");
            sub.add_flag("--json", o->json, "Print {\"ids\": [...], \"pieces\": [...]} as JSON");
            return [o] {
              if (o->text.empty() && o->file.empty()) throw_error(ErrorKind::Usage, "give --text STRING or --file FILE");
              const Model model = load_model(o->model);
              if (model.vocab.kind == VocabKind::None)
                throw_error(ErrorKind::Usage, "{}: the model has no tokenizer", o->model);
              const Tokenizer tokenizer(model.vocab);
              const std::string text = o->file.empty() ? o->text : read_text_file(o->file);
              const std::vector<int32_t> ids = tokenizer.encode(text, o->special);
              std::vector<std::string> pieces;
              for (int32_t id : ids) pieces.push_back(tokenizer.token_text(id));
              if (o->json) {
                pipeline::print_json({{"ids", ids}, {"pieces", pieces}});
                return;
              }
              for (size_t i = 0; i < ids.size(); ++i)
                std::printf("%d\t%s\n", ids[i], nlohmann::json(pieces[i]).dump().c_str());
              std::printf("%zu tokens\n", ids.size());
            };
          }};
}

}  // namespace slmopt::driver
