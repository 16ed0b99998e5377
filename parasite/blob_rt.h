// Freestanding runtime for blob code (parasite/, compiled with BLOB_CXXFLAGS,
// never linked with libc). Include this first in every blob source.
//
// Discipline (see ../shared/NOTES.md section 1 and parasite/blob.lds):
// - Everything is declared between `#pragma GCC visibility push(hidden)` and
//   `pop`, externs included; a default-visibility extern turns into a GOT
//   relocation that gen-blob rejects.
// - Only freestanding headers (<stddef.h>, <stdint.h>) and kernel uapi
//   headers (<asm/...>, <linux/...>): no glibc.
// - No global with a constructor or destructor (constinit/constexpr only),
//   no virtual functions, no exceptions, no new/delete, no thread_local,
//   no floating point (-mgeneral-regs-only).
// - System calls return -errno, never set errno.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <asm/unistd.h>
#include <linux/errno.h>

#include "parasite/blob_abi.h"

// Stringify a macro's value, for constants inside top-level asm.
#define CR_BLOB_STR2(x) #x
#define CR_BLOB_STR(x) CR_BLOB_STR2(x)

#pragma GCC visibility push(hidden)

// gcc emits calls to these even under -ffreestanding; blob_rt.cc defines them.
extern "C" {
void* memcpy(void* dst, const void* src, size_t n);
void* memset(void* dst, int c, size_t n);
void* memmove(void* dst, const void* src, size_t n);
int memcmp(const void* a, const void* b, size_t n);

// Start of the blob (offset 0): the entry section of every blob defines it.
extern char __blob_entry[];
}

namespace blob {

// ------------------------------------------------------------- system calls
// x86-64: number in rax, arguments in rdi rsi rdx r10 r8 r9; the kernel
// clobbers rcx and r11 and returns -errno (-4095..-1) on failure.
inline long syscall0(long nr) {
  long ret;
  asm volatile("syscall" : "=a"(ret) : "a"(nr) : "rcx", "r11", "memory");
  return ret;
}
inline long syscall1(long nr, long a1) {
  long ret;
  asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a1) : "rcx", "r11", "memory");
  return ret;
}
inline long syscall2(long nr, long a1, long a2) {
  long ret;
  asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a1), "S"(a2) : "rcx", "r11", "memory");
  return ret;
}
inline long syscall3(long nr, long a1, long a2, long a3) {
  long ret;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(nr), "D"(a1), "S"(a2), "d"(a3)
               : "rcx", "r11", "memory");
  return ret;
}
inline long syscall4(long nr, long a1, long a2, long a3, long a4) {
  long ret;
  register long r10 asm("r10") = a4;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10)
               : "rcx", "r11", "memory");
  return ret;
}
inline long syscall5(long nr, long a1, long a2, long a3, long a4, long a5) {
  long ret;
  register long r10 asm("r10") = a4;
  register long r8 asm("r8") = a5;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8)
               : "rcx", "r11", "memory");
  return ret;
}
inline long syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
  long ret;
  register long r10 asm("r10") = a4;
  register long r8 asm("r8") = a5;
  register long r9 asm("r9") = a6;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return ret;
}

template <class T>
inline long arg(T v) {
  return (long)v;
}

// The calls blobs use so far; add more in the same style.
inline long sys_write(int fd, const void* buf, size_t n) {
  return syscall3(__NR_write, fd, arg(buf), arg(n));
}
inline long sys_getpid() { return syscall0(__NR_getpid); }
inline long sys_gettid() { return syscall0(__NR_gettid); }
inline long sys_umask(unsigned mask) { return syscall1(__NR_umask, mask); }
inline long sys_personality(unsigned long p) { return syscall1(__NR_personality, arg(p)); }
inline long sys_prctl(int op, unsigned long a2, unsigned long a3 = 0, unsigned long a4 = 0,
                      unsigned long a5 = 0) {
  return syscall5(__NR_prctl, op, arg(a2), arg(a3), arg(a4), arg(a5));
}
// act and oact point at the kernel's struct sigaction (cr::BlobSigaction).
inline long sys_rt_sigaction(int sig, const void* act, void* oact) {
  return syscall4(__NR_rt_sigaction, sig, arg(act), arg(oact), cr::kBlobSigsetSize);
}
inline long sys_rt_sigprocmask(int how, const uint64_t* set, uint64_t* oset) {
  return syscall4(__NR_rt_sigprocmask, how, arg(set), arg(oset), cr::kBlobSigsetSize);
}
inline long sys_getitimer(int which, void* value) {
  return syscall2(__NR_getitimer, which, arg(value));
}
inline long sys_sigaltstack(const void* ss, void* old) {
  return syscall2(__NR_sigaltstack, arg(ss), arg(old));
}
inline long sys_mmap(void* addr, size_t len, int prot, int flags, int fd, long off) {
  return syscall6(__NR_mmap, arg(addr), arg(len), prot, flags, fd, off);
}
inline long sys_munmap(void* addr, size_t len) { return syscall2(__NR_munmap, arg(addr), arg(len)); }
[[noreturn]] inline void sys_exit_group(int status) {
  syscall1(__NR_exit_group, status);
  __builtin_unreachable();
}

inline bool is_err(long ret) { return ret < 0 && ret >= -4095; }

// ------------------------------------------------------------- utilities
size_t str_len(const char* s);
// Copy s into dst[0, cap), always NUL-terminated (truncating).
void str_copy(char* dst, size_t cap, const char* s);

// Where the blob runs: the address of __blob_entry (offset 0), rip-relative.
uintptr_t self_base();
// True if the loader added the load base to the absolute relocations:
// a pointer stored in .data (R_X86_64_64) agrees with the rip-relative one.
bool relocated();

// ------------------------------------------------------------- failure path
// Printf-free: a fixed message and at most one number.
void put_str(int fd, const char* s);
void put_dec(int fd, int64_t v);
void put_hex(int fd, uint64_t v);

// Record a failed step in r and, if log_fd >= 0, write one line
// "<blob>: <what> [<arg>]: errno <n>" to it. Returns err (which is -errno).
long fail(cr::BlobResult* r, int log_fd, const char* blob_name, const char* what, long err);
long fail_arg(cr::BlobResult* r, int log_fd, const char* blob_name, const char* what,
              uint64_t arg, long err);
// Clear r (success).
void result_ok(cr::BlobResult* r);

}  // namespace blob

#pragma GCC visibility pop
