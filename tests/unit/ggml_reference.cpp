// dlopen wrapper around node-llama-cpp's prebuilt llama.cpp libraries (see ggml_reference.h). Symbol names were
// read with `nm -D`: ggml's codecs are C symbols, the llama_quant_* test hooks are C++ (mangled) symbols.
#include "ggml_reference.h"
#include "source_dir.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>

namespace slmopt::testing {
namespace {

using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);
using QuantizeRefFn = void (*)(const float* src, void* dst, int64_t n);
using QuantizeChunkFn = size_t (*)(int type, const float* src, void* dst, int64_t start, int64_t nrows,
                                   int64_t n_per_row, const float* imatrix);

// Mirrors of the C structs passed by value or pointer (ggml.h, llama.h, llama-ext.h at node-llama-cpp's tag).
struct GgmlInitParams {
  size_t mem_size;
  void* mem_buffer;
  bool no_alloc;
};
struct LlamaQuantizeParams {
  int32_t nthread;
  int32_t ftype;
  int32_t output_tensor_type;
  int32_t token_embedding_type;
  bool allow_requantize, quantize_output_tensor, only_copy, pure, keep_split, dry_run;
  const void* imatrix;  // const llama_model_imatrix_data*: {name, data, size} entries ended by name == nullptr
  const void* kv_overrides;
  const void* tt_overrides;
  const int32_t* prune_layers;
  size_t max_buf_size;
};
struct LlamaImatrixEntry {
  const char* name;
  const float* data;
  size_t size;
};
struct LlamaQuantModelDesc {
  const char* architecture;
  uint32_t n_embd, n_ff, n_layer, n_head, n_head_kv, n_expert, n_embd_head_k, n_embd_head_v;
};

struct Library {
  void* handle = nullptr;
  std::string error;

  explicit Library(const std::string& path) {
    handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* e = dlerror();
      error = e ? std::string("cannot load llama.cpp library: ") + e : "cannot load " + path;
    }
  }
  template <typename Fn>
  Fn symbol(const char* name, std::string& missing) const {
    void* p = handle ? dlsym(handle, name) : nullptr;
    if (!p && missing.empty()) missing = std::string("symbol ") + name + " not exported";
    return reinterpret_cast<Fn>(p);
  }
};

struct LlamaLibrary {
  Library ggml_base;
  Library llama;
  std::string error;
  void* (*ggml_init)(GgmlInitParams) = nullptr;
  void (*ggml_free)(void*) = nullptr;
  void* (*ggml_new_tensor_2d)(void* ctx, int type, int64_t ne0, int64_t ne1) = nullptr;
  void* (*ggml_set_name)(void* tensor, const char* name) = nullptr;
  LlamaQuantizeParams (*default_params)() = nullptr;
  void* (*model_from_metadata)(const LlamaQuantModelDesc*) = nullptr;
  void (*model_free)(void*) = nullptr;
  void* (*quant_init)(const void* model, const LlamaQuantizeParams*) = nullptr;
  void (*quant_free)(void*) = nullptr;
  bool (*allows_quantization)(const void* qs, const void* tensor) = nullptr;
  void (*compute_types)(void* qs, int ftype, void** tensors, int* types, size_t n) = nullptr;
  void (*log_set)(void (*callback)(int level, const char* text, void* user), void* user) = nullptr;
  uint32_t (*model_quantize)(const char* in, const char* out, const LlamaQuantizeParams*) = nullptr;
  void (*backend_init)() = nullptr;

