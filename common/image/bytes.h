// Bytes: a byte string that encodes as a CBOR byte string (not an array of
// numbers), for xsave areas, siginfo, auxv.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace cr {

struct Bytes {
  std::vector<uint8_t> data;
  size_t size() const { return data.size(); }
  bool empty() const { return data.empty(); }
  bool operator==(const Bytes&) const = default;
};

inline void to_json(nlohmann::json& j, const Bytes& b) { j = nlohmann::json::binary(b.data); }
inline void from_json(const nlohmann::json& j, Bytes& b) {
  if (!j.is_binary()) throw nlohmann::json::type_error::create(302, "expected a byte string", &j);
  b.data = j.get_binary();
}

}  // namespace cr
