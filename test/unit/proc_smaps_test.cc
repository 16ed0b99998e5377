// common/proc/smaps: VmFlags, sizes, the madvise advice list; fixed text
// from a 6.18 machine, malformed text, and a live check.
#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "common/proc/smaps.h"

using namespace cr;
using namespace cr::proc;

namespace {

// From a process that madvise'd (MADV_DONTFORK) one page and mlock2'ed
// (MLOCK_ONFAULT) another, plus PROT_NONE, a private file mapping, the
// three-part vDSO area and [vsyscall].
const char kSmaps[] = R"PROC(7f18e61f6000-7f18e61f7000 rw-p 00000000 00:00 0 
Size:                  4 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   0 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:            0 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: rd wr mr mw me dc ac 
7f18e6208000-7f18e6209000 rw-p 00000000 00:00 0 
Size:                  4 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   0 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:            0 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: rd wr mr mw me lo lf ac 
7f18e620a000-7f18e620b000 ---p 00000000 00:00 0 
Size:                  4 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   0 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:            0 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: mr mw me ac 
7f18e640d000-7f18e6411000 rw-p 00000000 fe:00 10953079                   /tmp/procfx/file with spaces
Size:                 16 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   8 kB
Pss:                   8 kB
Pss_Dirty:             8 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         8 kB
Referenced:            8 kB
Anonymous:             8 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: rd wr mr mw me ac 
7f18e6413000-7f18e6417000 r--p 00000000 00:00 0                          [vvar]
Size:                 16 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   0 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:            0 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: rd mr pf io de dd 
7f18e6417000-7f18e6419000 r--p 00000000 00:00 0                          [vvar_vclock]
Size:                  8 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   0 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:            0 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: rd mr pf io de dd 
7f18e6419000-7f18e641b000 r-xp 00000000 00:00 0                          [vdso]
Size:                  8 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   4 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          4 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:            4 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: rd ex mr mw me de 
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
Size:                  4 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   0 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:            0 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: ex 
)PROC";

const char kOne[] =
    "7f18e6204000-7f18e6206000 rw-p 00000000 00:00 0 \n"
    "Size:                  8 kB\n"
    "Rss:                   4 kB\n"
    "Anonymous:             4 kB\n"
    "Swap:                  4 kB\n"
    "VmFlags: rd wr mr mw me rr ac \n";

std::string err_of(std::string_view text) {
  auto r = parse_smaps(text, "/proc/812/smaps");
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

bool has_advice(const std::vector<int>& v, int a) { return std::find(v.begin(), v.end(), a) != v.end(); }

}  // namespace

TEST_CASE("proc smaps: parses a real 6.18 smaps file") {
  auto r = parse_smaps(kSmaps, "/proc/8302/smaps");
  REQUIRE(r.ok());
  const SmapsMap& m = *r;
  CHECK(m.size() == 8);

  const SmapsEntry& dc = m.at(0x7f18e61f6000);
  CHECK(dc.vma.end == 0x7f18e61f7000);
  CHECK(dc.size == 4096);
  CHECK(dc.kernel_page_size == 4096);
  CHECK(dc.flags.str() == "rd wr mr mw me dc ac");
  CHECK(dc.flags.has(VmFlag::Dc));
  CHECK_FALSE(dc.flags.has(VmFlag::Lo));
  CHECK(dc.flags.unknown().empty());
  CHECK(madvise_advices(dc.flags) == std::vector<int>{MADV_DONTFORK});
  CHECK(lock_mode(dc.flags) == LockMode::None);

  const SmapsEntry& lf = m.at(0x7f18e6208000);
  CHECK(lf.flags.has(VmFlag::Lo));
  CHECK(lf.flags.has(VmFlag::Lf));
  CHECK(lock_mode(lf.flags) == LockMode::OnFault);
  CHECK(madvise_advices(lf.flags).empty());

  const SmapsEntry& none = m.at(0x7f18e620a000);
  CHECK(none.vma.prot == PROT_NONE);
  CHECK(none.flags.str() == "mr mw me ac");

  const SmapsEntry& file = m.at(0x7f18e640d000);
  CHECK(file.vma.path == "/tmp/procfx/file with spaces");
  CHECK(file.rss == 8 * 1024);
  CHECK(file.anonymous == 8 * 1024);  // two pages written: copy-on-write, anonymous now
  CHECK(file.private_dirty == 8 * 1024);

  const SmapsEntry& vvar = m.at(0x7f18e6413000);
  CHECK(vvar.vma.is_vvar());
  CHECK(vvar.flags.str() == "rd mr pf io de dd");
  CHECK(m.at(0x7f18e6417000).vma.path == "[vvar_vclock]");
  const SmapsEntry& vdso = m.at(0x7f18e6419000);
  CHECK(vdso.flags.str() == "rd ex mr mw me de");
  CHECK(vdso.rss == 4096);
  CHECK(vdso.shared_clean == 4096);
  CHECK(m.at(0xffffffffff600000).flags.str() == "ex");
  for (const auto& [start, e] : m) {
    CHECK(start == e.vma.start);
    CHECK(e.size == e.vma.size());
    CHECK(e.protection_key == -1);
    CHECK_FALSE(e.thp_eligible);
  }
}

