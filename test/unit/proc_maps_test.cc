// common/proc/maps: parsing /proc/PID/maps (fixed text taken from a 6.18
// machine, malformed text) and a live check on this process.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common/fd.h"
#include "common/proc/maps.h"

using namespace cr;
using namespace cr::proc;

namespace {

// A process with a file whose name has spaces, a deleted file, a memfd,
// shared anonymous memory, PROT_NONE, the three-part vDSO area (6.18),
// [heap], [stack] and [vsyscall]. Anonymous lines keep the kernel's
// trailing space.
const char kMaps[] = R"PROC(564e4d359000-564e4d35a000 r--p 00000000 fe:00 10953084                   /tmp/procfx/gen
564e4d35a000-564e4d35b000 r-xp 00001000 fe:00 10953084                   /tmp/procfx/gen
564e4d35b000-564e4d35c000 r--p 00002000 fe:00 10953084                   /tmp/procfx/gen
564e4d35c000-564e4d35d000 r--p 00002000 fe:00 10953084                   /tmp/procfx/gen
564e4d35d000-564e4d35e000 rw-p 00003000 fe:00 10953084                   /tmp/procfx/gen
564e4e5e5000-564e4e606000 rw-p 00000000 00:00 0                          [heap]
7f18e61f6000-7f18e61f7000 rw-p 00000000 00:00 0 
7f18e61f7000-7f18e61f8000 rw-p 00000000 00:00 0 
7f18e61f8000-7f18e61f9000 rw-p 00000000 00:00 0 
7f18e61f9000-7f18e61fa000 rw-p 00000000 00:00 0 
7f18e61fa000-7f18e61fb000 rw-p 00000000 00:00 0 
7f18e61fb000-7f18e61fc000 rw-p 00000000 00:00 0 
7f18e61fc000-7f18e61fd000 rw-p 00000000 00:00 0 
7f18e61fd000-7f18e61fe000 rw-p 00000000 00:00 0 
7f18e61fe000-7f18e61ff000 rw-p 00000000 00:00 0 
7f18e61ff000-7f18e6200000 rw-p 00000000 00:00 0 
7f18e6200000-7f18e6201000 rw-p 00000000 00:00 0 
7f18e6201000-7f18e6202000 rw-p 00000000 00:00 0 
7f18e6202000-7f18e6203000 rw-p 00000000 00:00 0 
7f18e6203000-7f18e6204000 rw-p 00000000 00:00 0 
7f18e6204000-7f18e6205000 rw-p 00000000 00:00 0 
7f18e6205000-7f18e6206000 rw-p 00000000 00:00 0 
7f18e6206000-7f18e6207000 rw-p 00000000 00:00 0 
7f18e6207000-7f18e6208000 rw-p 00000000 00:00 0 
7f18e6208000-7f18e6209000 rw-p 00000000 00:00 0 
7f18e6209000-7f18e620a000 rw-p 00000000 00:00 0 
7f18e620a000-7f18e620b000 ---p 00000000 00:00 0 
7f18e620b000-7f18e620c000 rw-p 00000000 00:00 0 
7f18e620c000-7f18e620d000 r-xp 00000000 00:00 0 
7f18e620d000-7f18e6224000 rw-p 00000000 00:00 0 
7f18e6224000-7f18e624a000 r--p 00000000 fe:00 332835                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f18e624a000-7f18e63a0000 r-xp 00026000 fe:00 332835                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f18e63a0000-7f18e63f3000 r--p 0017c000 fe:00 332835                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f18e63f3000-7f18e63f7000 r--p 001cf000 fe:00 332835                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f18e63f7000-7f18e63f9000 rw-p 001d3000 fe:00 332835                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f18e63f9000-7f18e6406000 rw-p 00000000 00:00 0 
7f18e6408000-7f18e640a000 rw-s 00000000 00:01 117356                     /dev/zero (deleted)
7f18e640a000-7f18e640b000 rw-s 00000000 00:01 117355                     /memfd:my memfd (deleted)
7f18e640b000-7f18e640d000 r--s 00000000 fe:00 10953080                   /tmp/procfx/gone (deleted)
7f18e640d000-7f18e6411000 rw-p 00000000 fe:00 10953079                   /tmp/procfx/file with spaces
7f18e6411000-7f18e6413000 rw-p 00000000 00:00 0 
7f18e6413000-7f18e6417000 r--p 00000000 00:00 0                          [vvar]
7f18e6417000-7f18e6419000 r--p 00000000 00:00 0                          [vvar_vclock]
7f18e6419000-7f18e641b000 r-xp 00000000 00:00 0                          [vdso]
7f18e641b000-7f18e641c000 r--p 00000000 fe:00 332383                     /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f18e641c000-7f18e6442000 r-xp 00001000 fe:00 332383                     /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f18e6442000-7f18e644c000 r--p 00027000 fe:00 332383                     /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f18e644c000-7f18e644e000 r--p 00031000 fe:00 332383                     /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f18e644e000-7f18e6450000 rw-p 00033000 fe:00 332383                     /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7ffdb56c9000-7ffdb56ea000 rw-p 00000000 00:00 0                          [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
)PROC";

const VmaInfo* find(const std::vector<VmaInfo>& v, uint64_t start) {
  for (const auto& m : v)
    if (m.start == start) return &m;
  return nullptr;
}

std::string err_of(std::string_view text) {
  auto r = parse_maps(text, "/proc/812/maps");
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

}  // namespace

TEST_CASE("proc maps: parses a real 6.18 maps file") {
  auto r = parse_maps(kMaps, "/proc/8302/maps");
  REQUIRE(r.ok());
  const auto& v = *r;
  CHECK(v.size() == 51);

  const VmaInfo& exe = v[0];
  CHECK(exe.start == 0x564e4d359000);
  CHECK(exe.end == 0x564e4d35a000);
  CHECK(exe.prot == PROT_READ);
  CHECK_FALSE(exe.shared);
  CHECK(exe.pgoff == 0);
  CHECK(exe.dev_major == 0xfe);
  CHECK(exe.dev_minor == 0);
  CHECK(exe.inode == 10953084);
  CHECK(exe.path == "/tmp/procfx/gen");
  CHECK_FALSE(exe.deleted);
  CHECK(exe.is_file());
  CHECK_FALSE(exe.is_anon());

  const VmaInfo* text = find(v, 0x564e4d35a000);
  REQUIRE(text);
  CHECK(text->prot == (PROT_READ | PROT_EXEC));
  CHECK(text->pgoff == 0x1000);

  const VmaInfo* anon = find(v, 0x7f18e61f6000);
  REQUIRE(anon);
  CHECK(anon->prot == (PROT_READ | PROT_WRITE));
  CHECK(anon->path.empty());
  CHECK(anon->is_anon());
  CHECK_FALSE(anon->is_file());
  CHECK(anon->pages() == 1);

  const VmaInfo* none = find(v, 0x7f18e620a000);
  REQUIRE(none);
  CHECK(none->prot == PROT_NONE);
  CHECK(none->is_anon());

  const VmaInfo* spaces = find(v, 0x7f18e640d000);
  REQUIRE(spaces);
  CHECK(spaces->path == "/tmp/procfx/file with spaces");
  CHECK_FALSE(spaces->deleted);
  CHECK_FALSE(spaces->shared);
  CHECK(spaces->inode == 10953079);

  const VmaInfo* gone = find(v, 0x7f18e640b000);
  REQUIRE(gone);
  CHECK(gone->path == "/tmp/procfx/gone");
  CHECK(gone->deleted);
  CHECK(gone->shared);
  CHECK(gone->prot == PROT_READ);
  CHECK_FALSE(gone->is_shared_anon());

  const VmaInfo* shanon = find(v, 0x7f18e6408000);
  REQUIRE(shanon);
  CHECK(shanon->path == "/dev/zero");
  CHECK(shanon->deleted);
  CHECK(shanon->is_shared_anon());
  CHECK(shanon->is_file());
  CHECK(shanon->dev_minor == 1);

  const VmaInfo* memfd = find(v, 0x7f18e640a000);
  REQUIRE(memfd);
  CHECK(memfd->path == "/memfd:my memfd");
  CHECK(memfd->deleted);
  CHECK_FALSE(memfd->is_shared_anon());

  const VmaInfo* heap = find(v, 0x564e4e5e5000);
  REQUIRE(heap);
  CHECK(heap->is_heap());
  CHECK(heap->is_anon());

  int vvar = 0, vdso = 0, stack = 0, vsys = 0;
  for (const auto& m : v) {
    vvar += m.is_vvar();
    vdso += m.is_vdso();
    stack += m.is_stack();
    vsys += m.is_vsyscall();
    if (m.is_special()) CHECK_FALSE(m.is_anon());
  }
  CHECK(vvar == 2);
  CHECK(vdso == 1);
  CHECK(stack == 1);
  CHECK(vsys == 1);
  CHECK(v.back().start == 0xffffffffff600000);
  CHECK(v.back().prot == PROT_EXEC);

  auto area = find_vdso_area(v);
  REQUIRE(area.ok());
  REQUIRE(area->has_value());
  const VdsoArea& a = **area;
  CHECK(a.count == 3);
  CHECK(a.start == 0x7f18e6413000);
  CHECK(a.end == 0x7f18e641b000);
  CHECK(a.vdso_start == 0x7f18e6419000);
  CHECK(a.vdso_end == 0x7f18e641b000);
  CHECK(v[a.first].path == "[vvar]");
  CHECK(v[a.first + 1].path == "[vvar_vclock]");
  CHECK(v[a.first + 2].path == "[vdso]");
}

TEST_CASE("proc maps: single lines and their edge cases") {
  auto l = parse_maps_line("7f00000000-7f00001000 rw-p 00000000 00:00 0");  // no trailing space
  REQUIRE(l.ok());
  CHECK(l->path.empty());
  CHECK(l->is_anon());

  l = parse_maps_line("1000-2000 r--s 00003000 103:1a 42   /a b/c  d ");  // spaces kept, even at the end
  REQUIRE(l.ok());
  CHECK(l->path == "/a b/c  d ");
  CHECK(l->dev_major == 0x103);
  CHECK(l->dev_minor == 0x1a);
  CHECK(l->pgoff == 0x3000);
  CHECK(l->shared);

  l = parse_maps_line("1000-2000 r--p 00000000 fe:00 7   /x (deleted) (deleted)");
  REQUIRE(l.ok());
  CHECK(l->path == "/x (deleted)");
  CHECK(l->deleted);

  l = parse_maps_line("1000-2000 rw-p 00000000 00:00 0   [anon:my buffer (deleted)]");
  REQUIRE(l.ok());
  CHECK(l->path == "[anon:my buffer (deleted)]");  // not a file: no deleted suffix
  CHECK_FALSE(l->deleted);
  CHECK(l->is_anon());

  l = parse_maps_line("1000-2000 rw-s 00000000 00:01 9   [anon_shmem:ring]");
  REQUIRE(l.ok());
  CHECK(l->is_shared_anon());

  l = parse_maps_line("1000-2000 r--p 00000000 00:00 0   [vvar_foo]");
  REQUIRE(l.ok());
  CHECK(l->is_vvar());
  CHECK(l->is_special());
}

TEST_CASE("proc maps: malformed input gives errors naming file and line") {
  const std::string good = "1000-2000 rw-p 00000000 00:00 0 \n";
  CHECK(err_of(good + "zz-3000 rw-p 00000000 00:00 0 \n") ==
        "/proc/812/maps: line 2: bad address range 'zz-3000'");
  CHECK(err_of(good + "3000-3000 rw-p 00000000 00:00 0 \n").find("line 2: bad address range") != std::string::npos);
  CHECK(err_of(good + "4000-3000 rw-p 00000000 00:00 0 \n").find("line 2: bad address range") != std::string::npos);
  CHECK(err_of("1001-2000 rw-p 00000000 00:00 0\n").find("line 1: bad address range") != std::string::npos);
  CHECK(err_of("10000000000000000-10000000001000000 rw-p 00000000 00:00 0\n").find("bad address range") !=
        std::string::npos);
  CHECK(err_of("-1000 rw-p 00000000 00:00 0\n").find("bad address range") != std::string::npos);
  CHECK(err_of("1000-2000 rwzp 00000000 00:00 0\n").find("line 1: bad permissions 'rwzp'") != std::string::npos);
  CHECK(err_of("1000-2000 rw-pp 00000000 00:00 0\n").find("bad permissions") != std::string::npos);
  CHECK(err_of("1000-2000 rw-p 0000x000 00:00 0\n").find("bad offset") != std::string::npos);
  CHECK(err_of("1000-2000 rw-p 00000000 0000 0\n").find("bad device '0000'") != std::string::npos);
  CHECK(err_of("1000-2000 rw-p 00000000 1ffffffff:00 0\n").find("bad device") != std::string::npos);
  CHECK(err_of("1000-2000 rw-p 00000000 00:00 x1\n").find("bad inode 'x1'") != std::string::npos);
  CHECK(err_of("1000-2000 rw-p 00000000 00:00 99999999999999999999\n").find("bad inode") != std::string::npos);
  CHECK(err_of("1000-2000 rw-p 00000000 00:00\n").find("missing inode") != std::string::npos);
  CHECK(err_of("1000-2000 rw-p\n").find("missing offset") != std::string::npos);
  CHECK(err_of("1000-2000\n").find("missing permissions") != std::string::npos);
  CHECK(err_of("\n").find("line 1: missing address range") != std::string::npos);
  CHECK(err_of("1000-2000  rw-p 00000000 00:00 0\n").find("missing permissions") != std::string::npos);
  // Overlap and order.
  CHECK(err_of("1000-3000 rw-p 00000000 00:00 0 \n2000-4000 rw-p 00000000 00:00 0 \n").find("line 2: mapping 2000-4000 rw-p overlaps") !=
        std::string::npos);
  CHECK(err_of(good + "0-1000 rw-p 00000000 00:00 0 \n").find("line 2") != std::string::npos);
  // A last line without its newline was cut short.
  CHECK(err_of(good + "3000-4000 rw-p 00000000 fe:00 12   /usr/lib/li") ==
        "/proc/812/maps: line 2: truncated line (no newline at end of file)");
  // Every prefix of the real file either parses (at a line boundary) or fails cleanly.
  std::string_view all(kMaps);
  for (size_t n = 0; n < all.size(); n += 7) {
    auto r = parse_maps(all.substr(0, n));
    CHECK((r.ok() == (n == 0 || all[n - 1] == '\n')));
  }
  // Empty: a kernel thread or a zombie.
  auto e = parse_maps("");
  REQUIRE(e.ok());
  CHECK(e->empty());
}

TEST_CASE("proc maps: vDSO area with any number of vvar parts") {
  auto mk = [](uint64_t s, uint64_t e, const char* name) {
    VmaInfo v;
    v.start = s;
    v.end = e;
    v.path = name;
    return v;
  };
  // Older layout: [vdso] then [vvar] after it.
  std::vector<VmaInfo> v = {mk(0x1000, 0x2000, ""), mk(0x10000, 0x12000, "[vdso]"), mk(0x12000, 0x16000, "[vvar]"),
                            mk(0x20000, 0x21000, "[stack]")};
  auto a = find_vdso_area(v);
  REQUIRE(a.ok());
  REQUIRE(a->has_value());
  CHECK((*a)->first == 1);
  CHECK((*a)->count == 2);
  CHECK((*a)->start == 0x10000);
  CHECK((*a)->end == 0x16000);
  // A vvar part that is not adjacent is not part of the area.
  v[2].start = 0x13000;
  a = find_vdso_area(v);
  REQUIRE(a.ok());
  CHECK((*a)->count == 1);
  // No vdso at all (vdso=0 on the kernel command line).
  std::vector<VmaInfo> none = {mk(0x1000, 0x2000, "[vvar]")};
  a = find_vdso_area(none);
  REQUIRE(a.ok());
  CHECK_FALSE(a->has_value());
  // Two are an error.
  std::vector<VmaInfo> two = {mk(0x1000, 0x2000, "[vdso]"), mk(0x3000, 0x4000, "[vdso]")};
  CHECK_FALSE(find_vdso_area(two).ok());
}

TEST_CASE("proc maps: live /proc/self/maps shows this process's mappings") {
  // A private anonymous region with a PROT_NONE guard in the middle.
  const size_t pg = 4096;
  char* p = static_cast<char*>(mmap(nullptr, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != MAP_FAILED);
  REQUIRE(mprotect(p + pg, pg, PROT_NONE) == 0);
  // A shared mapping of a file with a space in its name, then unlinked.
  char path[] = "/tmp/crtools proc-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(ftruncate(fd, 2 * pg) == 0);
  char* f = static_cast<char*>(mmap(nullptr, 2 * pg, PROT_READ, MAP_SHARED, fd, pg));
  REQUIRE(f != MAP_FAILED);
  REQUIRE(unlink(path) == 0);
  close(fd);

  auto r = read_maps(getpid());
  REQUIRE(r.ok());
  const auto& v = *r;
  auto at = [&](const void* a) -> const VmaInfo* {
    for (const auto& m : v)
      if (m.contains(reinterpret_cast<uint64_t>(a))) return &m;
    return nullptr;
  };
  const VmaInfo* g = at(p + pg);
  REQUIRE(g);
  CHECK(g->start == reinterpret_cast<uint64_t>(p + pg));
  CHECK(g->end == reinterpret_cast<uint64_t>(p + 2 * pg));
  CHECK(g->prot == PROT_NONE);
  CHECK(g->is_anon());
  const VmaInfo* rw = at(p);
  REQUIRE(rw);
  CHECK(rw->prot == (PROT_READ | PROT_WRITE));
  const VmaInfo* fm = at(f);
  REQUIRE(fm);
  CHECK(fm->path == path);
  CHECK(fm->deleted);
  CHECK(fm->shared);
  CHECK(fm->pgoff == pg);
  CHECK(fm->size() == 2 * pg);

  auto area = find_vdso_area(v);
  REQUIRE(area.ok());
  REQUIRE(area->has_value());
  CHECK((*area)->count >= 2);  // 6.18: [vvar] [vvar_vclock] [vdso]
  bool stack = false;
  for (const auto& m : v) stack |= m.is_stack();
  CHECK(stack);

  auto missing = read_maps(999999999);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().pid == 999999999);
  CHECK(missing.error().err == ENOENT);
  munmap(p, 3 * pg);
  munmap(f, 2 * pg);
}
