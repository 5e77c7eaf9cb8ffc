#include "onnx_graph.h"

#include <bit>
#include <cstring>

#include "slmopt/core/error.h"

namespace slmopt::onnx_graph {
namespace {

void set_attr(onnx::NodeProto& node, const Attr& a) {
  onnx::AttributeProto* p = node.add_attribute();
  p->set_name(a.name);
  if (const auto* i = std::get_if<int64_t>(&a.value)) {
    p->set_type(onnx::AttributeProto::INT);
    p->set_i(*i);
  } else if (const auto* f = std::get_if<float>(&a.value)) {
    p->set_type(onnx::AttributeProto::FLOAT);
    p->set_f(*f);
  } else if (const auto* v = std::get_if<std::vector<int64_t>>(&a.value)) {
    p->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : *v) p->add_ints(x);
  } else {
    p->set_type(onnx::AttributeProto::STRING);
    p->set_s(std::get<std::string>(a.value));
  }
}

void set_value_info(onnx::ValueInfoProto* info, const std::string& name, int32_t elem_type,
                    const std::vector<Dim>& dims) {
  info->set_name(name);
  auto* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(elem_type);
  auto* shape = tensor->mutable_shape();
  for (const Dim& d : dims) {
    auto* dim = shape->add_dim();
    if (const auto* v = std::get_if<int64_t>(&d))
      dim->set_dim_value(*v);
    else
      dim->set_dim_param(std::get<std::string>(d));
  }
}

}  // namespace

std::vector<std::string> GraphBuilder::node_n(const std::string& op, const std::string& name,
                                              std::vector<std::string> inputs, int n_outputs, std::vector<Attr> attrs,
                                              const std::string& domain) {
  std::vector<std::string> outputs;
  for (int i = 0; i < n_outputs; ++i) outputs.push_back(name + "/output_" + std::to_string(i));
  node_named(op, name, std::move(inputs), outputs, std::move(attrs), domain);
  return outputs;
}

void GraphBuilder::node_named(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                              std::vector<std::string> outputs, std::vector<Attr> attrs, const std::string& domain) {
  onnx::NodeProto* node = graph_.add_node();
  node->set_op_type(op);
  node->set_name(name);
  if (!domain.empty()) {
    node->set_domain(domain);
    if (domain == kMicrosoftDomain) uses_microsoft_ = true;
  }
  for (const auto& in : inputs) node->add_input(in);
  for (const auto& out : outputs) node->add_output(out);
  for (const Attr& a : attrs) set_attr(*node, a);
}

std::string GraphBuilder::const_i64(const std::vector<int64_t>& values, bool scalar) {
  const auto key = std::make_pair(values, scalar);
  if (auto it = i64_constants_.find(key); it != i64_constants_.end()) return it->second;
  if (scalar && values.size() != 1)
    throw_error(ErrorKind::Internal, "ONNX scalar constant with {} values", values.size());
  std::string name = "/const/i64_" + std::to_string(i64_constants_.size());
  std::string bytes(values.size() * sizeof(int64_t), '\0');
  if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  std::vector<int64_t> dims;
  if (!scalar) dims.push_back(static_cast<int64_t>(values.size()));
  initializer(name, onnx::TensorProto::INT64, dims, std::move(bytes));
  i64_constants_.emplace(key, name);
  return name;
}

std::string GraphBuilder::const_f32(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if (auto it = f32_constants_.find(bits); it != f32_constants_.end()) return it->second;
  std::string name = "/const/f32_" + std::to_string(f32_constants_.size());
  std::string bytes(sizeof(float), '\0');
  std::memcpy(bytes.data(), &value, sizeof(float));
  initializer(name, onnx::TensorProto::FLOAT, {}, std::move(bytes));
  f32_constants_.emplace(bits, name);
  return name;
}

std::string GraphBuilder::initializer(const std::string& name, int32_t data_type, const std::vector<int64_t>& dims,
                                      std::string bytes) {
  onnx::TensorProto* t = graph_.add_initializer();
  t->set_name(name);
  t->set_data_type(data_type);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(std::move(bytes));
  return name;
}

std::string GraphBuilder::initializer_f32(const std::string& name, const std::vector<int64_t>& dims,
                                          std::span<const float> v) {
  std::string bytes(v.size() * sizeof(float), '\0');
  if (!v.empty()) std::memcpy(bytes.data(), v.data(), bytes.size());
  return initializer(name, onnx::TensorProto::FLOAT, dims, std::move(bytes));
}

void GraphBuilder::input(const std::string& name, int32_t elem_type, const std::vector<Dim>& dims) {
  set_value_info(graph_.add_input(), name, elem_type, dims);
}

void GraphBuilder::output(const std::string& name, int32_t elem_type, const std::vector<Dim>& dims) {
  set_value_info(graph_.add_output(), name, elem_type, dims);
}

}  // namespace slmopt::onnx_graph