TEST_CASE("proc smaps: VmFlags mnemonics, unknown ones, the advice list") {
  auto f = parse_vmflags("rd wr mr mw me dc de ac wf dd hg nh mg sr rr lo lf zz ?? ");
  REQUIRE(f.ok());
  for (VmFlag x : {VmFlag::Rd, VmFlag::Wr, VmFlag::Dc, VmFlag::De, VmFlag::Wf, VmFlag::Dd, VmFlag::Hg, VmFlag::Nh,
                   VmFlag::Mg, VmFlag::Sr, VmFlag::Rr, VmFlag::Lo, VmFlag::Lf})
    CHECK(f->has(x));
  CHECK_FALSE(f->has(VmFlag::Ex));
  CHECK(f->unknown() == std::vector<std::string>{"zz", "??"});
  CHECK(f->str() == "rd wr mr mw me lo sr rr dc de ac wf dd hg nh mg lf zz ??");
  auto adv = madvise_advices(*f);
  CHECK(adv == std::vector<int>{MADV_DONTFORK, MADV_DONTDUMP, MADV_WIPEONFORK, MADV_HUGEPAGE, MADV_NOHUGEPAGE,
                                MADV_MERGEABLE, MADV_SEQUENTIAL, MADV_RANDOM});
  CHECK(lock_mode(*f) == LockMode::OnFault);
  f->clear(VmFlag::Lf);
  CHECK(lock_mode(*f) == LockMode::Locked);

  // Every table entry round-trips through its code.
  for (const auto& i : vmflag_table()) {
    auto back = vmflag_from_code(i.code);
    REQUIRE(back);
    CHECK(*back == i.flag);
    CHECK(std::string(vmflag_code(i.flag)) == i.code);
  }
  CHECK_FALSE(vmflag_from_code("xx"));

  auto empty = parse_vmflags("");
  REQUIRE(empty.ok());
  CHECK(empty->bits() == 0);

  CHECK_FALSE(parse_vmflags("rd  wr").ok());   // double space: an empty mnemonic
  CHECK_FALSE(parse_vmflags("rdw").ok());
  CHECK_FALSE(parse_vmflags("r").ok());
  CHECK_FALSE(parse_vmflags("RD").ok());
  CHECK_FALSE(parse_vmflags("rd rd").ok());
  CHECK_FALSE(parse_vmflags("zz zz").ok());
  CHECK(parse_vmflags("rd\twr", "/proc/1/smaps", 9).error().message == "/proc/1/smaps: line 9: bad VmFlags mnemonic 'rd\\x09wr'");
}

