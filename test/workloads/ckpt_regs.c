/* ckpt_regs: CPU register state across a checkpoint.
 *
 * An assembly loop loads known values into every general-purpose register
 * but rsp (rax..r15), the vector registers (xmm0-15 with SSE only; ymm0-15
 * with AVX; zmm0-31 and k0-7 with AVX-512, chosen at run time from CPUID and
 * XCR0), the x87 stack st0-7, a non-default x87 control word and MXCSR; it
 * spins polling a flag in memory (RIP-relative, so no register is used)
 * until the SIGTERM handler sets it, then stores every register and the
 * C code compares them with the expected values, naming each that differs.
 * Also: fs_base (a __thread variable's address and value, ARCH_GET_FS) and
 * gs_base (set with ARCH_SET_GS before READY; ARCH_GET_GS and a %gs: load).
 *
 * --amx: where the CPU and kernel offer AMX, ask for the tile data state
 * (arch_prctl ARCH_REQ_XCOMP_PERM) and run a tile computation before READY;
 * after the checkpoint the permission must still be there and a tile
 * computation must run again (without the permission a tile instruction
 * kills the process with SIGILL). READY says "amx" or "no-amx".
 *
 * --selftest-corrupt: the SIGTERM handler edits the interrupted context
 * (r13, xmm5, mxcsr, and through the xsave area ymm6's upper half, k3,
 * zmm9's upper half and zmm20) and the TLS value, so the verdict must name
 * each of them.
 */
#include <asm/prctl.h>
#include <cpuid.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include "ckpt_common.h"

/* Shared with the assembly below (by symbol name, RIP-relative). */
uint64_t ck_exp_gpr[16], ck_act_gpr[16];
uint8_t ck_exp_vec[32 * 64] __attribute__((aligned(64)));
uint8_t ck_act_vec[32 * 64] __attribute__((aligned(64)));
uint64_t ck_exp_k[8], ck_act_k[8];
uint8_t ck_exp_st[80], ck_act_st[80];
uint16_t ck_exp_fcw, ck_act_fcw, ck_saved_fcw;
uint32_t ck_exp_mxcsr, ck_act_mxcsr, ck_saved_mxcsr;
volatile int ck_flag;

/* clang-format off */
#define L16 "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15"
#define L32 L16 ",16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31"
#define FN_BEGIN(name) \
  ".text\n.globl " name "\n.type " name ",@function\n" name ":\n" \
  "push %rbx\npush %rbp\npush %r12\npush %r13\npush %r14\npush %r15\n" \
  "fnstcw ck_saved_fcw(%rip)\nstmxcsr ck_saved_mxcsr(%rip)\n" \
  "fldcw ck_exp_fcw(%rip)\nldmxcsr ck_exp_mxcsr(%rip)\n" \
  ".irp i,7,6,5,4,3,2,1,0\nfldt ck_exp_st+\\i*10(%rip)\n.endr\n"
#define GPR_IN \
  "mov ck_exp_gpr+0(%rip),%rax\nmov ck_exp_gpr+8(%rip),%rbx\nmov ck_exp_gpr+16(%rip),%rcx\n" \
  "mov ck_exp_gpr+24(%rip),%rdx\nmov ck_exp_gpr+32(%rip),%rsi\nmov ck_exp_gpr+40(%rip),%rdi\n" \
  "mov ck_exp_gpr+48(%rip),%rbp\nmov ck_exp_gpr+56(%rip),%r8\nmov ck_exp_gpr+64(%rip),%r9\n" \
  "mov ck_exp_gpr+72(%rip),%r10\nmov ck_exp_gpr+80(%rip),%r11\nmov ck_exp_gpr+88(%rip),%r12\n" \
  "mov ck_exp_gpr+96(%rip),%r13\nmov ck_exp_gpr+104(%rip),%r14\nmov ck_exp_gpr+112(%rip),%r15\n"
#define SPIN "1: pause\ncmpl $0, ck_flag(%rip)\nje 1b\n"
#define GPR_OUT \
  "mov %rax,ck_act_gpr+0(%rip)\nmov %rbx,ck_act_gpr+8(%rip)\nmov %rcx,ck_act_gpr+16(%rip)\n" \
  "mov %rdx,ck_act_gpr+24(%rip)\nmov %rsi,ck_act_gpr+32(%rip)\nmov %rdi,ck_act_gpr+40(%rip)\n" \
  "mov %rbp,ck_act_gpr+48(%rip)\nmov %r8,ck_act_gpr+56(%rip)\nmov %r9,ck_act_gpr+64(%rip)\n" \
  "mov %r10,ck_act_gpr+72(%rip)\nmov %r11,ck_act_gpr+80(%rip)\nmov %r12,ck_act_gpr+88(%rip)\n" \
  "mov %r13,ck_act_gpr+96(%rip)\nmov %r14,ck_act_gpr+104(%rip)\nmov %r15,ck_act_gpr+112(%rip)\n"