  LlamaLibrary()
      : ggml_base(llama_cpp_bin_dir() + "/libggml-base.so"), llama(llama_cpp_bin_dir() + "/libllama.v0.5.0.so") {
    error = !ggml_base.error.empty() ? ggml_base.error : llama.error;
    if (!error.empty()) return;
    ggml_init = ggml_base.symbol<decltype(ggml_init)>("ggml_init", error);
    ggml_free = ggml_base.symbol<decltype(ggml_free)>("ggml_free", error);
    ggml_new_tensor_2d = ggml_base.symbol<decltype(ggml_new_tensor_2d)>("ggml_new_tensor_2d", error);
    ggml_set_name = ggml_base.symbol<decltype(ggml_set_name)>("ggml_set_name", error);
    default_params = llama.symbol<decltype(default_params)>("llama_model_quantize_default_params", error);
    model_from_metadata = llama.symbol<decltype(model_from_metadata)>(
        "_Z31llama_quant_model_from_metadataPK22llama_quant_model_desc", error);
    model_free = llama.symbol<decltype(model_free)>("llama_model_free", error);
    quant_init = llama.symbol<decltype(quant_init)>(
        "_Z16llama_quant_initPK11llama_modelPK27llama_model_quantize_params", error);
    quant_free = llama.symbol<decltype(quant_free)>("_Z16llama_quant_freeP19quantize_state_impl", error);
    allows_quantization = llama.symbol<decltype(allows_quantization)>(
        "_Z38llama_quant_tensor_allows_quantizationPK19quantize_state_implPK11ggml_tensor", error);
    compute_types = llama.symbol<decltype(compute_types)>(
        "_Z25llama_quant_compute_typesP19quantize_state_impl11llama_ftypePP11ggml_tensorP9ggml_typem", error);
    log_set = llama.symbol<decltype(log_set)>("llama_log_set", error);
    model_quantize = llama.symbol<decltype(model_quantize)>("llama_model_quantize", error);
    backend_init = llama.symbol<decltype(backend_init)>("llama_backend_init", error);
    // llama.cpp logs every fallback it applies; the tests check the outcome instead.
    if (log_set) log_set([](int, const char*, void*) {}, nullptr);
  }

  static LlamaLibrary& instance() {
    static LlamaLibrary lib;
    return lib;
  }
};

// ggml's lower-case type names, as they appear in its symbol names.
const char* ggml_symbol_type(DType dtype) {
  switch (dtype) {
    case DType::Q4_0: return "q4_0";
    case DType::Q4_1: return "q4_1";
    case DType::Q5_0: return "q5_0";
    case DType::Q5_1: return "q5_1";
    case DType::Q8_0: return "q8_0";
    case DType::Q2_K: return "q2_K";
    case DType::Q3_K: return "q3_K";
    case DType::Q4_K: return "q4_K";
    case DType::Q5_K: return "q5_K";
    case DType::Q6_K: return "q6_K";
    case DType::IQ4_NL: return "iq4_nl";
    case DType::IQ4_XS: return "iq4_xs";
    case DType::IQ3_S: return "iq3_s";
    case DType::IQ3_XXS: return "iq3_xxs";
    case DType::IQ2_S: return "iq2_s";
    case DType::IQ2_XS: return "iq2_xs";
    case DType::IQ2_XXS: return "iq2_xxs";
    case DType::IQ1_M: return "iq1_m";
    case DType::IQ1_S: return "iq1_s";
    default: return nullptr;
  }
}

}  // namespace

struct GgmlLibrary::Impl {
  std::map<DType, DequantizeFn> dequantize;
  std::map<DType, QuantizeRefFn> quantize_ref;
  QuantizeChunkFn quantize_chunk = nullptr;
};

std::string llama_cpp_bin_dir() {
  return source_dir() + "/tests/consumers/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64";
}

bool skip_consumer_checks() {
  const char* env = std::getenv("SLMOPT_SKIP_CONSUMERS");
  return env && std::string(env) == "1";
}

