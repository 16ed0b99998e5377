// userfaultfd probes and PAGEMAP_SCAN. A mistake with userfaultfd blocks the
// faulting thread forever, so every probe that touches registered memory
// runs in a child with a deadline.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <vector>

#include "common/fd.h"
#include "common/kernel/probe_child.h"
#include "common/kernel/probes.h"
#include "common/strings.h"
#include "common/kernel/uapi.h"

namespace cr::probe {

namespace {

constexpr size_t kPage = 4096;


// A userfaultfd as cr-dump creates one in the target (a plain syscall).
Result<UniqueFd> open_uffd() {
  int fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
  if (fd < 0 && (errno == EINVAL || errno == EPERM))
    fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (fd < 0) return make_errno(errno, "userfaultfd()");
  return UniqueFd(fd);
}

struct Api {
  uint64_t features = 0;
  uint64_t ioctls = 0;
};

// UFFDIO_API asking for `features`; the kernel answers EINVAL if it lacks one.
Result<Api> uffd_api(int fd, uint64_t features, const char* names) {
  struct uffdio_api api;
  memset(&api, 0, sizeof api);
  api.api = UFFD_API;
  api.features = features;
  if (ioctl(fd, UFFDIO_API, &api)) return make_errno(errno, "UFFDIO_API asking for %s", names);
  return Api{api.features, api.ioctls};
}

Result<uint64_t> uffd_register(int fd, const Mapping& m, uint64_t mode, const char* what) {
  struct uffdio_register reg;
  memset(&reg, 0, sizeof reg);
  reg.range.start = m.addr();
  reg.range.len = m.size();
  reg.mode = mode;
  if (ioctl(fd, UFFDIO_REGISTER, &reg)) return make_errno(errno, "UFFDIO_REGISTER (%s)", what);
  return static_cast<uint64_t>(reg.ioctls);
}

Status uffd_writeprotect(int fd, uintptr_t start, size_t len, bool protect) {
  struct uffdio_writeprotect wp;
  memset(&wp, 0, sizeof wp);
  wp.range.start = start;
  wp.range.len = len;
  wp.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
  if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp))
    return make_errno(errno, "UFFDIO_WRITEPROTECT (%s)", protect ? "protect" : "unprotect");
  return ok_status();
}

Result<bool> page_wp(uintptr_t addr) {
  uint64_t e = TRY(pagemap_entry(0, addr));
  return (e & uapi::PM_UFFD_WP) != 0;
}

}  // namespace

Result<std::string> userfaultfd() {
  return run_in_child("userfaultfd", []() -> Result<std::string> {
    UniqueFd fd = TRY(open_uffd());
    Api api = TRY(uffd_api(fd.get(), 0, "no features"));
    Mapping m = TRY(Mapping::anon(2 * kPage));
    uint64_t ioctls = TRY(uffd_register(fd.get(), m, UFFDIO_REGISTER_MODE_MISSING, "missing"));
    if (!(ioctls & (1ULL << _UFFDIO_COPY))) return make_error("UFFDIO_COPY is not offered for anonymous memory");
    std::vector<char> src(kPage);
    for (size_t i = 0; i < kPage; i++) src[i] = static_cast<char>(i * 11 + 1);
    struct uffdio_copy cp;
    memset(&cp, 0, sizeof cp);
    cp.dst = m.addr();
    cp.src = reinterpret_cast<uintptr_t>(src.data());
    cp.len = kPage;
    if (ioctl(fd.get(), UFFDIO_COPY, &cp)) return make_errno(errno, "UFFDIO_COPY");
    if (cp.copy != (int64_t)kPage) return make_error("UFFDIO_COPY copied %lld bytes", (long long)cp.copy);
    // Only the filled page may be touched: the other would wait for a handler.
    if (memcmp(m.get(), src.data(), kPage) != 0) return make_error("UFFDIO_COPY filled the page with other bytes");
    return strprintf("userfaultfd with UFFDIO_API (features offered 0x%" PRIx64 "), UFFDIO_REGISTER and UFFDIO_COPY",
               api.features);
  });
}

