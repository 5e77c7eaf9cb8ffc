// A small builder over onnx::GraphProto (private to io/): nodes with generated, readable output names,
// deduplicated integer constants, typed initializers and graph inputs/outputs with symbolic dimensions. The
// exporter (onnx_export_decoder.cpp) describe their graphs through it and never touch
// protobuf field names directly.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace slmopt::onnx_graph {

// A dimension of a graph input/output: a fixed size or a symbolic name ("batch_size").
using Dim = std::variant<int64_t, std::string>;

struct Attr {
  std::string name;
  std::variant<int64_t, float, std::vector<int64_t>, std::string> value;
};

inline constexpr const char* kMicrosoftDomain = "com.microsoft";

class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto& graph) : graph_(graph) {}

  // Adds a node named `name` (also the prefix of its outputs: "<name>/output_<i>") and returns its outputs.
  std::vector<std::string> node_n(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                                  int n_outputs, std::vector<Attr> attrs = {}, const std::string& domain = "");
  std::string node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                   std::vector<Attr> attrs = {}, const std::string& domain = "") {
    return node_n(op, name, std::move(inputs), 1, std::move(attrs), domain)[0];
  }
  // A node whose outputs have the given names (graph outputs such as "present.0.key").
  void node_named(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                  std::vector<std::string> outputs, std::vector<Attr> attrs = {}, const std::string& domain = "");

  // Constant initializers, shared by value: 1-D int64 (or a scalar when scalar = true), a float scalar.
  std::string const_i64(const std::vector<int64_t>& values, bool scalar = false);
  std::string const_f32(float value);

  // Initializers from raw little-endian bytes (TensorProto data_type codes: 1 float, 10 float16, 2 uint8,
  // 3 int8, 7 int64, 6 int32).
  std::string initializer(const std::string& name, int32_t data_type, const std::vector<int64_t>& dims,
                          std::string bytes);
  std::string initializer_f32(const std::string& name, const std::vector<int64_t>& dims, std::span<const float> v);

  void input(const std::string& name, int32_t elem_type, const std::vector<Dim>& dims);
  void output(const std::string& name, int32_t elem_type, const std::vector<Dim>& dims);

  bool uses_microsoft_domain() const { return uses_microsoft_; }

 private:
  onnx::GraphProto& graph_;
  std::map<std::pair<std::vector<int64_t>, bool>, std::string> i64_constants_;
  std::map<uint32_t, std::string> f32_constants_;
  bool uses_microsoft_ = false;
};

}  // namespace slmopt::onnx_graph
