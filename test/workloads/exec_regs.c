/* exec_regs: checks its own registers across a cr-exec.
 *
 * It loads known patterns into the general registers, ymm0-15, zmm16-31
 * (with AVX-512) and MXCSR, in one asm block, and then either
 *   read: blocks in a raw read(0) system call, or
 *   busy: spins in user mode until a second thread sees a line on stdin,
 * then stores every register back and compares. A tracer that changed any
 * of them and did not put it back makes it print "REGS BAD <what>"; else
 * "REGS OK". The kernel clobbers rax (the result), rcx and r11 in read mode;
 * busy mode checks every general register but rsp and rbp.
 *
 * Output: "READY <pid>", then (busy) "SPINNING", then the verdict, then it
 * answers "ping" with "pong" until stdin closes.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { RAX, RBX, RCX, RDX, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15, NGPR };
static const char* gpr_names[NGPR] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8",
                                      "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

struct area {
  uint64_t gin[16];          /* 0 */
  uint64_t gout[16];         /* 128 */
  uint8_t yin[16 * 32];      /* 256 */
  uint8_t yout[16 * 32];     /* 768 */
  uint8_t zin[16 * 64];      /* 1280 */
  uint8_t zout[16 * 64];     /* 2304 */
  uint32_t mxcsr_in;         /* 3328 */
  uint32_t mxcsr_out;        /* 3332 */
  volatile int32_t flag;     /* 3336 */
  volatile int32_t spinning; /* 3340 */
  uint64_t saved_rbp;        /* 3344 */
  uint64_t avx512;           /* 3352 */
  char buf[64];              /* 3360 */
};
_Static_assert(offsetof(struct area, gout) == 128, "layout");
_Static_assert(offsetof(struct area, yin) == 256, "layout");
_Static_assert(offsetof(struct area, yout) == 768, "layout");
_Static_assert(offsetof(struct area, zin) == 1280, "layout");
_Static_assert(offsetof(struct area, zout) == 2304, "layout");
_Static_assert(offsetof(struct area, mxcsr_in) == 3328, "layout");
_Static_assert(offsetof(struct area, flag) == 3336, "layout");
_Static_assert(offsetof(struct area, spinning) == 3340, "layout");
_Static_assert(offsetof(struct area, saved_rbp) == 3344, "layout");
_Static_assert(offsetof(struct area, avx512) == 3352, "layout");
_Static_assert(offsetof(struct area, buf) == 3360, "layout");

static struct area A __attribute__((aligned(64)));

#define LOAD_VEC                                                                              \
  "ldmxcsr 3328(%%rbp)\n"                                                                     \
  "vmovdqu 256(%%rbp), %%ymm0\n vmovdqu 288(%%rbp), %%ymm1\n vmovdqu 320(%%rbp), %%ymm2\n"     \
  "vmovdqu 352(%%rbp), %%ymm3\n vmovdqu 384(%%rbp), %%ymm4\n vmovdqu 416(%%rbp), %%ymm5\n"     \
  "vmovdqu 448(%%rbp), %%ymm6\n vmovdqu 480(%%rbp), %%ymm7\n vmovdqu 512(%%rbp), %%ymm8\n"     \
  "vmovdqu 544(%%rbp), %%ymm9\n vmovdqu 576(%%rbp), %%ymm10\n vmovdqu 608(%%rbp), %%ymm11\n"   \
  "vmovdqu 640(%%rbp), %%ymm12\n vmovdqu 672(%%rbp), %%ymm13\n vmovdqu 704(%%rbp), %%ymm14\n"  \
  "vmovdqu 736(%%rbp), %%ymm15\n"                                                             \
  "cmpq $0, 3352(%%rbp)\n je 2f\n"                                                            \
  "vmovdqu64 1280(%%rbp), %%zmm16\n vmovdqu64 1344(%%rbp), %%zmm17\n"                         \
  "vmovdqu64 1408(%%rbp), %%zmm18\n vmovdqu64 1472(%%rbp), %%zmm19\n"                         \
  "vmovdqu64 1536(%%rbp), %%zmm20\n vmovdqu64 1600(%%rbp), %%zmm21\n"                         \
  "vmovdqu64 1664(%%rbp), %%zmm22\n vmovdqu64 1728(%%rbp), %%zmm23\n"                         \
  "vmovdqu64 1792(%%rbp), %%zmm24\n vmovdqu64 1856(%%rbp), %%zmm25\n"                         \
  "vmovdqu64 1920(%%rbp), %%zmm26\n vmovdqu64 1984(%%rbp), %%zmm27\n"                         \
  "vmovdqu64 2048(%%rbp), %%zmm28\n vmovdqu64 2112(%%rbp), %%zmm29\n"                         \
  "vmovdqu64 2176(%%rbp), %%zmm30\n vmovdqu64 2240(%%rbp), %%zmm31\n"                         \
  "2:\n"