Result<std::string> uffd_wp() {
  return run_in_child("uffd-wp", []() -> Result<std::string> {
    UniqueFd fd = TRY(open_uffd());
    TRY(uffd_api(fd.get(), UFFD_FEATURE_PAGEFAULT_FLAG_WP, "UFFD_FEATURE_PAGEFAULT_FLAG_WP"));
    Mapping m = TRY(Mapping::anon(2 * kPage));
    memset(m.get(), 1, 2 * kPage);
    uint64_t ioctls = TRY(uffd_register(fd.get(), m, UFFDIO_REGISTER_MODE_WP, "write-protect"));
    if (!(ioctls & (1ULL << _UFFDIO_WRITEPROTECT)))
      return make_error("UFFDIO_WRITEPROTECT is not offered for anonymous memory");
    TRY_STATUS(uffd_writeprotect(fd.get(), m.addr(), 2 * kPage, true));
    if (!TRY(page_wp(m.addr())) || !TRY(page_wp(m.addr() + kPage)))
      return make_error("after UFFDIO_WRITEPROTECT the pages lack pagemap bit 57 (uffd-wp)");
    TRY_STATUS(uffd_writeprotect(fd.get(), m.addr(), 2 * kPage, false));
    if (TRY(page_wp(m.addr())))
      return make_error("after removing write protection the page still shows pagemap bit 57");
    m.get()[0] = 2;  // unprotected: must not fault to us
    return std::string("UFFDIO_WRITEPROTECT protected and unprotected pages (seen in pagemap bit 57)");
  });
}

Result<std::string> uffd_wp_unpopulated() {
  return run_in_child("uffd-wp-unpopulated", []() -> Result<std::string> {
    UniqueFd fd = TRY(open_uffd());
    TRY(uffd_api(fd.get(), UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_UNPOPULATED,
                 "UFFD_FEATURE_WP_UNPOPULATED"));
    Mapping m = TRY(Mapping::anon(2 * kPage));
    TRY(uffd_register(fd.get(), m, UFFDIO_REGISTER_MODE_WP, "write-protect"));
    TRY_STATUS(uffd_writeprotect(fd.get(), m.addr(), 2 * kPage, true));
    if (!TRY(page_wp(m.addr() + kPage)))
      return make_error("an untouched page is not write-protected (no pagemap bit 57) despite "
                        "UFFD_FEATURE_WP_UNPOPULATED");
    return std::string("UFFD_FEATURE_WP_UNPOPULATED write-protected a page that was never touched");
  });
}

Result<std::string> uffd_wp_async() {
  return run_in_child("uffd-wp-async", []() -> Result<std::string> {
    UniqueFd fd = TRY(open_uffd());
    TRY(uffd_api(fd.get(), UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_ASYNC, "UFFD_FEATURE_WP_ASYNC"));
    Mapping m = TRY(Mapping::anon(2 * kPage));
    memset(m.get(), 1, 2 * kPage);
    TRY(uffd_register(fd.get(), m, UFFDIO_REGISTER_MODE_WP, "write-protect"));
    TRY_STATUS(uffd_writeprotect(fd.get(), m.addr(), 2 * kPage, true));
    // With WP_ASYNC the kernel resolves this fault itself; without it this
    // child would wait for a handler until the deadline kills it.
    m.get()[0] = 2;
    if (TRY(page_wp(m.addr())))
      return make_error("the written page is still write-protected (pagemap bit 57)");
    if (!TRY(page_wp(m.addr() + kPage))) return make_error("the page not written lost its write protection");
    return std::string("a write to an async write-protected page went through and only that page lost "
                       "pagemap bit 57");
  });
}