#define FN_END(name) \
  ".irp i,0,1,2,3,4,5,6,7\nfstpt ck_act_st+\\i*10(%rip)\n.endr\n" \
  "fnstcw ck_act_fcw(%rip)\nstmxcsr ck_act_mxcsr(%rip)\n" \
  "fldcw ck_saved_fcw(%rip)\nldmxcsr ck_saved_mxcsr(%rip)\n" \
  "pop %r15\npop %r14\npop %r13\npop %r12\npop %rbp\npop %rbx\nret\n.size " name ",.-" name "\n"

__asm__(
  FN_BEGIN("ck_spin_sse")
  ".irp i," L16 "\nmovdqu ck_exp_vec+\\i*64(%rip),%xmm\\i\n.endr\n"
  GPR_IN SPIN GPR_OUT
  ".irp i," L16 "\nmovdqu %xmm\\i,ck_act_vec+\\i*64(%rip)\n.endr\n"
  FN_END("ck_spin_sse")

  FN_BEGIN("ck_spin_avx")
  ".irp i," L16 "\nvmovdqu ck_exp_vec+\\i*64(%rip),%ymm\\i\n.endr\n"
  GPR_IN SPIN GPR_OUT
  ".irp i," L16 "\nvmovdqu %ymm\\i,ck_act_vec+\\i*64(%rip)\n.endr\n"
  "vzeroupper\n"
  FN_END("ck_spin_avx")

#define AVX512_FN(name, kmov) \
  FN_BEGIN(name) \
  ".irp i," L32 "\nvmovdqu64 ck_exp_vec+\\i*64(%rip),%zmm\\i\n.endr\n" \
  ".irp i,0,1,2,3,4,5,6,7\n" kmov " ck_exp_k+\\i*8(%rip),%k\\i\n.endr\n" \
  GPR_IN SPIN GPR_OUT \
  ".irp i,0,1,2,3,4,5,6,7\n" kmov " %k\\i,ck_act_k+\\i*8(%rip)\n.endr\n" \
  ".irp i," L32 "\nvmovdqu64 %zmm\\i,ck_act_vec+\\i*64(%rip)\n.endr\n" \
  "vzeroupper\n" \
  FN_END(name)
  AVX512_FN("ck_spin_avx512bw", "kmovq")
  AVX512_FN("ck_spin_avx512f", "kmovw")
);
/* clang-format on */

void ck_spin_sse(void);
void ck_spin_avx(void);
void ck_spin_avx512bw(void);
void ck_spin_avx512f(void);

static __thread uint64_t tls_var = 0x715715715ULL;
static uint64_t gs_area[4] = {0x6565656565656565ULL, 1, 2, 3};

static int has_avx, has_avx512, has_bw;
static unsigned xsave_off[8]; /* standard-format offsets of xsave components */

static uint64_t xgetbv0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

static void detect(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return;
  int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
  if (!osxsave) return;
  uint64_t xcr0 = xgetbv0();
  has_avx = avx && (xcr0 & 6) == 6;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    has_avx512 = has_avx && ((b >> 16) & 1) && (xcr0 & 0xe0) == 0xe0;
    has_bw = has_avx512 && ((b >> 30) & 1);
  }
  for (unsigned i = 2; i < 8; i++)
    if (__get_cpuid_count(0xd, i, &a, &b, &c, &d)) xsave_off[i] = b;
}

#define CK_ARCH_GET_XCOMP_SUPP 0x1021
#define CK_ARCH_GET_XCOMP_PERM 0x1022
#define CK_ARCH_REQ_XCOMP_PERM 0x1023
#define CK_XTILE_DATA 18

static uint64_t amx_perm(void) {
  uint64_t perm = 0;
  if (syscall(SYS_arch_prctl, CK_ARCH_GET_XCOMP_PERM, &perm)) return 0;
  return perm;
}

