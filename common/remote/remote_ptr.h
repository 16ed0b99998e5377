// RemotePtr<T>: an address in another task's address space.
//
// It is a number, not a pointer: it never converts to or from a local T*,
// so a tracee address cannot be dereferenced here by mistake. It has the
// arithmetic of T* (RemotePtr<void> counts bytes, as GNU C does for void*),
// explicit casts between pointee types, and converts implicitly only to
// RemotePtr<void> (as T* does to void*).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace cr {

template <class T>
class RemotePtr {
 public:
  using element_type = T;

  constexpr RemotePtr() = default;
  constexpr explicit RemotePtr(uint64_t addr) : addr_(addr) {}
  // Like T* -> void*: any RemotePtr<U> widens to RemotePtr<void>.
  template <class U, class V = T, std::enable_if_t<std::is_void_v<V> && !std::is_void_v<U>, int> = 0>
  constexpr RemotePtr(RemotePtr<U> o) : addr_(o.addr()) {}

  constexpr uint64_t addr() const { return addr_; }
  constexpr bool null() const { return addr_ == 0; }
  constexpr explicit operator bool() const { return addr_ != 0; }

  template <class U>
  constexpr RemotePtr<U> cast() const {
    return RemotePtr<U>(addr_);
  }

  // Size of one element for arithmetic (1 for void).
  static constexpr uint64_t stride() {
    if constexpr (std::is_void_v<T>) return 1;
    else return sizeof(T);
  }

  constexpr RemotePtr operator+(std::ptrdiff_t n) const { return RemotePtr(addr_ + n * stride()); }
  constexpr RemotePtr operator-(std::ptrdiff_t n) const { return RemotePtr(addr_ - n * stride()); }
  constexpr RemotePtr& operator+=(std::ptrdiff_t n) { return *this = *this + n; }
  constexpr RemotePtr& operator-=(std::ptrdiff_t n) { return *this = *this - n; }
  constexpr RemotePtr& operator++() { return *this += 1; }
  constexpr RemotePtr& operator--() { return *this -= 1; }
  // Distance in elements.
  constexpr std::ptrdiff_t operator-(RemotePtr o) const {
    return static_cast<std::ptrdiff_t>(addr_ - o.addr_) / static_cast<std::ptrdiff_t>(stride());
  }
  friend constexpr bool operator==(RemotePtr a, RemotePtr b) { return a.addr_ == b.addr_; }
  friend constexpr auto operator<=>(RemotePtr a, RemotePtr b) { return a.addr_ <=> b.addr_; }

 private:
  uint64_t addr_ = 0;
};

}  // namespace cr
