// common/proc/pagemap: run building from synthetic entries, and live runs of
// this process's own memory read from /proc/self/pagemap.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/proc/maps.h"
#include "common/proc/pagemap.h"

using namespace cr;
using namespace cr::proc;

namespace {

constexpr uint64_t kPg = 4096;
constexpr uint64_t P = kPmPresent, S = kPmSwapped, F = kPmFileOrSharedAnon, X = kPmExclusive, D = kPmSoftDirty;

std::vector<PageRun> runs_of(uint64_t start, const std::vector<uint64_t>& e) {
  std::vector<PageRun> r;
  append_dump_runs(start, e, r);
  return r;
}

const VmaInfo* vma_at(const std::vector<VmaInfo>& v, const void* a) {
  for (const auto& m : v)
    if (m.contains(reinterpret_cast<uint64_t>(a))) return &m;
  return nullptr;
}

uint64_t addr(const void* p) { return reinterpret_cast<uint64_t>(p); }

}  // namespace

TEST_CASE("proc pagemap: which entries a private-mapping dump saves") {
  CHECK_FALSE(pm_must_dump(0));
  CHECK(pm_must_dump(P));
  CHECK(pm_must_dump(P | X | 12345));        // anonymous, exclusive, with a PFN
  CHECK(pm_must_dump(S | 0x1f));             // swapped anonymous (swap type/offset bits)
  CHECK_FALSE(pm_must_dump(P | F));          // file page, unmodified
  CHECK_FALSE(pm_must_dump(S | F));          // swapped shmem
  CHECK_FALSE(pm_must_dump(X | D));          // flags without present/swapped
  CHECK(pm_present(P));
  CHECK(pm_swapped(S));
  CHECK(pm_file(F));
  CHECK(pm_exclusive(X));
  CHECK(pm_soft_dirty(D));
  CHECK((P & kPmPfnMask) == 0);
  CHECK((kPmPfnMask & 0xffffffffffull) == 0xffffffffffull);
}

TEST_CASE("proc pagemap: runs from synthetic entries") {
  const uint64_t b = 0x7f0000000000;
  CHECK(runs_of(b, {}).empty());
  CHECK(runs_of(b, {0, 0, P | F, S | F}).empty());
  CHECK(runs_of(b, {P, P, P}) == std::vector<PageRun>{{b, b + 3 * kPg}});
  // Holes, file pages and swapped pages.
  auto r = runs_of(b, {P, 0, P | F, S, P | X, 0, 0, P | F, P});
  CHECK(r == std::vector<PageRun>{{b, b + kPg}, {b + 3 * kPg, b + 5 * kPg}, {b + 8 * kPg, b + 9 * kPg}});
  CHECK(run_pages(r) == 4);
  // Consecutive batches merge at the seam, separate ones do not.
  std::vector<PageRun> acc;
  append_dump_runs(b, std::vector<uint64_t>{0, P, P}, acc);
  append_dump_runs(b + 3 * kPg, std::vector<uint64_t>{P, 0, P}, acc);
  append_dump_runs(b + 6 * kPg, std::vector<uint64_t>{0, P}, acc);
  CHECK(acc == std::vector<PageRun>{{b + kPg, b + 4 * kPg}, {b + 5 * kPg, b + 6 * kPg}, {b + 7 * kPg, b + 8 * kPg}});
  // A batch that begins after a gap does not merge.
  append_dump_runs(b + 100 * kPg, std::vector<uint64_t>{P}, acc);
  CHECK(acc.size() == 4);
  CHECK(acc.back() == PageRun{b + 100 * kPg, b + 101 * kPg});
  CHECK(acc.back().pages() == 1);
  // Many alternating pages.
  std::vector<uint64_t> alt(1000);
  for (size_t i = 0; i < alt.size(); i += 2) alt[i] = P;
  auto ra = runs_of(b, alt);
  CHECK(ra.size() == 500);
  CHECK(run_pages(ra) == 500);
}

TEST_CASE("proc pagemap: a child's pages split into its own and its parent's") {
  const uint64_t b = 0x7f0000000000;
  auto pfn = [](uint64_t n) { return P | n; };
  std::vector<PageRun> own, same;
  // Same frame; another frame; the same swap slot; a file page (not dumped);
  // a page the parent lacks; PFNs hidden (0: never the same); none in the
  // child.
  append_cow_runs(b, std::vector<uint64_t>{pfn(10), pfn(11), S | 77, pfn(12) | F, pfn(13), P, 0},
                  std::vector<uint64_t>{pfn(10), pfn(99), S | 77, pfn(12) | F, 0, P, pfn(14)}, own, same);
  CHECK(same == std::vector<PageRun>{{b, b + kPg}, {b + 2 * kPg, b + 3 * kPg}});
  CHECK(own == std::vector<PageRun>{{b + kPg, b + 2 * kPg}, {b + 4 * kPg, b + 6 * kPg}});
  CHECK(pm_same_page(pfn(5) | X, pfn(5)));  // exclusive or not, the same frame
  CHECK_FALSE(pm_same_page(pfn(5), S | 5));  // present vs swapped
}