#define STORE_VEC                                                                             \
  "stmxcsr 3332(%%rbp)\n"                                                                     \
  "vmovdqu %%ymm0, 768(%%rbp)\n vmovdqu %%ymm1, 800(%%rbp)\n vmovdqu %%ymm2, 832(%%rbp)\n"     \
  "vmovdqu %%ymm3, 864(%%rbp)\n vmovdqu %%ymm4, 896(%%rbp)\n vmovdqu %%ymm5, 928(%%rbp)\n"     \
  "vmovdqu %%ymm6, 960(%%rbp)\n vmovdqu %%ymm7, 992(%%rbp)\n vmovdqu %%ymm8, 1024(%%rbp)\n"    \
  "vmovdqu %%ymm9, 1056(%%rbp)\n vmovdqu %%ymm10, 1088(%%rbp)\n vmovdqu %%ymm11, 1120(%%rbp)\n" \
  "vmovdqu %%ymm12, 1152(%%rbp)\n vmovdqu %%ymm13, 1184(%%rbp)\n vmovdqu %%ymm14, 1216(%%rbp)\n" \
  "vmovdqu %%ymm15, 1248(%%rbp)\n"                                                            \
  "cmpq $0, 3352(%%rbp)\n je 3f\n"                                                            \
  "vmovdqu64 %%zmm16, 2304(%%rbp)\n vmovdqu64 %%zmm17, 2368(%%rbp)\n"                         \
  "vmovdqu64 %%zmm18, 2432(%%rbp)\n vmovdqu64 %%zmm19, 2496(%%rbp)\n"                         \
  "vmovdqu64 %%zmm20, 2560(%%rbp)\n vmovdqu64 %%zmm21, 2624(%%rbp)\n"                         \
  "vmovdqu64 %%zmm22, 2688(%%rbp)\n vmovdqu64 %%zmm23, 2752(%%rbp)\n"                         \
  "vmovdqu64 %%zmm24, 2816(%%rbp)\n vmovdqu64 %%zmm25, 2880(%%rbp)\n"                         \
  "vmovdqu64 %%zmm26, 2944(%%rbp)\n vmovdqu64 %%zmm27, 3008(%%rbp)\n"                         \
  "vmovdqu64 %%zmm28, 3072(%%rbp)\n vmovdqu64 %%zmm29, 3136(%%rbp)\n"                         \
  "vmovdqu64 %%zmm30, 3200(%%rbp)\n vmovdqu64 %%zmm31, 3264(%%rbp)\n"                         \
  "3:\n vzeroupper\n"

#define VEC_CLOBBERS                                                                         \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",   \
      "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19",       \
      "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28",       \
      "xmm29", "xmm30", "xmm31"

/* Patterns in, raw read(0, buf, 63), everything out. */
__attribute__((target("avx512f"), noinline)) static void regs_around_read(struct area* a) {
  __asm__ volatile(
      "mov %%rbp, 3344(%%rdi)\n mov %%rdi, %%rbp\n" LOAD_VEC
      "mov 8(%%rbp), %%rbx\n mov 48(%%rbp), %%r8\n mov 56(%%rbp), %%r9\n mov 64(%%rbp), %%r10\n"
      "mov 80(%%rbp), %%r12\n mov 88(%%rbp), %%r13\n mov 96(%%rbp), %%r14\n mov 104(%%rbp), %%r15\n"
      "xor %%eax, %%eax\n xor %%edi, %%edi\n lea 3360(%%rbp), %%rsi\n mov $63, %%edx\n"
      "syscall\n"
      "mov %%rax, 128(%%rbp)\n mov %%rbx, 136(%%rbp)\n mov %%rdx, 152(%%rbp)\n mov %%rsi, 160(%%rbp)\n"
      "mov %%rdi, 168(%%rbp)\n mov %%r8, 176(%%rbp)\n mov %%r9, 184(%%rbp)\n mov %%r10, 192(%%rbp)\n"
      "mov %%r12, 208(%%rbp)\n mov %%r13, 216(%%rbp)\n mov %%r14, 224(%%rbp)\n mov %%r15, 232(%%rbp)\n"
      STORE_VEC "mov 3344(%%rbp), %%rbp\n"
      : "+D"(a)
      :
      : "rax", "rbx", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
        "memory", "cc", VEC_CLOBBERS);
}