namespace {

std::unique_ptr<GgmlLibrary::Impl> load_codecs(std::string& error) {
  auto& lib = LlamaLibrary::instance();
  if (!lib.error.empty()) {
    error = lib.error;
    return nullptr;
  }
  auto impl = std::make_unique<GgmlLibrary::Impl>();
  for (const DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                        DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL}) {
    const std::string name = ggml_symbol_type(t);
    impl->dequantize[t] = lib.ggml_base.symbol<DequantizeFn>(("dequantize_row_" + name).c_str(), error);
    impl->quantize_ref[t] = lib.ggml_base.symbol<QuantizeRefFn>(("quantize_row_" + name + "_ref").c_str(), error);
  }
  // The i-quants: ggml has no reference encoder for most of them (they need an importance matrix); their
  // encoders are reached through ggml_quantize_chunk.
  for (const DType t : {DType::IQ4_XS, DType::IQ3_S, DType::IQ3_XXS, DType::IQ2_S, DType::IQ2_XS, DType::IQ2_XXS,
                        DType::IQ1_M, DType::IQ1_S}) {
    const std::string name = ggml_symbol_type(t);
    impl->dequantize[t] = lib.ggml_base.symbol<DequantizeFn>(("dequantize_row_" + name).c_str(), error);
  }
  impl->quantize_chunk = lib.ggml_base.symbol<QuantizeChunkFn>("ggml_quantize_chunk", error);
  if (!error.empty()) error = llama_cpp_bin_dir() + "/libggml-base.so: " + error;
  return error.empty() ? std::move(impl) : nullptr;
}

}  // namespace

std::string llama_cpp_unavailable_reason() {
  static const std::string reason = [] {
    std::string error;
    load_codecs(error);
    if (error.empty()) error = LlamaLibrary::instance().error;
    return error;
  }();
  return reason;
}