/* Ask for the tile data state; 0 where the machine has none. */
static int amx_request(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 24) & 1)) return 0; /* AMX-TILE */
  uint64_t supp = 0;
  if (syscall(SYS_arch_prctl, CK_ARCH_GET_XCOMP_SUPP, &supp) || !(supp & (1ULL << CK_XTILE_DATA))) return 0;
  if (syscall(SYS_arch_prctl, CK_ARCH_REQ_XCOMP_PERM, CK_XTILE_DATA)) die("ARCH_REQ_XCOMP_PERM");
  return 1;
}

/* Load a tile configuration (palette 1, tmm0 16 rows of 64 bytes), zero
 * tmm0, store it over 0xff bytes and release the tiles: 0 if all came back
 * zero. */
static int amx_compute(void) {
  struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
  } __attribute__((aligned(64))) cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  cfg.colsb[0] = 64;
  cfg.rows[0] = 16;
  static uint8_t buf[16 * 64] __attribute__((aligned(64)));
  memset(buf, 0xff, sizeof buf);
  __asm__ volatile("ldtilecfg %0" ::"m"(cfg));
  __asm__ volatile("tilezero %%tmm0" ::);
  __asm__ volatile("tilestored %%tmm0, (%0,%1,1)" ::"r"(buf), "r"(64L) : "memory");
  __asm__ volatile("tilerelease" ::);
  for (size_t i = 0; i < sizeof buf; i++)
    if (buf[i]) return -1;
  return 0;
}

static void flip_xsave(void *fp, unsigned comp, unsigned byte) {
  /* The signal frame holds the standard (non-compacted) XSAVE layout when the
   * kernel says so in the software-reserved bytes (FP_XSTATE_MAGIC1). */
  uint32_t magic;
  memcpy(&magic, (char *)fp + 464, 4);
  if (magic != 0x46505853U || !xsave_off[comp]) return;
  ((unsigned char *)fp)[xsave_off[comp] + byte] ^= 0x5a;
  uint64_t *xstate_bv = (uint64_t *)((char *)fp + 512);
  *xstate_bv |= 1ULL << comp;
}

static void on_term(int sig, siginfo_t *si, void *ucv) {
  (void)sig;
  (void)si;
  ck_flag = 1;
  ckpt_term_flag = 1;
  if (!ckpt_corrupt) return;
  ucontext_t *uc = (ucontext_t *)ucv;
  uc->uc_mcontext.gregs[REG_R13] ^= 0x10;
  fpregset_t fp = uc->uc_mcontext.fpregs;
  fp->_xmm[5].element[0] ^= 1;
  fp->mxcsr ^= 0x2000;
  if (has_avx) flip_xsave(fp, 2, 16 * 6 + 3); /* ymm6 bits 128..255 */
  if (has_avx512) {
    flip_xsave(fp, 5, 8 * 3); /* k3 */
    flip_xsave(fp, 6, 32 * 9 + 1); /* zmm9 bits 256..511 */
    flip_xsave(fp, 7, 64 * 4 + 40); /* zmm20 */
  }
  tls_var++;
}

