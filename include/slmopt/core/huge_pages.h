// An allocator for large scratch matrices (GPTQ's factors, XᵀX products): blocks of 2 MiB or more are aligned to
// 2 MiB and marked MADV_HUGEPAGE, so the kernel maps them with transparent huge pages where it allows (the
// "madvise" setting). On the virtual machines this runs on, first-touching a fresh 128 MiB buffer page by page
// costs seconds of page faults; with huge pages it costs one fault per 2 MiB. Smaller blocks are plain
// operator new. Elements made without a value are default-initialised (floats: indeterminate), unlike
// std::vector's value-initialisation: HugeVector<float> v(n) costs no single-threaded memset of the whole block
// (tens of ms at 128 MiB); write before reading, or construct with a value (v(n, 0.0f)) for zeros.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace slmopt {

void* huge_page_allocate(size_t bytes);
void huge_page_free(void* p, size_t bytes) noexcept;
// Asks for transparent huge pages on the whole 2 MiB pages inside [p, p + bytes) (advice only), for a big buffer
// allocated elsewhere (a std::vector reserved but not yet touched).
void advise_huge_pages(void* p, size_t bytes) noexcept;

template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(huge_page_allocate(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { huge_page_free(p, n * sizeof(T)); }
  template <typename U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const noexcept { return true; }
};

template <typename T>
using HugeVector = std::vector<T, HugePageAllocator<T>>;

}  // namespace slmopt
