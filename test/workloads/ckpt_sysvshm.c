/* ckpt_sysvshm: SysV shared memory (shmget/shmat) in a parent and a child
 * across a checkpoint, in the host IPC namespace.
 *
 * Before READY: segment A (IPC_PRIVATE, 3 pages) is attached in the parent
 * (at A1) and filled with a pattern; the parent forks one child (which
 * inherits the attach), attaches A a second time at another address (A2)
 * and removes A (IPC_RMID: SHM_DEST, key IPC_PRIVATE, gone at the last
 * detach). Segment B (key 0x5c000000 | the parent's pid, 2 pages + 100
 * bytes, not removed) is filled by the parent through an attach it then
 * drops; the child attaches B read-only at an address of the kernel's
 * choice.
 * Verifies after restore (SIGTERM to the parent): A and B hold their
 * patterns; A's and B's ids still answer IPC_STAT with the same sizes,
 * SHM_DEST on A, nattch 3 for A and 1 for B; shmget(B's key) gives B's id;
 * a write by the parent in A is seen by the child, and one by the child is
 * seen by the parent through its other attach (a handshake over pipes);
 * writing to the child's read-only attach of B faults (SIGSEGV); shmdt
 * works on every attach, and the counts drop. The parent removes B before
 * it exits so that it does not leak.
 *
 * --big-mib=N: also segment C (IPC_PRIVATE, N MiB, removed), attached by
 * the parent before the fork, mostly holes (ckpt_sparse_owner: parent and
 * child each write some pages before READY). After restore both check it
 * by checksum, and a write by the parent is seen by the child and one by
 * the child by the parent.
 *
 * --selftest-corrupt: after READY the parent flips a byte of A.
 * --partial: the parent unmaps the last page of its second attach of A (a
 * partial munmap, which cr-dump refuses); READY says "partial=ADDR" (the
 * attach). Its checks then leave that page out.
 */
#include <setjmp.h>
#include <sys/shm.h>
#include <sys/wait.h>

#include "ckpt_common.h"

#define ASIZE (3 * CKPT_PAGE)
#define BSIZE (2 * CKPT_PAGE + 100)

static int ida = -1, idb = -1;
static key_t keyb;
static unsigned char *a1, *a2, *bc;
static sigjmp_buf segv_jmp;
static int partial;
#define SEEDC 0xc0c0
static unsigned char *cc; /* C's attach, NULL without --big-mib */
static size_t nc;         /* its pages */

static void on_segv(int sig) {
  (void)sig;
  siglongjmp(segv_jmp, 1);
}

static unsigned char pat(int seg, size_t i) { return (unsigned char)(ckpt_word(0x5157 + seg, i / 8) >> (8 * (i % 8))); }

static void check_seg(const char *name, const unsigned char *p, size_t len, int seg) {
  for (size_t i = 0; i < len; i++) {
    if (seg == 0 && (i == 100 || i == 200)) continue; /* the markers written after restore */
    if (p[i] != pat(seg, i)) {
      fail("%s byte %zu is %#x, expected %#x", name, i, p[i], pat(seg, i));
      return;
    }
  }
}

static void check_stat(const char *name, int id, size_t size, unsigned nattch, int dest) {
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) < 0) {
    fail("%s: IPC_STAT on id %d: %s", name, id, strerror(errno));
    return;
  }
  if (ds.shm_segsz != size) fail("%s: size %zu, expected %zu", name, (size_t)ds.shm_segsz, size);
  if (ds.shm_nattch != nattch) fail("%s: nattch %lu, expected %u", name, (unsigned long)ds.shm_nattch, nattch);
  if (!!(ds.shm_perm.mode & SHM_DEST) != dest) fail("%s: SHM_DEST is %s", name, dest ? "clear" : "set");
}

static void remove_b(void) {
  if (idb >= 0) shmctl(idb, IPC_RMID, NULL);
}

static void setup_die(const char *what) {
  if (ida >= 0) shmctl(ida, IPC_RMID, NULL);
  remove_b();
  die("%s", what);
}

