#pragma once
/// What the fuzz targets share: the input as text, and properties that must hold whatever the
/// input. A broken property aborts, so libFuzzer keeps the input as a crash like any other.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace chrootctl::fuzz {

inline std::string_view text_of(const std::uint8_t* data, std::size_t size) { return {reinterpret_cast<const char*>(data), size}; }

/// Aborts, naming the property, when `ok` is false.
inline void require(bool ok, const char* property) {
  if (ok) return;
  std::fprintf(stderr, "fuzz: property broken: %s\n", property);
  std::abort();
}

}  // namespace chrootctl::fuzz
