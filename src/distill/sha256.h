// SHA-256 (FIPS 180-4), for the provenance hashes of distillation exports (teacher weights, corpus ids), so a
// training script can check that the soft labels belong to the teacher and corpus it was given.
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
  // Lower-case hex digest; the object must not be updated afterwards.
  std::string hex_digest();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t length_ = 0;
};

}  // namespace slmopt