static void child_main(int from_parent, int to_parent) {
  char c;
  if (read(from_parent, &c, 1) != 1) _exit(3);
  /* After restore: the parent wrote A[100]. */
  if (a1[100] != 0xa5) fail("child: the parent's write to A is not visible (%#x)", a1[100]);
  check_seg("child A", a1, ASIZE, 0);
  check_seg("child B", bc, BSIZE, 1);
  if (cc) {
    ckpt_sparse_check("child C", cc, nc, SEEDC);
    unsigned char *mark = cc + CKPT_SPARSE_MARK_PAGE * CKPT_PAGE;
    if (mark[100] != 0xa7) fail("child: the parent's write to C is not visible (%#x)", mark[100]);
    mark[200] = 0x5c;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_segv;
  sigaction(SIGSEGV, &sa, NULL);
  if (sigsetjmp(segv_jmp, 1) == 0) {
    *(volatile unsigned char *)bc = 1;
    fail("child: writing to the read-only attach of B did not fault");
  }
  a1[200] = 0x5a;
  if (shmdt(a1)) fail("child: shmdt A: %s", strerror(errno));
  if (shmdt(bc)) fail("child: shmdt B: %s", strerror(errno));
  c = failed() ? 'F' : 'P';
  ckpt_write_all(to_parent, &c, 1);
  if (failed()) {
    ckpt_say("child %d: %s\n", getpid(), ckpt_fail_buf);
    _exit(1);
  }
  _exit(0);
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  partial = ckpt_flag(argc, argv, "--partial");
  ida = shmget(IPC_PRIVATE, ASIZE, IPC_CREAT | 0600);
  if (ida < 0) die("shmget A");
  const char *big = ckpt_arg(argc, argv, "--big-mib");
  if (big) {
    nc = (size_t)atol(big) * (1024 * 1024 / CKPT_PAGE);
    int idc = shmget(IPC_PRIVATE, nc * CKPT_PAGE, IPC_CREAT | 0600);
    if (idc < 0) setup_die("shmget C");
    cc = shmat(idc, NULL, 0);
    shmctl(idc, IPC_RMID, NULL); /* gone at the last detach */
    if (cc == (void *)-1) setup_die("shmat C");
    ckpt_sparse_fill(cc, nc, 0, SEEDC);
  }
  keyb = (key_t)(0x5c000000 | (getpid() & 0xffffff));
  idb = shmget(keyb, BSIZE, IPC_CREAT | IPC_EXCL | 0640);
  if (idb < 0) setup_die("shmget B");
  a1 = shmat(ida, NULL, 0);
  unsigned char *bp = shmat(idb, NULL, 0);
  if (a1 == (void *)-1 || bp == (void *)-1) setup_die("shmat");
  for (size_t i = 0; i < ASIZE; i++) a1[i] = pat(0, i);
  for (size_t i = 0; i < BSIZE; i++) bp[i] = pat(1, i);
  shmdt(bp);
  int down[2], up[2], rp[2];
  if (pipe(down) || pipe(up) || pipe(rp)) setup_die("pipe");
  pid_t child = fork();
  if (child < 0) setup_die("fork");
  if (child == 0) {
    close(down[1]);
    close(up[0]);
    close(rp[0]);
    bc = shmat(idb, NULL, SHM_RDONLY);
    if (bc == (void *)-1) _exit(2);
    if (cc) ckpt_sparse_fill(cc, nc, 1, SEEDC);
    ckpt_write_all(rp[1], "r", 1);
    close(rp[1]);
    child_main(down[0], up[1]);
  }
  close(down[0]);
  close(up[1]);
  close(rp[1]);
  char c;
  if (read(rp[0], &c, 1) != 1) setup_die("child setup");
  close(rp[0]);
  a2 = shmat(ida, NULL, 0);
  if (a2 == (void *)-1) setup_die("shmat A again");
  if (shmctl(ida, IPC_RMID, NULL)) setup_die("IPC_RMID A");
  if (partial && munmap(a2 + ASIZE - CKPT_PAGE, CKPT_PAGE)) setup_die("munmap part of A");
  ready("pids=%d,%d a=%d b=%d key=%#x partial=%#lx", getpid(), (int)child, ida, idb, (unsigned)keyb,
        partial ? (unsigned long)a2 : 0ul);
  if (ckpt_corrupt) a1[5000] ^= 0xff;
  wait_for_term();

  check_seg("A at its first attach", a1, ASIZE, 0);
  check_seg("A at its second attach", a2, partial ? ASIZE - CKPT_PAGE : ASIZE, 0);
  check_stat("A", ida, ASIZE, 3, 1);
  check_stat("B", idb, BSIZE, 1, 0);
  int again = shmget(keyb, 0, 0);
  if (again != idb) fail("shmget(B's key %#x) gives %d, expected %d", (unsigned)keyb, again, idb);
  a1[100] = 0xa5;
  if (cc) {
    ckpt_sparse_check("C", cc, nc, SEEDC);
    cc[CKPT_SPARSE_MARK_PAGE * CKPT_PAGE + 100] = 0xa7;
  }
  ckpt_write_all(down[1], "w", 1);
  if (read(up[0], &c, 1) != 1) fail("no answer from the child");
  else if (c != 'P') fail("the child found a difference (its line above)");
  int st;
  if (waitpid(child, &st, 0) != child) fail("waitpid child: %s", strerror(errno));
  else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail("child ended with status %#x", st);
  if (a2[200] != 0x5a) fail("the child's write to A is not visible at the second attach (%#x)", a2[200]);
  if (a2[100] != 0xa5) fail("the parent's write to A is not visible at its second attach (%#x)", a2[100]);
  if (cc && cc[CKPT_SPARSE_MARK_PAGE * CKPT_PAGE + 200] != 0x5c)
    fail("the child's write to C is not visible (%#x)", cc[CKPT_SPARSE_MARK_PAGE * CKPT_PAGE + 200]);
  check_stat("A after the child detached", ida, ASIZE, 2, 1);
  check_stat("B after the child detached", idb, BSIZE, 0, 0);
  if (shmdt(a1)) fail("shmdt A: %s", strerror(errno));
  check_stat("A after one detach", ida, ASIZE, 1, 1);
  if (shmdt(a2)) fail("shmdt A again: %s", strerror(errno));
  struct shmid_ds ds;
  if (shmctl(ida, IPC_STAT, &ds) == 0) fail("A is still there after its last detach");
  remove_b();
  verdict();
}