TEST_CASE("proc pagemap: live anonymous private memory") {
  auto pm = Pagemap::open(getpid());
  REQUIRE(pm.ok());
  const size_t n = 16;
  char* p = static_cast<char*>(mmap(nullptr, n * kPg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != MAP_FAILED);
  REQUIRE(madvise(p, n * kPg, MADV_NOHUGEPAGE) == 0);
  for (size_t i : {0, 1, 2, 5, 9, 15}) p[i * kPg] = 1;

  std::vector<uint64_t> e(n);
  REQUIRE(pm->read(addr(p), e).ok());
  CHECK(pm_present(e[0]));
  CHECK_FALSE(pm_file(e[0]));
  CHECK(pm_exclusive(e[0]));
  CHECK(e[3] == 0);

  auto r = pm->dump_runs(addr(p), addr(p + n * kPg));
  REQUIRE(r.ok());
  const uint64_t b = addr(p);
  CHECK(*r == std::vector<PageRun>{{b, b + 3 * kPg}, {b + 5 * kPg, b + 6 * kPg}, {b + 9 * kPg, b + 10 * kPg},
                                   {b + 15 * kPg, b + 16 * kPg}});

  // Through the VMA, as dump will call it.
  auto maps = read_maps(getpid());
  REQUIRE(maps.ok());
  const VmaInfo* v = vma_at(*maps, p);
  REQUIRE(v);
  auto rv = pm->dump_runs(*v);
  REQUIRE(rv.ok());
  CHECK(run_pages(*rv) == 6);

  CHECK_FALSE(pm->read(b + 1, e).ok());            // not page aligned
  CHECK_FALSE(pm->dump_runs(b, b + 100).ok());     // end not page aligned
  CHECK_FALSE(pm->dump_runs(b + kPg, b).ok());     // end before start
  CHECK(pm->dump_runs(b, b)->empty());             // empty range
  munmap(p, n * kPg);
}

TEST_CASE("proc pagemap: live file-backed private mapping keeps only its COW pages") {
  char path[] = "/tmp/crtools-pagemap-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  unlink(path);
  std::vector<char> data(8 * kPg, 'x');
  REQUIRE(write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  char* f = static_cast<char*>(mmap(nullptr, 8 * kPg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
  REQUIRE(f != MAP_FAILED);
  close(fd);
  volatile char sink = 0;
  for (size_t i = 0; i < 8; i++) sink = sink + f[i * kPg];  // read: file pages in the page cache
  f[2 * kPg] = 'y';                                         // write: anonymous copies
  f[3 * kPg + 100] = 'y';
  f[6 * kPg] = 'y';

  auto pm = Pagemap::open(getpid());
  REQUIRE(pm.ok());
  std::vector<uint64_t> e(8);
  REQUIRE(pm->read(addr(f), e).ok());
  CHECK(pm_present(e[0]));
  CHECK(pm_file(e[0]));
  CHECK(pm_present(e[2]));
  CHECK_FALSE(pm_file(e[2]));

  auto maps = read_maps(getpid());
  REQUIRE(maps.ok());
  const VmaInfo* v = vma_at(*maps, f);
  REQUIRE(v);
  CHECK(v->is_file());
  auto r = pm->dump_runs(*v);
  REQUIRE(r.ok());
  const uint64_t b = addr(f);
  CHECK(*r == std::vector<PageRun>{{b + 2 * kPg, b + 4 * kPg}, {b + 6 * kPg, b + 7 * kPg}});
  munmap(f, 8 * kPg);
}

TEST_CASE("proc pagemap: live shared mappings and vsyscall are refused, batches merge") {
  auto pm = Pagemap::open(getpid());
  REQUIRE(pm.ok());
  char* s = static_cast<char*>(mmap(nullptr, 4 * kPg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  REQUIRE(s != MAP_FAILED);
  s[0] = 1;
  auto maps = read_maps(getpid());
  REQUIRE(maps.ok());
  const VmaInfo* v = vma_at(*maps, s);
  REQUIRE(v);
  CHECK(v->is_shared_anon());
  auto r = pm->dump_runs(*v);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("is shared") != std::string::npos);
  CHECK(r.error().pid == getpid());
  // Its pages are shmem: bit 61 set.
  std::vector<uint64_t> e(1);
  REQUIRE(pm->read(addr(s), e).ok());
  CHECK(pm_present(e[0]));
  CHECK(pm_file(e[0]));
  munmap(s, 4 * kPg);

  for (const auto& m : *maps)
    if (m.is_vsyscall()) CHECK_FALSE(pm->dump_runs(m).ok());

  // A reservation larger than three batches, touched on both sides of each
  // batch seam: the runs cross the seams unbroken.
  const uint64_t batch = Pagemap::kBatchPages * kPg;
  const uint64_t len = 3 * batch + 16 * kPg;
  char* big = static_cast<char*>(
      mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  REQUIRE(big != MAP_FAILED);
  REQUIRE(madvise(big, len, MADV_NOHUGEPAGE) == 0);
  const uint64_t b = addr(big);
  std::vector<PageRun> want;
  for (uint64_t k = 1; k <= 3; k++) {
    big[k * batch - kPg] = 1;
    big[k * batch] = 1;
    want.push_back({b + k * batch - kPg, b + k * batch + kPg});
  }
  big[len - kPg] = 1;
  want.push_back({b + len - kPg, b + len});
  auto rb = pm->dump_runs(b, b + len);
  REQUIRE(rb.ok());
  CHECK(*rb == want);
  munmap(big, len);
}