// The way cr-dump tracks written pages without soft-dirty (NOTES.md section 2):
// the userfaultfd lives in the target, the scans come from outside.
Result<std::string> pagemap_scan() {
  constexpr size_t kPages = 16;
  Mapping m = TRY(Mapping::anon(kPages * kPage));
  char* base = m.get();
  uintptr_t start = m.addr();
  auto child = TRY(ProbeChild::spawn("pagemap-scan", [base, start](ChildIo& io) {
    // The target's side: a userfaultfd with async write-protect over the
    // region, held open for as long as tracking must last.
    auto setup = [&]() -> Result<UniqueFd> {
      UniqueFd fd = TRY(open_uffd());
      TRY(uffd_api(fd.get(), UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
                   "UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED"));
      struct uffdio_register reg;
      memset(&reg, 0, sizeof reg);
      reg.range.start = start;
      reg.range.len = kPages * kPage;
      reg.mode = UFFDIO_REGISTER_MODE_WP;
      if (ioctl(fd.get(), UFFDIO_REGISTER, &reg)) return make_errno(errno, "UFFDIO_REGISTER");
      return fd;
    };
    auto fd = setup();
    if (!fd) {
      io.send("error " + fd.error().str());
      return 1;
    }
    io.send("ready");
    while (true) {
      std::string cmd = io.recv();
      if (cmd == "write") {
        base[3 * kPage] = 1;
        base[7 * kPage + 100] = 2;
        (void)*(volatile char*)(base + 5 * kPage);  // a read is not a write
        io.send("written");
      } else {
        return 0;
      }
    }
  }));
  TRY_STATUS(child->expect("ready"));
  std::string path = "/proc/" + std::to_string(child->pid()) + "/pagemap";
  UniqueFd pm(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!pm.valid()) return make_errno(errno, "cannot open %s", path.c_str());

  // One scan: the written pages, write-protecting them again.
  auto scan = [&](std::vector<page_region>& out) -> Status {
    page_region vec[kPages];
    struct pm_scan_arg a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
    a.start = start;
    a.end = start + kPages * kPage;
    a.vec = reinterpret_cast<uintptr_t>(vec);
    a.vec_len = kPages;
    a.category_mask = PAGE_IS_WRITTEN;
    a.return_mask = PAGE_IS_WRITTEN;
    long n = ioctl(pm.get(), PAGEMAP_SCAN, &a);
    if (n < 0) return make_errno(errno, "ioctl(%s, PAGEMAP_SCAN, PM_SCAN_WP_MATCHING)", path.c_str());
    if (a.walk_end != a.end)
      return make_error("PAGEMAP_SCAN stopped at 0x%llx before the end 0x%llx", (unsigned long long)a.walk_end,
                        (unsigned long long)a.end);
    out.assign(vec, vec + n);
    return ok_status();
  };
  auto pages = [&](const std::vector<page_region>& v) {
    std::string s;
    for (auto& r : v) {
      for (uint64_t a = r.start; a < r.end; a += kPage) s += (s.empty() ? "" : ",") + std::to_string((a - start) / kPage);
    }
    return s.empty() ? std::string("none") : s;
  };
  std::vector<page_region> first, second, third;
  TRY_STATUS(scan(first));  // protects everything
  TRY_STATUS(child->send("write"));
  TRY_STATUS(child->expect("written"));
  TRY_STATUS(scan(second));
  TRY_STATUS(scan(third));
  if (pages(second) != "3,7")
    return make_error("PAGEMAP_SCAN reported pages %s as written; the child wrote pages 3 and 7",
                      pages(second).c_str());
  if (!third.empty())
    return make_error("a scan right after PM_SCAN_WP_MATCHING still reported pages %s written",
                      pages(third).c_str());
  return std::string("PAGEMAP_SCAN with PM_SCAN_WP_MATCHING on a child's async uffd-wp memory reported exactly "
                     "the 2 pages it wrote, then none");
}

}  // namespace cr::probe
