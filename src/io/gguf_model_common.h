// Private to io/: what the GGUF model writer (gguf_model_writer.cpp, every architecture of gguf_arch.h) shares
// with the quantizer's streaming path: the stored dtype of a tensor, its conversion, and general.file_type.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "slmopt/io/gguf.h"
#include "slmopt/io/gguf_format.h"
#include "slmopt/ir/tensor.h"

namespace slmopt::gguf_detail {

// The dtype `tensor` is stored as: F32 for 1-D tensors, else options.choose_dtype (or the IR dtype). Throws
// Error(Unsupported) naming `path` and the tensor for a dtype GGUF cannot hold or rows that do not fill its blocks.
DType stored_dtype(const Tensor& tensor, const GgufWriteOptions& options, const std::string& path);

// `tensor` in `target` (F32/F16/BF16 converted here, quantized types through options.encode).
Tensor convert_for_gguf(const Tensor& tensor, DType target, const GgufWriteOptions& options, const std::string& path);
// Streams `tensor` converted to `target` into `write` (row chunks for float targets and encode_streamed, the
// mapped input's pages dropped behind them); other targets go through convert_for_gguf whole.
void stream_for_gguf(const Tensor& tensor, DType target, const GgufWriteOptions& options, const std::string& path,
                     const GgufByteSink& write);

// options.file_type, else the file type of the dtype holding most 2-D weight elements.
LlamaFileType file_type_for(const std::map<DType, int64_t>& elements_by_dtype, const GgufWriteOptions& options);

}  // namespace slmopt::gguf_detail
