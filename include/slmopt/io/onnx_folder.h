// An ONNX export as a self-contained folder, in the layout transformers.js and onnxruntime-genai load directly:
//
//   FOLDER/config.json              the Hugging Face config (transformers.js reads model_type, ids, sizes)
//   FOLDER/tokenizer.json, tokenizer_config.json      when the model has a vocabulary
//   FOLDER/generation_config.json   when the input model had one
//   FOLDER/genai_config.json        onnxruntime-genai: decoder.filename = "onnx/<file>"
//   FOLDER/onnx/<file>              the graph (io/onnx_export.h), with <file>_data beside it for external data
//
// <file> follows transformers.js's dtype names, so `from_pretrained(FOLDER, {dtype})` finds it: model.onnx (f32),
// model_fp16.onnx (f16 weights, float32 interface), model_int8.onnx (int8 QDQ), model_quantized.onnx
// (int8-dynamic, transformers.js "q8"), model_q4.onnx (int4 MatMulNBits).
//
// One folder holds one export: a folder that already holds a different export (another onnx/*.onnx, or a
// flat *.onnx), a checkpoint (*.safetensors, *.gguf, *.bin) or files of those names that no earlier export
// wrote is refused before anything is written, so two exports (a `make -j` of two targets) can never mix
// tokenizers or configs. The export is assembled in a temporary folder beside FOLDER and moved in only when
// complete; files in FOLDER that slmopt does not write (README.md, .gitattributes) are left as they are.
#pragma once

#include <string>

#include "slmopt/io/onnx_export.h"

namespace slmopt {

struct OnnxFolderTarget {
  std::string folder;      // the export folder
  std::string model_file;  // the graph's file name inside FOLDER/onnx ("model_q4.onnx")
  std::string model_path() const { return folder + "/onnx/" + model_file; }
};

// transformers.js's file name for a weight type: "model.onnx", "model_fp16.onnx", "model_q4.onnx", ...
std::string onnx_default_file_name(OnnxWeightType type);

// The folder an output path names: "DIR" (or "DIR/") → DIR with the type's default file name;
// "DIR/onnx/NAME.onnx" → DIR with NAME.onnx. A ".onnx" path outside an "onnx" folder is an Error(Usage) that
// shows both spellings (the export is a folder, not one file).
OnnxFolderTarget onnx_folder_target(const std::string& output, OnnxWeightType type);

// Refuses (Error(Usage), naming the folder and the conflicting file) a target folder that exists as a file,
// holds another export or checkpoint, or holds files of the export's names that no earlier export wrote.
// export_onnx_folder runs it too; stages run it before any work.
void check_onnx_folder_target(const OnnxFolderTarget& target);

// Writes the folder (see above). Returns the files written, the graph first; `files` name their final places.
OnnxExportResult export_onnx_folder(const Model& model, const std::string& output, const OnnxExportOptions& options = {});

// The graph of an export folder: FOLDER/onnx/<the one *.onnx> (model.onnx when several are there; several
// without a model.onnx are an Error(Usage) listing them). "" when FOLDER has no onnx/ subfolder.
std::string onnx_folder_model_path(const std::string& folder);

// The onnxruntime-genai config of an export (decoder interface, head counts, cache layout, bos/eos).
std::string genai_config_json(const Model& model, const std::string& model_file, const OnnxExportOptions& options);

}  // namespace slmopt
