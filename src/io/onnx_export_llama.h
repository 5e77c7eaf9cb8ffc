// Family graph builders of the ONNX exporter (private to io/).
#pragma once

#include "onnx_export_ops.h"

namespace slmopt::onnx_export_detail {

void build_llama_graph(ExportContext& ctx);
void build_llama_graph_fused(ExportContext& ctx);  // com.microsoft contrib ops (onnx_export_fused.cpp)
void build_gpt2_graph(ExportContext& ctx);         // onnx_export_gpt2.cpp

}  // namespace slmopt::onnx_export_detail
