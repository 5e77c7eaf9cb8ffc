// io/onnx_folder.h: the export folder's layout (what transformers.js and onnxruntime-genai open), how output
// paths name it, refusing to mix two exports or to write into a checkpoint, external data beside the graph, and
// reading a folder back through load_model.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/model_loader.h"
#include "slmopt/io/onnx_folder.h"
#include "synthetic_llama.h"
#include "test_support.h"

namespace slmopt {
namespace {

namespace fs = std::filesystem;
using testing::model_path;
using testing::scratch_dir;

std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    names.push_back(e.path().lexically_relative(dir).generic_string());
  std::sort(names.begin(), names.end());
  return names;
}

void expect_usage_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an error mentioning " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(OnnxFolder, OutputPathsNameTheFolder) {
  EXPECT_EQ(onnx_default_file_name(OnnxWeightType::F32), "model.onnx");
  EXPECT_EQ(onnx_default_file_name(OnnxWeightType::F16), "model_fp16.onnx");
  EXPECT_EQ(onnx_default_file_name(OnnxWeightType::Int8), "model_int8.onnx");
  EXPECT_EQ(onnx_default_file_name(OnnxWeightType::Int8Dynamic), "model_quantized.onnx");
  EXPECT_EQ(onnx_default_file_name(OnnxWeightType::Int4), "model_q4.onnx");
  OnnxFolderTarget t = onnx_folder_target("out/kjv", OnnxWeightType::Int4);
  EXPECT_EQ(t.folder, "out/kjv");
  EXPECT_EQ(t.model_file, "model_q4.onnx");
  t = onnx_folder_target("out/kjv/", OnnxWeightType::F32);
  EXPECT_EQ(t.folder, "out/kjv");
  t = onnx_folder_target("out/kjv/onnx/custom.onnx", OnnxWeightType::Int4);
  EXPECT_EQ(t.folder, "out/kjv");
  EXPECT_EQ(t.model_file, "custom.onnx");
  EXPECT_EQ(t.model_path(), "out/kjv/onnx/custom.onnx");
  EXPECT_EQ(onnx_folder_target("onnx/model.onnx", OnnxWeightType::F32).folder, ".");
  // A bare .onnx path is not an export folder: the message shows both spellings.
  expect_usage_error([] { onnx_folder_target("out/kjv.onnx", OnnxWeightType::F32); }, "out/kjv/onnx/kjv.onnx");
}

TEST(OnnxFolder, ExportWritesTheRuntimeLayoutAndLoadsBack) {
  const Model model = load_model(model_path("tinystories-656k"));
  const std::string dir = scratch_dir("onnx_folder_layout") + "/tiny";
  const OnnxExportResult r = export_onnx_folder(model, dir);
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"config.json", "genai_config.json", "generation_config.json", "onnx",
                                                    "onnx/model.onnx", "tokenizer.json", "tokenizer_config.json"}));
  ASSERT_FALSE(r.files.empty());
  EXPECT_EQ(r.files[0], dir + "/onnx/model.onnx");
  const auto genai = nlohmann::json::parse(read_text_file(dir + "/genai_config.json"));
  EXPECT_EQ(genai["model"]["decoder"]["filename"], "onnx/model.onnx");  // resolved against the folder
  EXPECT_EQ(genai["model"]["decoder"]["num_key_value_heads"], model.config.num_kv_heads);
  EXPECT_EQ(genai["model"]["decoder"]["inputs"]["past_key_names"], "past_key_values.%d.key");
  EXPECT_EQ(genai["model"]["bos_token_id"], 1);
  const auto config = nlohmann::json::parse(read_text_file(dir + "/config.json"));
  EXPECT_EQ(config["model_type"], "llama");
  EXPECT_EQ(config["num_hidden_layers"], model.config.num_layers);
  EXPECT_FALSE(config.contains("transformers.js_config"));  // inline weights
  EXPECT_EQ(read_text_file(dir + "/tokenizer.json"), read_text_file(model_path("tinystories-656k/tokenizer.json")));
  // No staging folder left beside it.
  EXPECT_EQ(listing(fs::path(dir).parent_path().string()).size(), listing(dir).size() + 1);

  const Model back = load_model(dir);  // the folder, as transformers.js would be given it
  EXPECT_EQ(back.config.hidden_size, model.config.hidden_size);
  EXPECT_EQ(back.source_path, dir + "/onnx/model.onnx");
  EXPECT_EQ(back.vocab.tokens, model.vocab.tokens);
  EXPECT_EQ(back.config.name, "tiny");  // the folder's name, not "onnx"
}