/* Patterns in, spin until a->flag, everything out. */
__attribute__((target("avx512f"), noinline)) static void regs_around_spin(struct area* a) {
  __asm__ volatile(
      "mov %%rbp, 3344(%%rdi)\n mov %%rdi, %%rbp\n" LOAD_VEC
      "mov 0(%%rbp), %%rax\n mov 8(%%rbp), %%rbx\n mov 16(%%rbp), %%rcx\n mov 24(%%rbp), %%rdx\n"
      "mov 32(%%rbp), %%rsi\n mov 40(%%rbp), %%rdi\n mov 48(%%rbp), %%r8\n mov 56(%%rbp), %%r9\n"
      "mov 64(%%rbp), %%r10\n mov 72(%%rbp), %%r11\n mov 80(%%rbp), %%r12\n mov 88(%%rbp), %%r13\n"
      "mov 96(%%rbp), %%r14\n mov 104(%%rbp), %%r15\n"
      "movl $1, 3340(%%rbp)\n"
      "1: cmpl $0, 3336(%%rbp)\n je 1b\n"
      "mov %%rax, 128(%%rbp)\n mov %%rbx, 136(%%rbp)\n mov %%rcx, 144(%%rbp)\n mov %%rdx, 152(%%rbp)\n"
      "mov %%rsi, 160(%%rbp)\n mov %%rdi, 168(%%rbp)\n mov %%r8, 176(%%rbp)\n mov %%r9, 184(%%rbp)\n"
      "mov %%r10, 192(%%rbp)\n mov %%r11, 200(%%rbp)\n mov %%r12, 208(%%rbp)\n mov %%r13, 216(%%rbp)\n"
      "mov %%r14, 224(%%rbp)\n mov %%r15, 232(%%rbp)\n"
      STORE_VEC "mov 3344(%%rbp), %%rbp\n"
      : "+D"(a)
      :
      : "rax", "rbx", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
        "memory", "cc", VEC_CLOBBERS);
}

static void fill_patterns(void) {
  for (int i = 0; i < NGPR; i++) A.gin[i] = 0x0101010101010101ull * (uint64_t)(i + 0x11) ^ 0x8000000000000001ull;
  for (size_t i = 0; i < sizeof A.yin; i++) A.yin[i] = (uint8_t)(i * 7 + 3);
  for (size_t i = 0; i < sizeof A.zin; i++) A.zin[i] = (uint8_t)(i * 13 + 5);
  A.mxcsr_in = 0x5f80; /* all exceptions masked, rounding toward +inf */
  A.avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
}

/* Compare; print the verdict. `read_mode`: rax holds the result, rcx/r11
 * are the kernel's, rdi/rsi/rdx are the call's arguments. */
static void verdict(int read_mode) {
  char bad[512] = "";
  for (int i = 0; i < NGPR; i++) {
    uint64_t want = A.gin[i];
    if (read_mode) {
      if (i == RAX || i == RCX || i == R11) continue;
      if (i == RDI) want = 0;
      if (i == RSI) want = (uint64_t)(uintptr_t)A.buf;
      if (i == RDX) want = 63;
    }
    if (A.gout[i] != want) snprintf(bad + strlen(bad), sizeof bad - strlen(bad), " %s", gpr_names[i]);
  }
  for (int r = 0; r < 16; r++)
    if (memcmp(A.yin + 32 * r, A.yout + 32 * r, 32))
      snprintf(bad + strlen(bad), sizeof bad - strlen(bad), " ymm%d", r);
  if (A.avx512)
    for (int r = 0; r < 16; r++)
      if (memcmp(A.zin + 64 * r, A.zout + 64 * r, 64))
        snprintf(bad + strlen(bad), sizeof bad - strlen(bad), " zmm%d", r + 16);
  if (A.mxcsr_in != A.mxcsr_out) snprintf(bad + strlen(bad), sizeof bad - strlen(bad), " mxcsr");
  if (bad[0]) printf("REGS BAD%s\n", bad);
  else if (read_mode) printf("REGS OK read=%ld avx512=%d\n", (long)A.gout[RAX], (int)A.avx512);
  else printf("REGS OK avx512=%d\n", (int)A.avx512);
  fflush(stdout);
}

static void* watcher(void* arg) {
  (void)arg;
  while (!A.spinning) sched_yield();
  printf("SPINNING\n");
  fflush(stdout);
  char c;
  while (read(0, &c, 1) == 1 && c != '\n') {
  }
  A.flag = 1;
  return NULL;
}

static void serve(void) {
  char line[128];
  while (fgets(line, sizeof line, stdin)) {
    if (!strcmp(line, "ping\n")) printf("pong\n");
    else printf("unknown command\n");
    fflush(stdout);
  }
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "read";
  fill_patterns();
  printf("READY %d\n", getpid());
  fflush(stdout);
  if (!strcmp(mode, "read")) {
    regs_around_read(&A);
    __asm__ volatile("ldmxcsr %0" ::"m"((uint32_t){0x1f80}));
    verdict(1);
  } else if (!strcmp(mode, "busy")) {
    pthread_t t;
    pthread_create(&t, NULL, watcher, NULL);
    regs_around_spin(&A);
    __asm__ volatile("ldmxcsr %0" ::"m"((uint32_t){0x1f80}));
    pthread_join(t, NULL);
    verdict(0);
  } else {
    printf("unknown mode %s\n", mode);
    return 2;
  }
  serve();
  return 0;
}
