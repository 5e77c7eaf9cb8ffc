// SHA-256 (FIPS 180-4): the one hash slmopt uses for provenance and integrity — distillation exports (teacher
// weights, corpus ids), the recipe manifest (artifact and checkpoint hashes), and model deltas (tensor, blob and
// file hashes that `slmopt patch` verifies).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace slmopt {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  // The 32-byte digest; the object must not be updated afterwards.
  std::array<uint8_t, 32> digest();
  // Lower-case hex digest; the object must not be updated afterwards.
  std::string hex_digest();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t length_ = 0;
};

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256(const void* data, size_t n);
std::string sha256_hex(const void* data, size_t n);
std::string to_hex(const Sha256Digest& digest);
// The hash of a file's bytes, read in 1 MiB pieces; throws Error(Io) naming the path.
std::string sha256_of_file(const std::string& path);

}  // namespace slmopt