TEST_CASE("proc smaps: malformed input gives errors naming file and line") {
  auto ok = parse_smaps(kOne);
  REQUIRE(ok.ok());
  const SmapsEntry& e = ok->at(0x7f18e6204000);
  CHECK(e.rss == 4096);
  CHECK(e.swap == 4096);
  CHECK(e.pss == 0);  // optional lines may be absent
  CHECK(e.flags.has(VmFlag::Rr));

  std::string one = kOne;
  auto without = [&](const char* key) {
    std::string s = one;
    size_t p = s.find(key);
    s.erase(p, s.find('\n', p) - p + 1);
    return s;
  };
  CHECK(err_of(without("VmFlags")) == "/proc/812/smaps: line 1: mapping 7f18e6204000-7f18e6206000 rw-p has no VmFlags line");
  CHECK(err_of(without("Size")).find("has no Size line") != std::string::npos);
  CHECK(err_of(without("Swap")).find("has no Swap line") != std::string::npos);
  // Missing VmFlags in the first of two mappings.
  CHECK(err_of(without("VmFlags") + "7f18e6206000-7f18e6207000 rw-p 00000000 00:00 0 \nSize: 4 kB\n")
            .find("line 1:") != std::string::npos);

  auto replace = [&](const char* from, const char* to) {
    std::string s = one;
    s.replace(s.find(from), strlen(from), to);
    return s;
  };
  CHECK(err_of(replace("Size:                  8 kB", "Size:                  4 kB"))
            .find("Size 4 kB does not match its range") != std::string::npos);
  CHECK(err_of(replace("Rss:                   4 kB", "Rss:                   4 MB")) ==
        "/proc/812/smaps: line 3: Rss: expected 'N kB', got '4 MB'");
  CHECK(err_of(replace("Rss:                   4 kB", "Rss:                    kB")).find("line 3: Rss: expected 'N kB'") !=
        std::string::npos);
  CHECK(err_of(replace("Rss:                   4 kB", "Rss:  x kB")).find("line 3: Rss: bad size 'x kB'") !=
        std::string::npos);
  CHECK(err_of(replace("Rss:                   4 kB", "Rss: 99999999999999999999 kB")).find("bad size") !=
        std::string::npos);
  CHECK(err_of(replace("Rss:                   4 kB", "Rss: 18014398509481984 kB")).find("bad size") !=
        std::string::npos);  // would overflow in bytes
  // Without its ':' the line reads as the next mapping's header: the mapping
  // before it is then incomplete.
  CHECK(err_of(replace("Rss:                   4 kB", "Rss 4 kB")).find("has no Rss line") != std::string::npos);
  CHECK(err_of(replace("Rss:                   4 kB\n", "")).find("has no Rss line") != std::string::npos);
  CHECK(err_of(replace("Anonymous:             4 kB\n", "Anonymous:             4 kB\nRss: 4 kB\n"))
            .find("line 5: repeated Rss line") != std::string::npos);
  CHECK(err_of(replace("VmFlags: rd", "VmFlags: rdx")).find("line 6: bad VmFlags mnemonic 'rdx'") !=
        std::string::npos);
  CHECK(err_of(std::string("Rss: 4 kB\n") + one).find("line 1: 'Rss: 4 kB' before the first mapping line") !=
        std::string::npos);
  CHECK(err_of(one + one).find("line 7: mapping 7f18e6204000-7f18e6206000 rw-p overlaps") != std::string::npos);
  CHECK(err_of(one.substr(0, one.size() - 1)).find("line 6: truncated line") != std::string::npos);
  // Unknown keys are ignored, THPeligible and ProtectionKey are read.
  auto extra = parse_smaps(replace("Swap:", "Future_Key:   7 kB\nProtectionKey:   3\nTHPeligible:    1\nSwap:"));
  REQUIRE(extra.ok());
  CHECK(extra->begin()->second.protection_key == 3);
  CHECK(extra->begin()->second.thp_eligible);
  CHECK_FALSE(parse_smaps(replace("Swap:", "THPeligible:    2\nSwap:")).ok());
  CHECK_FALSE(parse_smaps(replace("Swap:", "ProtectionKey:  -1\nSwap:")).ok());

  // Every prefix of the real file either parses or fails cleanly.
  std::string_view all(kSmaps);
  for (size_t n = 0; n < all.size(); n += 13) (void)parse_smaps(all.substr(0, n));
}

TEST_CASE("proc smaps: live madvise flags and sizes of this process") {
  const size_t pg = 4096;
  char* p = static_cast<char*>(mmap(nullptr, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != MAP_FAILED);
  // Three VMAs: [DONTFORK|DONTDUMP] [plain] [WIPEONFORK|RANDOM].
  REQUIRE(madvise(p, 2 * pg, MADV_DONTFORK) == 0);
  REQUIRE(madvise(p, 2 * pg, MADV_DONTDUMP) == 0);
  REQUIRE(madvise(p + 5 * pg, 3 * pg, MADV_WIPEONFORK) == 0);
  REQUIRE(madvise(p + 5 * pg, 3 * pg, MADV_RANDOM) == 0);
  p[0] = 1;
  p[5 * pg] = 1;
  p[7 * pg] = 1;

  auto r = read_smaps(getpid());
  REQUIRE(r.ok());
  auto a = r->find(reinterpret_cast<uint64_t>(p));
  REQUIRE(a != r->end());
  CHECK(a->second.vma.end == reinterpret_cast<uint64_t>(p + 2 * pg));
  CHECK(madvise_advices(a->second.flags) == std::vector<int>{MADV_DONTFORK, MADV_DONTDUMP});
  CHECK(a->second.rss == pg);
  CHECK(a->second.anonymous == pg);
  auto b = r->find(reinterpret_cast<uint64_t>(p + 2 * pg));
  REQUIRE(b != r->end());
  CHECK(madvise_advices(b->second.flags).empty());
  CHECK(b->second.rss == 0);
  auto c = r->find(reinterpret_cast<uint64_t>(p + 5 * pg));
  REQUIRE(c != r->end());
  auto adv = madvise_advices(c->second.flags);
  CHECK(has_advice(adv, MADV_WIPEONFORK));
  CHECK(has_advice(adv, MADV_RANDOM));
  CHECK(adv.size() == 2);
  CHECK(c->second.anonymous == 2 * pg);
  CHECK(c->second.size == 3 * pg);

  // Reproducing the advice on a fresh mapping gives the same flags.
  char* q = static_cast<char*>(mmap(nullptr, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(q != MAP_FAILED);
  for (int advice : adv) REQUIRE(madvise(q, 3 * pg, advice) == 0);
  auto r2 = read_smaps(getpid());
  REQUIRE(r2.ok());
  auto d = r2->find(reinterpret_cast<uint64_t>(q));
  REQUIRE(d != r2->end());
  CHECK(d->second.flags == r2->at(reinterpret_cast<uint64_t>(p + 5 * pg)).flags);
  munmap(p, 8 * pg);
  munmap(q, 3 * pg);
}
