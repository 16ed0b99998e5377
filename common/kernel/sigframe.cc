#include "common/kernel/sigframe.h"

#include <cpuid.h>

#include <algorithm>
#include <cstring>

#include "common/kernel/uapi.h"
#include "parasite/restorer_task_abi.h"

namespace cr {

uint64_t xcr0_features() {
  static const uint64_t v = [] {
    uint32_t lo, hi;
    asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t(hi) << 32) | lo;
  }();
  return v;
}

uint32_t xstate_size_of(uint64_t features) {
  uint32_t n = uapi::kXstateHeaderOffset + 64;
  for (unsigned i = 2; i < 64; i++) {
    if (!(features >> i & 1)) continue;
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(0xd, i, &eax, &ebx, &ecx, &edx) && eax) n = std::max(n, ebx + eax);
  }
  return n;
}

uint64_t sigframe_features(uint64_t features) { return features & ~(1ull << uapi::XFEATURE_XTILE_DATA); }

size_t sigframe_xstate_room(uint64_t features) { return xstate_size_of(features) + 4; }

Status put_sigframe_xstate(std::span<uint8_t> out, std::span<const uint8_t> xsave, uint64_t features) {
  if (xsave.size() < uapi::kXstateHeaderOffset + 64)
    return make_error("signal frame: an XSAVE area of %zu bytes is too short", xsave.size());
  const uint32_t n = std::min(static_cast<uint32_t>(xsave.size()), xstate_size_of(features));
  if (out.size() < n + 4) return make_error("signal frame: %zu bytes for an XSAVE area of %u", out.size(), n);
  std::fill(out.begin(), out.end(), 0);
  memcpy(out.data(), xsave.data(), n);
  uint64_t bv = 0;
  memcpy(&bv, out.data() + uapi::kXstateHeaderOffset, 8);
  if (bv & ~features)
    return make_error("its XSAVE state holds features 0x%llx that a signal frame cannot give back",
                      (unsigned long long)(bv & ~features));
  uint32_t magic1 = kFpXstateMagic1, ext = n + 4, magic2 = kFpXstateMagic2;
  memcpy(out.data() + 464, &magic1, 4);
  memcpy(out.data() + 468, &ext, 4);
  memcpy(out.data() + 472, &features, 8);
  memcpy(out.data() + 480, &n, 4);
  memcpy(out.data() + n, &magic2, 4);
  return ok_status();
}

}  // namespace cr