GgmlLibrary::GgmlLibrary(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

const GgmlLibrary& GgmlLibrary::get() {
  static const GgmlLibrary* instance = [] {
    std::string error;
    auto impl = load_codecs(error);
    if (!impl) throw std::runtime_error("llama.cpp reference unavailable: " + error);
    return new GgmlLibrary(std::move(impl));
  }();
  return *instance;
}

void GgmlLibrary::dequantize_row(DType dtype, const uint8_t* src, float* dst, int64_t n) const {
  impl_->dequantize.at(dtype)(src, dst, n);
}

void GgmlLibrary::quantize_row_reference(DType dtype, const float* src, uint8_t* dst, int64_t n) const {
  impl_->quantize_ref.at(dtype)(src, dst, n);
}

size_t GgmlLibrary::quantize_chunk(DType dtype, const float* src, uint8_t* dst, int64_t nrows, int64_t n_per_row,
                                   const float* imatrix) const {
  return impl_->quantize_chunk(traits(dtype).ggml_type, src, dst, 0, nrows, n_per_row, imatrix);
}

std::vector<int> llama_tensor_types(const LlamaModelShape& shape, const std::vector<GgufTensorShape>& tensors,
                                    int ftype) {
  auto& lib = LlamaLibrary::instance();
  if (!lib.error.empty()) throw std::runtime_error("llama.cpp reference unavailable: " + lib.error);
  static std::mutex mutex;  // llama's quantize state is not meant to be shared
  std::lock_guard<std::mutex> lock(mutex);

  const LlamaQuantModelDesc desc{"llama", shape.n_embd, shape.n_ff, shape.n_layer, shape.n_head,
                                 shape.n_head_kv, 0, shape.head_dim, shape.head_dim};
  void* model = lib.model_from_metadata(&desc);
  const LlamaQuantizeParams params = lib.default_params();
  void* qs = lib.quant_init(model, &params);
  void* ctx = lib.ggml_init(GgmlInitParams{static_cast<size_t>(tensors.size() + 8) * 1024, nullptr, true});

  // llama.cpp visits tensors ordered by block number, then by name (llama_model_loader's weight_name_comparer);
  // its per-layer counters depend on that order.
  struct Entry {
    size_t index;
    void* tensor;
    int layer;
  };
  std::vector<Entry> quantizable;
  std::vector<int> result(tensors.size(), -1);
  for (size_t i = 0; i < tensors.size(); ++i) {
    void* t = lib.ggml_new_tensor_2d(ctx, /*GGML_TYPE_F32*/ 0, tensors[i].ne0, tensors[i].ne1);
    lib.ggml_set_name(t, tensors[i].name.c_str());
    int layer = -1;
    std::sscanf(tensors[i].name.c_str(), "blk.%d.", &layer);
    if (lib.allows_quantization(qs, t)) quantizable.push_back({i, t, layer});
  }
  std::sort(quantizable.begin(), quantizable.end(), [&](const Entry& a, const Entry& b) {
    if (a.layer != b.layer) return a.layer < b.layer;
    return tensors[a.index].name < tensors[b.index].name;
  });
  std::vector<void*> ptrs;
  for (const auto& e : quantizable) ptrs.push_back(e.tensor);
  std::vector<int> types(ptrs.size(), -1);
  lib.compute_types(qs, ftype, ptrs.data(), types.data(), ptrs.size());
  for (size_t k = 0; k < quantizable.size(); ++k) result[quantizable[k].index] = types[k];

  lib.ggml_free(ctx);
  lib.quant_free(qs);
  lib.model_free(model);
  return result;
}

namespace {

// GGML_TYPE_COUNT at node-llama-cpp's llama.cpp tag: "no override" in the two type fields.
constexpr int32_t kGgmlTypeCount = 43;

LlamaLibrary& quantizer_library() {
  auto& lib = LlamaLibrary::instance();
  if (!lib.error.empty()) throw std::runtime_error("llama.cpp reference unavailable: " + lib.error);
  static std::once_flag init;
  std::call_once(init, [&] { lib.backend_init(); });
  return lib;
}

}  // namespace

std::string llama_quantize_default_params_text() {
  const LlamaQuantizeParams p = quantizer_library().default_params();
  return "nthread=" + std::to_string(p.nthread) + " ftype=" + std::to_string(p.ftype) +
         " output_tensor_type=" + std::to_string(p.output_tensor_type) +
         " token_embedding_type=" + std::to_string(p.token_embedding_type) +
         " allow_requantize=" + std::to_string(p.allow_requantize) +
         " quantize_output_tensor=" + std::to_string(p.quantize_output_tensor) +
         " only_copy=" + std::to_string(p.only_copy) + " pure=" + std::to_string(p.pure) +
         " keep_split=" + std::to_string(p.keep_split) + " dry_run=" + std::to_string(p.dry_run) +
         " pointers_null=" + std::to_string(!p.imatrix && !p.kv_overrides && !p.tt_overrides && !p.prune_layers) +
         " max_buf_size=" + std::to_string(p.max_buf_size);
}

void llama_quantize_file(const std::string& in, const std::string& out, int ftype, int threads,
                         const std::map<std::string, std::vector<float>>* imatrix) {
  auto& lib = quantizer_library();
  LlamaQuantizeParams params = lib.default_params();
  // The tag's defaults (src/llama-quant.cpp): anything else means the mirror above is not this library's struct.
  const bool defaults_match = params.nthread == 0 && params.ftype == 7 && params.output_tensor_type == kGgmlTypeCount &&
                              params.token_embedding_type == kGgmlTypeCount && !params.allow_requantize &&
                              params.quantize_output_tensor && !params.only_copy && !params.pure &&
                              !params.keep_split && !params.dry_run && !params.imatrix && !params.kv_overrides &&
                              !params.tt_overrides && !params.prune_layers && params.max_buf_size == (size_t{8} << 30);
  if (!defaults_match)
    throw std::runtime_error("llama_model_quantize_default_params() returned " + llama_quantize_default_params_text() +
                             ": the struct mirror does not match this libllama");
  // llama.cpp copies the entries into its own map on entry; these only need to outlive the call.
  std::vector<LlamaImatrixEntry> entries;
  if (imatrix) {
    for (const auto& [name, values] : *imatrix) entries.push_back({name.c_str(), values.data(), values.size()});
    entries.push_back({nullptr, nullptr, 0});
  }
  params.nthread = threads;
  params.ftype = ftype;
  params.imatrix = imatrix ? entries.data() : nullptr;
  if (lib.model_quantize(in.c_str(), out.c_str(), &params) != 0)
    throw std::runtime_error("llama_model_quantize(" + in + " -> " + out + ", ftype " + std::to_string(ftype) +
                             ") failed");
}

}  // namespace slmopt::testing