TEST(OnnxFolder, ExternalDataLivesBesideTheGraphAndIsDeclared) {
  const Model model = load_model(model_path("tinystories-656k"));
  const std::string dir = scratch_dir("onnx_folder_external") + "/ext";
  OnnxExportOptions options;
  options.external_data_threshold = 1 << 20;  // the model has ~2.6 MB of weights
  const OnnxExportResult r = export_onnx_folder(model, dir, options);
  ASSERT_TRUE(r.external_data);
  EXPECT_TRUE(fs::exists(dir + "/onnx/model.onnx_data"));
  const auto config = nlohmann::json::parse(read_text_file(dir + "/config.json"));
  EXPECT_EQ(config["transformers.js_config"]["use_external_data_format"], true);
  // The same export again, now inline: its own stale data file goes, the graph still loads.
  options.external_data_threshold = 1ull << 40;
  export_onnx_folder(model, dir, options);
  EXPECT_FALSE(fs::exists(dir + "/onnx/model.onnx_data"));
  EXPECT_EQ(load_model(dir).config.num_layers, model.config.num_layers);
}

TEST(OnnxFolder, RefusesToMixExportsOrWriteIntoACheckpoint) {
  const Model model = testing::make_random_llama(testing::llama_config(64, 128, 1, 4, 2, 16, 50), 3);
  const std::string root = scratch_dir("onnx_folder_refusals");
  OnnxExportOptions f32;
  export_onnx_folder(model, root + "/a", f32);
  const auto before = listing(root + "/a");
  OnnxExportOptions f16;
  f16.weight_type = OnnxWeightType::F16;
  expect_usage_error([&] { export_onnx_folder(model, root + "/a", f16); }, "another ONNX export (onnx/model.onnx)");
  EXPECT_EQ(listing(root + "/a"), before);
  // The same export again is fine (its files are replaced); files it does not write stay.
  std::ofstream(root + "/a/README.md") << "notes";
  export_onnx_folder(model, root + "/a/onnx/model.onnx", f32);
  EXPECT_TRUE(fs::exists(root + "/a/README.md"));

  fs::create_directories(root + "/ckpt");
  std::ofstream(root + "/ckpt/model.safetensors") << "x";
  expect_usage_error([&] { export_onnx_folder(model, root + "/ckpt", f32); }, "holds another model (model.safetensors)");
  fs::create_directories(root + "/other");
  std::ofstream(root + "/other/config.json") << "{}";
  expect_usage_error([&] { export_onnx_folder(model, root + "/other", f32); }, "holds config.json");
  std::ofstream(root + "/file") << "x";
  expect_usage_error([&] { export_onnx_folder(model, root + "/file", f32); }, "not a folder");
}

TEST(OnnxFolder, FolderWithSeveralGraphsNeedsOneNamed) {
  const std::string dir = scratch_dir("onnx_folder_several");
  fs::create_directories(dir + "/onnx");
  EXPECT_EQ(onnx_folder_model_path(dir), "");
  std::ofstream(dir + "/onnx/model_q4.onnx") << "x";
  EXPECT_EQ(onnx_folder_model_path(dir), dir + "/onnx/model_q4.onnx");
  std::ofstream(dir + "/onnx/model_fp16.onnx") << "x";
  expect_usage_error([&] { onnx_folder_model_path(dir); }, "model_fp16.onnx, model_q4.onnx");
  std::ofstream(dir + "/onnx/model.onnx") << "x";
  EXPECT_EQ(onnx_folder_model_path(dir), dir + "/onnx/model.onnx");
}

}  // namespace
}  // namespace slmopt