static const char *gpr_names[15] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8",
                                    "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  detect();

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_term;
  sa.sa_flags = SA_SIGINFO;
  if (sigaction(SIGTERM, &sa, NULL)) die("sigaction");
  sigset_t t;
  sigemptyset(&t);
  sigaddset(&t, SIGTERM);
  sigprocmask(SIG_UNBLOCK, &t, NULL);

  int nvec = has_avx512 ? 32 : 16;
  int width = has_avx512 ? 64 : has_avx ? 32 : 16;
  const char *vname = has_avx512 ? "zmm" : has_avx ? "ymm" : "xmm";
  uint64_t kmask = has_bw ? ~0ULL : 0xffffULL;

  for (int i = 0; i < 15; i++) ck_exp_gpr[i] = ckpt_word(0x5eed0, (uint64_t)i);
  ckpt_fill(ck_exp_vec, sizeof ck_exp_vec, 0x5eed1, 0);
  for (int i = 0; i < 8; i++) ck_exp_k[i] = ckpt_word(0x5eed2, (uint64_t)i) & kmask;
  for (int i = 0; i < 8; i++) {
    long double v = (long double)(i + 1) * 1.000000000000000123L + (long double)i / 7.0L;
    memcpy(ck_exp_st + 10 * i, &v, 10);
  }
  /* x87: 53-bit precision, round down (default 0x037f). MXCSR: round down,
   * flush-to-zero, and denormals-are-zero where supported (default 0x1f80). */
  ck_exp_fcw = 0x067f;
  unsigned char fx[512] __attribute__((aligned(16)));
  memset(fx, 0, sizeof fx);
  __asm__ volatile("fxsave %0" : "=m"(fx));
  uint32_t mxcsr_mask;
  memcpy(&mxcsr_mask, fx + 28, 4);
  if (!mxcsr_mask) mxcsr_mask = 0xffbf;
  ck_exp_mxcsr = (0x1f80 | 0x2000 | 0x8000 | 0x40) & mxcsr_mask;

  /* TLS and gs_base. */
  tls_var = 0x7157157157ULL;
  uint64_t *tls_addr = &tls_var;
  unsigned long fs0 = 0, gs0 = 0;
  if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fs0)) die("ARCH_GET_FS");
  if (syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)gs_area)) die("ARCH_SET_GS");
  if (syscall(SYS_arch_prctl, ARCH_GET_GS, &gs0)) die("ARCH_GET_GS");
  if (gs0 != (unsigned long)gs_area) die("ARCH_GET_GS gave %#lx, set %p", gs0, (void *)gs_area);

  int amx = ckpt_flag(argc, argv, "--amx") ? amx_request() : 0;
  if (amx && amx_compute()) die("a tile computation before READY went wrong");

  ready("%s%d%s fs=%#lx%s", vname, nvec - 1, has_avx512 ? (has_bw ? " k0-7(64)" : " k0-7(16)") : "", fs0,
        amx ? " amx" : ckpt_flag(argc, argv, "--amx") ? " no-amx" : "");

  if (has_avx512)
    has_bw ? ck_spin_avx512bw() : ck_spin_avx512f();
  else if (has_avx)
    ck_spin_avx();
  else
    ck_spin_sse();

  for (int i = 0; i < 15; i++)
    if (ck_act_gpr[i] != ck_exp_gpr[i])
      fail("%s=%#llx expected %#llx", gpr_names[i], (unsigned long long)ck_act_gpr[i],
           (unsigned long long)ck_exp_gpr[i]);
  for (int i = 0; i < nvec; i++) {
    const uint8_t *e = ck_exp_vec + 64 * i, *a = ck_act_vec + 64 * i;
    for (int b = 0; b < width; b++)
      if (e[b] != a[b]) {
        fail("%s%d differs from byte %d (bits %d..%d): got %02x expected %02x", vname, i, b, b / 16 * 128,
             b / 16 * 128 + 127, a[b], e[b]);
        break;
      }
  }
  if (has_avx512)
    for (int i = 0; i < 8; i++)
      if ((ck_act_k[i] & kmask) != ck_exp_k[i])
        fail("k%d=%#llx expected %#llx", i, (unsigned long long)(ck_act_k[i] & kmask),
             (unsigned long long)ck_exp_k[i]);
  for (int i = 0; i < 8; i++)
    if (memcmp(ck_act_st + 10 * i, ck_exp_st + 10 * i, 10)) fail("st%d differs", i);
  if (ck_act_fcw != ck_exp_fcw) fail("x87 control word %#x expected %#x", ck_act_fcw, ck_exp_fcw);
  if (ck_act_mxcsr != ck_exp_mxcsr) fail("mxcsr %#x expected %#x", ck_act_mxcsr, ck_exp_mxcsr);

  unsigned long fs1 = 0, gs1 = 0;
  syscall(SYS_arch_prctl, ARCH_GET_FS, &fs1);
  syscall(SYS_arch_prctl, ARCH_GET_GS, &gs1);
  if (fs1 != fs0) fail("fs_base %#lx expected %#lx", fs1, fs0);
  if (&tls_var != tls_addr) fail("__thread variable at %p expected %p", (void *)&tls_var, (void *)tls_addr);
  if (tls_var != 0x7157157157ULL) fail("__thread variable = %#llx expected 0x7157157157", (unsigned long long)tls_var);
  if (gs1 != (unsigned long)gs_area) fail("gs_base %#lx expected %p", gs1, (void *)gs_area);
  else {
    uint64_t g;
    __asm__ volatile("mov %%gs:0, %0" : "=r"(g));
    if (g != gs_area[0]) fail("%%gs:0 reads %#llx expected %#llx", (unsigned long long)g, (unsigned long long)gs_area[0]);
  }
  if (amx) {
    if (!(amx_perm() & (1ULL << CK_XTILE_DATA))) fail("the AMX tile data permission (ARCH_REQ_XCOMP_PERM) is gone");
    else if (amx_compute()) fail("a tile computation after the checkpoint stored nonzero bytes");
  }
  verdict();
}
