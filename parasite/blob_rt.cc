// Freestanding runtime linked into every blob: the mem* functions gcc calls,
// string helpers, self-location and the printf-free failure path.
#include "parasite/blob_rt.h"

#pragma GCC visibility push(hidden)

// rep movsb/stosb: short, fast on every CPU with ERMS, and written in asm so
// that gcc cannot turn the body back into a call to itself.
extern "C" void* memcpy(void* dst, const void* src, size_t n) {
  void* d = dst;
  asm volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
  return dst;
}

extern "C" void* memset(void* dst, int c, size_t n) {
  void* d = dst;
  asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
  return dst;
}

extern "C" void* memmove(void* dst, const void* src, size_t n) {
  auto d = reinterpret_cast<uintptr_t>(dst);
  auto s = reinterpret_cast<uintptr_t>(src);
  if (d - s >= n) return memcpy(dst, src, n);  // no overlap, or dst below src
  // dst overlaps the tail of src: copy backwards.
  void* dl = reinterpret_cast<char*>(dst) + n - 1;
  const void* sl = reinterpret_cast<const char*>(src) + n - 1;
  asm volatile("std\n\trep movsb\n\tcld" : "+D"(dl), "+S"(sl), "+c"(n) : : "memory");
  return dst;
}

extern "C" int memcmp(const void* a, const void* b, size_t n) {
  const unsigned char* x = static_cast<const unsigned char*>(a);
  const unsigned char* y = static_cast<const unsigned char*>(b);
  for (size_t i = 0; i < n; i++)
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

namespace blob {

size_t str_len(const char* s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

void str_copy(char* dst, size_t cap, const char* s) {
  if (!cap) return;
  size_t n = str_len(s);
  if (n >= cap) n = cap - 1;
  memcpy(dst, s, n);
  dst[n] = 0;
}

uintptr_t self_base() {
  uintptr_t p;
  asm("lea __blob_entry(%%rip), %0" : "=r"(p));
  return p;
}

// Initialised with an absolute address: an R_X86_64_64 relocation that the
// loader must rebase. volatile, so gcc cannot fold the comparison below.
static char* volatile self_abs = __blob_entry;

bool relocated() { return reinterpret_cast<uintptr_t>(self_abs) == self_base(); }

void put_str(int fd, const char* s) {
  if (fd >= 0) sys_write(fd, s, str_len(s));
}

void put_dec(int fd, int64_t v) {
  char buf[24];
  int i = sizeof buf;
  uint64_t u = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  do {
    buf[--i] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) buf[--i] = '-';
  if (fd >= 0) sys_write(fd, buf + i, sizeof buf - i);
}

void put_hex(int fd, uint64_t v) {
  char buf[18];
  int i = sizeof buf;
  do {
    buf[--i] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  buf[--i] = 'x';
  buf[--i] = '0';
  if (fd >= 0) sys_write(fd, buf + i, sizeof buf - i);
}

void result_ok(cr::BlobResult* r) { memset(r, 0, sizeof *r); }

static long record(cr::BlobResult* r, int log_fd, const char* blob_name, const char* what,
                   bool has_arg, uint64_t arg, long err) {
  r->ret = static_cast<int32_t>(err);
  r->has_arg = has_arg;
  r->arg = arg;
  str_copy(r->what, sizeof r->what, what);
  if (log_fd >= 0) {
    put_str(log_fd, blob_name);
    put_str(log_fd, ": ");
    put_str(log_fd, what);
    if (has_arg) {
      put_str(log_fd, " ");
      if (arg < cr::kBlobHexFrom)
        put_dec(log_fd, static_cast<int64_t>(arg));
      else
        put_hex(log_fd, arg);
    }
    put_str(log_fd, ": errno ");
    put_dec(log_fd, -err);
    put_str(log_fd, "\n");
  }
  return err;
}

long fail(cr::BlobResult* r, int log_fd, const char* blob_name, const char* what, long err) {
  return record(r, log_fd, blob_name, what, false, 0, err);
}

long fail_arg(cr::BlobResult* r, int log_fd, const char* blob_name, const char* what,
              uint64_t arg, long err) {
  return record(r, log_fd, blob_name, what, true, arg, err);
}

}  // namespace blob

#pragma GCC visibility pop
