/* ckpt_mmfields: the mm fields a restore sets with PR_SET_MM_MAP.
 *
 * Records /proc/self/cmdline, /proc/self/environ, readlink(/proc/self/exe),
 * /proc/self/auxv (bytes), prctl(PR_GET_AUXV) where the kernel has it, and
 * the mm fields of /proc/self/stat: 26 start_code, 27 end_code,
 * 28 start_stack, 45 start_data, 46 end_data, 47 start_brk, 48 arg_start,
 * 49 arg_end, 50 env_start, 51 env_end.
 * Verifies: every one of them identical after restore (and argv/environ in
 * memory still match /proc).
 *
 * --selftest-corrupt: after READY overwrite the first byte of argv[0] in
 * place (as setproctitle does), so /proc/self/cmdline changes.
 */
#include <sys/prctl.h>

#include "ckpt_common.h"

#ifndef PR_GET_AUXV
#define PR_GET_AUXV 0x41555856
#endif

struct snap {
  char cmdline[8192], environ[65536], exe[4096], auxv[4096], prauxv[4096];
  long ncmd, nenv, nauxv, nprauxv;
  unsigned long f[52];
};
static struct snap before, after;
static const int fields[] = {26, 27, 28, 45, 46, 47, 48, 49, 50, 51};
static const char *field_names[] = {"start_code", "end_code", "start_stack", "start_data", "end_data",
                                    "start_brk",  "arg_start", "arg_end",   "env_start",  "env_end"};

static int take(struct snap *s) {
  s->ncmd = ckpt_read_file("/proc/self/cmdline", s->cmdline, sizeof s->cmdline);
  s->nenv = ckpt_read_file("/proc/self/environ", s->environ, sizeof s->environ);
  s->nauxv = ckpt_read_file("/proc/self/auxv", s->auxv, sizeof s->auxv);
  ssize_t l = readlink("/proc/self/exe", s->exe, sizeof s->exe - 1);
  s->exe[l > 0 ? l : 0] = 0;
  long r = prctl(PR_GET_AUXV, s->prauxv, sizeof s->prauxv, 0, 0);
  s->nprauxv = r < 0 ? -1 : r;
  char b[4096];
  if (ckpt_read_file("/proc/self/stat", b, sizeof b) <= 0) return -1;
  char *p = strrchr(b, ')');
  if (!p) return -1;
  p += 2;
  for (int f = 3; f <= 51 && p; f++) {
    s->f[f] = strtoul(p, NULL, 10);
    p = strchr(p, ' ');
    if (p) p++;
  }
  return s->ncmd > 0 && s->nenv >= 0 && s->nauxv > 0 && *s->exe ? 0 : -1;
}

static void printable(const char *in, long n, char *out, size_t size) {
  size_t o = 0;
  for (long i = 0; i < n && o + 2 < size; i++) out[o++] = in[i] ? in[i] : ' ';
  out[o] = 0;
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  setenv("CKPT_MMFIELDS_LATE", "set after start (not in /proc/self/environ)", 1);
  if (take(&before)) die("read /proc/self");

  ready("exe=%s arg_start=%#lx", before.exe, before.f[48]);
  if (ckpt_corrupt) argv[0][0] ^= 0x20;
  wait_for_term();

  if (take(&after)) fail("cannot read /proc/self files");
  char a[512], b[512];
  if (after.ncmd != before.ncmd || memcmp(after.cmdline, before.cmdline, (size_t)before.ncmd)) {
    printable(after.cmdline, after.ncmd, a, sizeof a);
    printable(before.cmdline, before.ncmd, b, sizeof b);
    fail("/proc/self/cmdline '%s' was '%s'", a, b);
  }
  if (after.nenv != before.nenv || memcmp(after.environ, before.environ, (size_t)before.nenv))
    fail("/proc/self/environ differs (%ld bytes, was %ld)", after.nenv, before.nenv);
  if (strcmp(after.exe, before.exe)) fail("/proc/self/exe '%s' was '%s'", after.exe, before.exe);
  if (after.nauxv != before.nauxv || memcmp(after.auxv, before.auxv, (size_t)before.nauxv))
    fail("/proc/self/auxv differs (%ld bytes, was %ld)", after.nauxv, before.nauxv);
  if (after.nprauxv != before.nprauxv ||
      (before.nprauxv > 0 && memcmp(after.prauxv, before.prauxv, (size_t)before.nprauxv)))
    fail("prctl(PR_GET_AUXV) differs");
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (after.f[fields[i]] != before.f[fields[i]])
      fail("stat field %d (%s) %#lx was %#lx", fields[i], field_names[i], after.f[fields[i]], before.f[fields[i]]);
  /* The memory behind the fields. */
  if (after.f[48] == (unsigned long)argv[0]) {
    if (memcmp(argv[0], after.cmdline, strlen(argv[0]) + 1)) fail("argv[0] in memory differs from cmdline");
  } else
    fail("arg_start %#lx is not argv[0] %p", after.f[48], (void *)argv[0]);
  verdict();
}
