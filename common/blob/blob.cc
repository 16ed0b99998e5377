#include "common/blob/blob.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "parasite/parasite_abi.h"
#include "parasite/restorer_abi.h"

namespace cr {

// The ABI structs mirror kernel/libc types; check them where both are seen.
static_assert(sizeof(BlobItimerval) == sizeof(struct itimerval));
static_assert(offsetof(BlobItimerval, interval_sec) == offsetof(struct itimerval, it_interval));
static_assert(offsetof(BlobItimerval, value_sec) == offsetof(struct itimerval, it_value));
static_assert(sizeof(BlobStack) == sizeof(stack_t));
static_assert(offsetof(BlobStack, sp) == offsetof(stack_t, ss_sp));
static_assert(offsetof(BlobStack, flags) == offsetof(stack_t, ss_flags));
static_assert(offsetof(BlobStack, size) == offsetof(stack_t, ss_size));
static_assert(kBlobNSig == _NSIG - 1);

static constexpr uint64_t kPage = 4096;

uint64_t BlobDesc::map_size() const { return (total_size + kPage - 1) & ~(kPage - 1); }

Result<BlobSymbol> BlobDesc::symbol(std::string_view sym) const {
  for (uint64_t i = 0; i < nr_symbols; i++)
    if (sym == symbols[i].name) return symbols[i];
  return make_error("blob %s: no exported symbol %.*s (add it to %s_EXPORTS in the Makefile)",
                    name, static_cast<int>(sym.size()), sym.data(), name);
}

Result<BlobSymbol> BlobDesc::object(std::string_view sym, uint64_t size) const {
  BlobSymbol s = TRY(symbol(sym));
  if (s.size != size)
    return make_error("blob %s: %s is %lu bytes in the blob but %lu bytes in the host: "
                      "the blob and the host were built from different ABI headers",
                      name, s.name, static_cast<unsigned long>(s.size),
                      static_cast<unsigned long>(size));
  if (s.offset > total_size || s.size > total_size - s.offset)
    return make_error("blob %s: %s lies outside the blob", name, s.name);
  return s;
}

Status blob_relocate_into(const BlobDesc& d, void* dst, size_t dst_size, uint64_t base) {
  if (dst_size < d.total_size)
    return make_error("blob %s: %zu bytes do not hold it (%lu needed)", d.name, dst_size,
                      static_cast<unsigned long>(d.total_size));
  if (base % kPage)
    return make_error("blob %s: load address 0x%lx is not page-aligned", d.name,
                      static_cast<unsigned long>(base));
  auto* p = static_cast<unsigned char*>(dst);
  memcpy(p, d.image, d.image_size);
  memset(p + d.image_size, 0, dst_size - d.image_size);
  for (uint64_t i = 0; i < d.nr_relocs; i++) {
    uint64_t off = d.relocs[i];
    if (off > d.image_size || d.image_size - off < 8)
      return make_error("blob %s: relocation %lu at 0x%lx is outside the image", d.name,
                        static_cast<unsigned long>(i), static_cast<unsigned long>(off));
    uint64_t v;
    memcpy(&v, p + off, 8);
    v += base;
    memcpy(p + off, &v, 8);
  }
  return ok_status();
}

Error blob_error(const BlobDesc& d, const BlobResult& r, pid_t pid, const char* context) {
  char what[sizeof r.what + 1];
  memcpy(what, r.what, sizeof r.what);
  what[sizeof r.what] = 0;
  std::string who = d.name;
  if (context && *context) who = who + " " + context;
  if (r.ret == 0) return make_pid_error(pid, 0, "%s: failed without saying why", who.c_str());
  if (!what[0]) return make_pid_error(pid, -r.ret, "%s: failed", who.c_str());
  // Small numbers (signals, commands) in decimal, addresses in hex, as the
  // blob's own log line does.
  if (r.has_arg && r.arg < kBlobHexFrom)
    return make_pid_error(pid, -r.ret, "%s: %s %lu", who.c_str(), what,
                          static_cast<unsigned long>(r.arg));
  if (r.has_arg)
    return make_pid_error(pid, -r.ret, "%s: %s 0x%lx", who.c_str(), what,
                          static_cast<unsigned long>(r.arg));
  return make_pid_error(pid, -r.ret, "%s: %s", who.c_str(), what);
}

Result<LocalBlob> LocalBlob::map(const BlobDesc& d, size_t extra) {
  size_t size = d.map_size() + ((extra + kPage - 1) & ~(kPage - 1));
  void* a = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (a == MAP_FAILED) return make_errno(errno, "blob %s: mmap %zu bytes", d.name, size);
  LocalBlob b;
  b.desc_ = &d;
  b.addr_ = a;
  b.size_ = size;
  TRY_STATUS(blob_relocate_into(d, a, size, reinterpret_cast<uint64_t>(a)));
  if (d.exec_size && mprotect(a, d.exec_size, PROT_READ | PROT_EXEC) != 0)
    return make_errno(errno, "blob %s: mprotect R-X", d.name);
  return b;
}

LocalBlob::LocalBlob(LocalBlob&& o) noexcept
    : desc_(std::exchange(o.desc_, nullptr)),
      addr_(std::exchange(o.addr_, nullptr)),
      size_(std::exchange(o.size_, 0)) {}

LocalBlob& LocalBlob::operator=(LocalBlob&& o) noexcept {
  if (this != &o) {
    reset();
    desc_ = std::exchange(o.desc_, nullptr);
    addr_ = std::exchange(o.addr_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

LocalBlob::~LocalBlob() { reset(); }

void LocalBlob::reset() {
  if (addr_) munmap(addr_, size_);
  addr_ = nullptr;
  size_ = 0;
}

}  // namespace cr
