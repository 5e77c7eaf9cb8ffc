// safetensors reader and writers (single file and sharded), the weight format of Hugging Face folders.
//
// Byte layout of one file:
//   uint64 LE  N            length of the JSON header in bytes
//   N bytes    header       UTF-8 JSON object:
//                             {"__metadata__": {"key": "value", ...},          (optional, strings only)
//                              "<tensor name>": {"dtype": "F32", "shape": [d0, d1, ...],
//                                                "data_offsets": [begin, end]}, ...}
//                           padded with spaces so that 8 + N is a multiple of 8 (the data stays aligned)
//   data       tensor bytes, row-major, little-endian; offsets are relative to the start of this section.
//              The tensors tile the section exactly: no overlap, no hole, nothing after the last one.
//
// A sharded checkpoint is model-00001-of-0000M.safetensors ... plus model.safetensors.index.json:
//   {"metadata": {"total_size": <bytes of tensor data>}, "weight_map": {"<tensor name>": "<shard file>", ...}}
//
// Reading maps the file and hands out zero-copy Tensor views that keep the mapping alive. Every structural
// fault is an Error(BadInput) naming the file and the tensor; valid files with dtypes slmopt does not handle
// (F64, U8, F8_E4M3, ...) are an Error(Unsupported). Writing streams one tensor at a time through AtomicFile
// and produces the same bytes for the same tensors and metadata.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slmopt/core/mapped_file.h"
#include "slmopt/ir/tensor.h"

namespace slmopt {

// The safetensors dtype string of an IR dtype ("F32", "BF16", ...); nullopt for types safetensors cannot hold
// (the GGUF block-quantized ones).
std::optional<std::string_view> safetensors_dtype_name(DType dtype);
// The IR dtype of a safetensors dtype string that slmopt handles (F32, F16, BF16, I8, I32, I64).
std::optional<DType> dtype_from_safetensors(std::string_view name);

class SafetensorsFile {
 public:
  // Maps and validates the file. Throws Error(Io) when it cannot be read, Error(BadInput) when it is
  // malformed, Error(Unsupported) for dtypes outside dtype_from_safetensors.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  // In data order (ascending offsets). Views into mapping(), except for the rare tensor whose data is not
  // aligned to its element size in the file, which is copied so that readers never do unaligned loads.
  const std::vector<Tensor>& tensors() const { return tensors_; }
  const Tensor* find(const std::string& name) const;
  // The "__metadata__" object (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const MappedFile& mapping() const { return *mapping_; }
  // Byte offset of the data section in the file (8 + header length).
  size_t data_offset() const { return data_offset_; }

 private:
  std::string path_;
  std::shared_ptr<MappedFile> mapping_;
  std::vector<Tensor> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  size_t data_offset_ = 0;
};

// All tensors of a Hugging Face checkpoint folder: model.safetensors, or the shards listed in
// model.safetensors.index.json (every listed shard must exist, every tensor must sit in the shard the map
// names, and every tensor of a shard must be listed). metadata merges the shards' "__metadata__" objects.
struct SafetensorsCheckpoint {
  std::vector<Tensor> tensors;
  std::map<std::string, std::string> metadata;
  std::vector<std::string> files;  // the .safetensors files read, in file-name order
};
SafetensorsCheckpoint read_safetensors_checkpoint(const std::string& dir);

inline const std::string kSafetensorsSingleFile = "model.safetensors";
inline const std::string kSafetensorsIndexFile = "model.safetensors.index.json";

// Writes one .safetensors file. Header keys are sorted; data is laid out by element alignment (8-byte types
// first), then in the order given, so every tensor stays aligned. float_type (F32, F16 or BF16) re-encodes
// every float or block-quantized tensor while streaming; integer tensors are written as they are. Without
// float_type a block-quantized tensor is an Error(Unsupported). Duplicate names are an Error(Internal).
void write_safetensors(const std::string& path, const std::vector<const Tensor*>& tensors,
                       const std::map<std::string, std::string>& metadata = {},
                       std::optional<DType> float_type = std::nullopt);

// Writes the tensors into `dir` as model.safetensors when their bytes fit in max_shard_bytes, otherwise as
// model-0000N-of-0000M.safetensors shards (filled in the order given; a tensor larger than the limit gets a
// shard of its own) plus model.safetensors.index.json. Returns the file names written, relative to dir.
std::vector<std::string> write_safetensors_sharded(const std::string& dir, const std::vector<const Tensor*>& tensors,
                                                   const std::map<std::string, std::string>& metadata,
                                                   uint64_t max_shard_bytes,
                                                   std::optional<DType> float_type = std::nullopt);

// An entry whose bytes are made when the writer reaches it: the file is planned from name, shape and dtype, then
// produce() is called once, in file order, and the tensor it returns (same shape and dtype, else Error(Internal))
// is written and dropped — so a writer that packs or quantizes on demand holds one entry at a time. float_type
// converts produced float tensors as it does stored ones.
struct SafetensorsEntry {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::F32;
  std::function<Tensor()> produce;
  std::optional<DType> store_as;  // a float type to convert this entry to (streamed by rows), over float_type
};
std::vector<std::string> write_safetensors_sharded(const std::string& dir, const std::vector<SafetensorsEntry>& entries,
                                                   const std::map<std::string, std::string>& metadata,
                                                   uint64_t max_shard_bytes,
                                                   std::optional<DType> float_type = std::nullopt);

}  // namespace slmopt
