// CPU state probes: which XSAVE components this CPU has and the kernel
// enabled (CPUID, XGETBV), and the kernel interfaces around them.
#include <cpuid.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "common/fd.h"
#include "common/kernel/probes.h"
#include "common/strings.h"
#include "common/kernel/uapi.h"

namespace cr::probe {

namespace {


struct Cpuid {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Cpuid cpuid(unsigned leaf, unsigned sub = 0) {
  Cpuid r;
  if (!__get_cpuid_count(leaf, sub, &r.a, &r.b, &r.c, &r.d)) r = Cpuid{};
  return r;
}

bool bit(unsigned v, int n) { return (v >> n) & 1; }

bool os_xsave() { return bit(cpuid(1).c, 26) && bit(cpuid(1).c, 27); }

uint64_t xgetbv0() {
  unsigned lo, hi;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

uint64_t xcr0() { return os_xsave() ? xgetbv0() : 0; }

bool xcr0_has(uint64_t mask) { return (xcr0() & mask) == mask; }

constexpr uint64_t xbit(unsigned n) { return 1ULL << n; }

// A flag in /proc/cpuinfo: what the kernel decided to support.
bool cpuinfo_flag(const char* flag) {
  auto t = read_file("/proc/cpuinfo");
  if (!t) return false;
  size_t at = t->find("\nflags");
  if (at == std::string::npos) return false;
  size_t end = t->find('\n', at + 1);
  std::string line = " " + t->substr(at + 1, end - at - 1) + " ";
  return line.find(std::string(" ") + flag + " ") != std::string::npos;
}

}  // namespace

Result<std::string> cpu_xsave() {
  Cpuid l1 = cpuid(1);
  if (!bit(l1.c, 26)) return make_error("the CPU has no XSAVE (CPUID.1:ECX bit 26)");
  if (!bit(l1.c, 27)) return make_error("the kernel did not enable XSAVE (CPUID.1:ECX.OSXSAVE is 0)");
  Cpuid d0 = cpuid(0xd, 0), d1 = cpuid(0xd, 1);
  uint64_t x = xgetbv0();
  return strprintf("XCR0 0x%" PRIx64 ", XSAVE area %u bytes for the enabled components (%u for all)%s%s", x, d0.b,
             d0.c, bit(d1.a, 1) ? ", XSAVEC" : "", bit(d1.a, 3) ? ", XSAVES" : "");
}

Result<std::string> cpu_avx() {
  if (!bit(cpuid(1).c, 28)) return make_error("the CPU has no AVX (CPUID.1:ECX bit 28)");
  if (!xcr0_has(xbit(uapi::XFEATURE_SSE) | xbit(uapi::XFEATURE_YMM)))
    return make_error("XCR0 0x%" PRIx64 " does not enable the YMM state", xcr0());
  return strprintf("AVX, YMM state enabled in XCR0%s", bit(cpuid(7).b, 5) ? "; AVX2 too" : "");
}

Result<std::string> cpu_avx512() {
  if (!bit(cpuid(7).b, 16)) return make_error("the CPU has no AVX-512 (CPUID.7:EBX bit 16, AVX512F)");
  uint64_t need = xbit(uapi::XFEATURE_OPMASK) | xbit(uapi::XFEATURE_ZMM_Hi256) | xbit(uapi::XFEATURE_Hi16_ZMM);
  if (!xcr0_has(need))
    return make_error("XCR0 0x%" PRIx64 " does not enable the opmask/ZMM state", xcr0());
  return std::string("AVX-512F; opmask, ZMM_Hi256 and Hi16_ZMM state enabled in XCR0");
}

Result<std::string> cpu_pkru() {
  Cpuid l7 = cpuid(7);
  if (!bit(l7.c, 3)) return make_error("the CPU has no protection keys (CPUID.7:ECX bit 3, PKU)");
  if (!bit(l7.c, 4)) return make_error("the kernel did not enable protection keys (CPUID.7:ECX.OSPKE is 0)");
  if (!xcr0_has(xbit(uapi::XFEATURE_PKRU))) return make_error("XCR0 0x%" PRIx64 " lacks PKRU", xcr0());
  long k = syscall(SYS_pkey_alloc, 0, 0);
  if (k < 0) return make_errno(errno, "pkey_alloc");
  syscall(SYS_pkey_free, k);
  return std::string("PKU enabled, PKRU in XCR0, pkey_alloc works");
}

Result<std::string> cpu_amx() {
  if (!bit(cpuid(7).d, 24)) return make_error("the CPU has no AMX (CPUID.7:EDX bit 24, AMX-TILE)");
  if (!xcr0_has(xbit(uapi::XFEATURE_XTILE_CFG) | xbit(uapi::XFEATURE_XTILE_DATA)))
    return make_error("XCR0 0x%" PRIx64 " lacks the tile state", xcr0());
  unsigned long supp = 0;
  if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_SUPP, &supp)) return make_errno(errno, "ARCH_GET_XCOMP_SUPP");
  if (!(supp & xbit(uapi::XFEATURE_XTILE_DATA)))
    return make_error("the kernel does not offer XTILE_DATA (ARCH_GET_XCOMP_SUPP 0x%lx)", supp);
  return std::string("AMX tile state offered by ARCH_GET_XCOMP_SUPP");
}

Result<std::string> cpu_cet_shstk() {
  bool cpu = bit(cpuid(7).c, 7);
  bool xss = bit(cpuid(0xd, 1).c, uapi::XFEATURE_CET_USER);
  unsigned long status = 0;
  bool kernel = syscall(SYS_arch_prctl, ARCH_SHSTK_STATUS, &status) == 0;
  int kerr = kernel ? 0 : errno;
  bool enabled = cpuinfo_flag("user_shstk");
  if (!cpu) return make_error("the CPU has no shadow stacks (CPUID.7:ECX bit 7, CET_SS)%s",
                              kernel ? "" : "; nor does the kernel support them");
  if (!xss) return make_error("the CPU does not save CET user state with XSAVES (CPUID.0xD.1:ECX bit 11)");
  if (!kernel)
    return make_errno(kerr, "the CPU has shadow stacks but the kernel has no user shadow stack support "
                            "(arch_prctl(ARCH_SHSTK_STATUS))");
  if (!enabled) return make_error("the kernel did not enable user shadow stacks (no user_shstk in /proc/cpuinfo)");
  return strprintf("CET shadow stacks: CPU, XSAVES CET_U state and kernel support; this task's shadow stack is %s",
             (status & ARCH_SHSTK_SHSTK) ? "on" : "off");
}

}  // namespace cr::probe
