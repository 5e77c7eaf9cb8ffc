// Counter-based randomness: splitmix64 of (seed, hash of the tensor name, element index) gives each element its own
// stream, so tensors fill in parallel by rows without any shared generator state. Normals come from the
// Irwin–Hall sum of four uniforms (variance-corrected): smooth enough for fixtures, and cheap, which matters for
// 8B-shaped checkpoints.
#include "slmopt/ir/random_weights.h"

#include <cmath>
#include <cstring>

#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/core/parallel.h"
#include "slmopt/ir/decoder_tensors.h"

namespace slmopt {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t name_hash(const std::string& name) {  // FNV-1a: stable across platforms and library versions
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Approximately N(0, 1): four uniforms from one 64-bit draw (16 bits each), centred, scaled to unit variance.
float standard_normal(uint64_t key) {
  const uint64_t r = splitmix64(key);
  double sum = 0;
  for (int i = 0; i < 4; ++i) sum += static_cast<double>((r >> (16 * i)) & 0xffff) / 65535.0;
  return static_cast<float>((sum - 2.0) * std::sqrt(3.0));  // var of one uniform = 1/12, four → 1/3
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct Distribution {
  float mean, stddev;
};

Distribution distribution_for(const Config& c, const std::string& name, const std::vector<int64_t>& shape) {
  const bool is_norm = ends_with(name, "norm.weight") || ends_with(name, "layernorm.weight");
  if (is_norm) return {c.norm_unit_offset ? 0.0f : 1.0f, 0.1f};
  if (ends_with(name, ".bias")) return {0.0f, 0.02f};
  if (shape.size() == 2 && (name == "model.embed_tokens.weight" || name == "model.embed_positions.weight"))
    return {0.0f, name == "model.embed_positions.weight" ? 0.1f : 1.0f};
  if (shape.size() == 2) return {0.0f, static_cast<float>(1.0 / std::sqrt(static_cast<double>(shape[1])))};
  return {0.0f, 0.02f};
}

}  // namespace

Tensor random_tensor(const Config& config, const std::string& name, const std::vector<int64_t>& shape, DType dtype,
                     uint64_t seed) {
  if (!(dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16))
    throw_error(ErrorKind::Usage, "random weights are F32, F16 or BF16, not {}", dtype_name(dtype));
  const Distribution dist = distribution_for(config, name, shape);
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  const int64_t cols = shape.empty() ? 1 : shape.back();
  const int64_t rows = cols == 0 ? 0 : numel / cols;
  const size_t element_bytes = dtype == DType::F32 ? 4 : 2;
  std::vector<uint8_t> bytes(static_cast<size_t>(numel) * element_bytes);
  const uint64_t stream = splitmix64(seed ^ name_hash(name));
  parallel_for(
      static_cast<size_t>(rows),
      [&](size_t begin, size_t end) {
        for (size_t r = begin; r < end; ++r)
          for (int64_t j = 0; j < cols; ++j) {
            const uint64_t index = static_cast<uint64_t>(r) * static_cast<uint64_t>(cols) + static_cast<uint64_t>(j);
            const float v = dist.mean + dist.stddev * standard_normal(stream + index * 0x9e3779b97f4a7c15ull);
            uint8_t* out = bytes.data() + index * element_bytes;
            if (dtype == DType::F32) {
              std::memcpy(out, &v, 4);
            } else {
              const uint16_t h = dtype == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
              std::memcpy(out, &h, 2);
            }
          }
      },
      static_cast<size_t>(std::max<int64_t>(1, 65536 / std::max<int64_t>(cols, 1))));
  return Tensor::owned(name, shape, dtype, std::move(bytes));
}

Model random_model(const Config& config, DType dtype, uint64_t seed) {
  config.validate("random model config");
  Model model;
  model.config = config;
  model.source_format = "random";
  for (const ExpectedTensor& t : decoder_tensors(config))
    model.set(random_tensor(config, t.name, t.shape, dtype, seed));
  model.validate();
  return model;
}

}  // namespace slmopt
