/* ckpt_task: per-task state across a checkpoint.
 *
 * Before READY:
 *   rlimits    NOFILE 500/1000, CORE 0/1 MiB, NPROC soft 3000, SIGPENDING
 *              soft 5000, MSGQUEUE 400000/800000, STACK soft 6 MiB,
 *              LOCKS 1000/2000, FSIZE 1 GiB/2 GiB, NICE 5/10 (each capped
 *              at the current hard limit: root here cannot raise one)
 *   personality  current | ADDR_NO_RANDOMIZE | UNAME26
 *   umask 027, cwd = ./task-cwd.d (created), comm "ckpt-task-comm"
 *   --creds: supplementary groups {4242, 4243}, gid 4242/4242/0,
 *            uid 4242/4242/0 (saved ids stay 0), dumpable set back to 1
 * Records and verifies identical after restore: all 16 rlimits (getrlimit),
 * personality (and uname(2) reports a 2.6 release), umask, getcwd and
 * /proc/self/cwd, /proc/self/root, PR_GET_NAME and /proc/self/comm, the rseq
 * registration glibc made (same area: rseq(2) with the same area, length
 * and signature answers EBUSY; cpu_id >= 0), get_robust_list head and
 * length, PR_GET_TID_ADDRESS, getresuid, getresgid, getgroups, capability
 * sets, PR_GET_DUMPABLE, PR_GET_NO_NEW_PRIVS, PR_GET_SECUREBITS.
 *
 * --selftest-corrupt: after READY change umask, comm, the NOFILE soft limit
 * and the cwd, unregister rseq and move the robust list head.
 */
#include <linux/capability.h>
#include <grp.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#include "ckpt_common.h"

#define NLIM 16
static const char *lim_names[NLIM] = {"CPU",    "FSIZE",  "DATA",  "STACK",    "CORE",       "RSS",
                                      "NPROC",  "NOFILE", "MEMLOCK", "AS",     "LOCKS",      "SIGPENDING",
                                      "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"};

struct snap {
  struct rlimit lim[NLIM];
  int persona;
  mode_t umask;
  char cwd[4096], proc_cwd[4096], root[4096], comm[32], proc_comm[32];
  int rseq_errno, rseq_len;
  int32_t rseq_cpu;
  void *robust_head;
  size_t robust_len;
  void *tid_addr;
  uid_t r, e, s;
  gid_t rg, eg, sg;
  int ngroups;
  gid_t groups[64];
  uint32_t cap_eff[2], cap_prm[2], cap_inh[2];
  int dumpable, nnp, securebits;
};
static struct snap before, after;

static void *rseq_area(void) { return (char *)__builtin_thread_pointer() + __rseq_offset; }

static void take(struct snap *s) {
  memset(s, 0, sizeof *s);
  for (int i = 0; i < NLIM; i++) getrlimit(i, &s->lim[i]);
  s->persona = personality(0xffffffff);
  s->umask = umask(0);
  umask(s->umask);
  if (!getcwd(s->cwd, sizeof s->cwd)) s->cwd[0] = 0;
  ssize_t l = readlink("/proc/self/cwd", s->proc_cwd, sizeof s->proc_cwd - 1);
  s->proc_cwd[l > 0 ? l : 0] = 0;
  l = readlink("/proc/self/root", s->root, sizeof s->root - 1);
  s->root[l > 0 ? l : 0] = 0;
  prctl(PR_GET_NAME, s->comm);
  ckpt_read_file("/proc/self/comm", s->proc_comm, sizeof s->proc_comm);
  /* rseq: registered with this exact area/length/signature -> EBUSY. A
   * probe that succeeds means there was no registration: undo it. */
  s->rseq_len = -1;
  if (__rseq_size > 0) {
    int lens[2] = {32, (int)__rseq_size};
    for (int i = 0; i < 2; i++) {
      long r = syscall(SYS_rseq, rseq_area(), lens[i], 0, RSEQ_SIG);
      s->rseq_errno = r < 0 ? errno : 0;
      if (r == 0) {
        syscall(SYS_rseq, rseq_area(), lens[i], RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
        break;
      }
      if (errno == EBUSY) {
        s->rseq_len = lens[i];
        break;
      }
    }
    s->rseq_cpu = (int32_t)((struct rseq *)rseq_area())->cpu_id;
  }
  syscall(SYS_get_robust_list, 0, &s->robust_head, &s->robust_len);
  prctl(PR_GET_TID_ADDRESS, &s->tid_addr);
  getresuid(&s->r, &s->e, &s->s);
  getresgid(&s->rg, &s->eg, &s->sg);
  s->ngroups = getgroups(64, s->groups);
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  syscall(SYS_capget, &h, d);
  for (int i = 0; i < 2; i++) s->cap_eff[i] = d[i].effective, s->cap_prm[i] = d[i].permitted, s->cap_inh[i] = d[i].inheritable;
  s->dumpable = prctl(PR_GET_DUMPABLE);
  s->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
  s->securebits = prctl(PR_GET_SECUREBITS);
}

static void lower(int res, rlim_t soft, rlim_t hard) {
  struct rlimit cur;
  if (getrlimit(res, &cur)) die("getrlimit %s", lim_names[res]);
  if (hard == RLIM_INFINITY || (cur.rlim_max != RLIM_INFINITY && hard > cur.rlim_max)) hard = cur.rlim_max;
  if (soft > hard) soft = hard;
  struct rlimit n = {soft, hard};
  if (setrlimit(res, &n)) die("setrlimit %s %lu/%lu", lim_names[res], (unsigned long)soft, (unsigned long)hard);
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  if (mkdir("task-cwd.d", 0755) && errno != EEXIST) die("mkdir task-cwd.d");
  if (chdir("task-cwd.d")) die("chdir");
  if (ckpt_flag(argc, argv, "--creds")) {
    gid_t g[2] = {4242, 4243};
    if (setgroups(2, g) || setresgid(4242, 4242, 0) || setresuid(4242, 4242, 0)) die("switch credentials");
    prctl(PR_SET_DUMPABLE, 1);
  }
  lower(RLIMIT_NOFILE, 500, 1000);
  lower(RLIMIT_CORE, 0, 1 << 20);
  lower(RLIMIT_NPROC, 3000, RLIM_INFINITY);
  lower(RLIMIT_SIGPENDING, 5000, RLIM_INFINITY);
  lower(RLIMIT_MSGQUEUE, 400000, 800000);
  lower(RLIMIT_STACK, 6 << 20, RLIM_INFINITY);
  lower(RLIMIT_LOCKS, 1000, 2000);
  lower(RLIMIT_FSIZE, 1UL << 30, 2UL << 30);
  lower(RLIMIT_NICE, 5, 10);
  int p = personality(0xffffffff);
  if (personality((unsigned long)(p | ADDR_NO_RANDOMIZE | UNAME26)) < 0) die("personality");
  umask(027);
  if (prctl(PR_SET_NAME, "ckpt-task-comm")) die("PR_SET_NAME");

  take(&before);
  if (before.rseq_len < 0 && __rseq_size > 0) die("rseq probe gave errno %d, not EBUSY", before.rseq_errno);

  ready("uid=%d/%d/%d rseq=%s cwd=%s", (int)before.r, (int)before.e, (int)before.s,
        __rseq_size > 0 ? "registered" : "off", before.cwd);
  if (ckpt_corrupt) {
    umask(022);
    prctl(PR_SET_NAME, "corrupted");
    struct rlimit r = {400, before.lim[RLIMIT_NOFILE].rlim_max};
    setrlimit(RLIMIT_NOFILE, &r);
    if (chdir("..")) fail("chdir ..");
    if (before.rseq_len > 0) syscall(SYS_rseq, rseq_area(), before.rseq_len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
    static uint64_t other_head[3];
    syscall(SYS_set_robust_list, other_head, before.robust_len);
  }
  wait_for_term();
  take(&after);

  for (int i = 0; i < NLIM; i++)
    if (after.lim[i].rlim_cur != before.lim[i].rlim_cur || after.lim[i].rlim_max != before.lim[i].rlim_max)
      fail("RLIMIT_%s %lu/%lu was %lu/%lu", lim_names[i], (unsigned long)after.lim[i].rlim_cur,
           (unsigned long)after.lim[i].rlim_max, (unsigned long)before.lim[i].rlim_cur,
           (unsigned long)before.lim[i].rlim_max);
  if (after.persona != before.persona) fail("personality %#x was %#x", after.persona, before.persona);
  struct utsname u;
  if (uname(&u) == 0 && strncmp(u.release, "2.6.", 4)) fail("uname release '%s' despite UNAME26", u.release);
  if (after.umask != before.umask) fail("umask %03o was %03o", after.umask, before.umask);
  if (strcmp(after.cwd, before.cwd)) fail("cwd '%s' was '%s'", after.cwd, before.cwd);
  if (strcmp(after.proc_cwd, before.proc_cwd)) fail("/proc/self/cwd '%s' was '%s'", after.proc_cwd, before.proc_cwd);
  if (strcmp(after.root, before.root)) fail("/proc/self/root '%s' was '%s'", after.root, before.root);
  if (strcmp(after.comm, before.comm)) fail("comm '%s' was '%s'", after.comm, before.comm);
  if (strcmp(after.proc_comm, before.proc_comm)) fail("/proc/self/comm changed ('%.*s')", (int)strcspn(after.proc_comm, "\n"), after.proc_comm);
  if (after.rseq_len != before.rseq_len)
    fail("rseq: not registered as before (probe with glibc's area, length %d: %s)", before.rseq_len,
         after.rseq_errno ? strerror(after.rseq_errno) : "registration succeeded, so there was none");
  if (__rseq_size > 0 && after.rseq_cpu < 0) fail("rseq cpu_id %d", (int)after.rseq_cpu);
  if (after.robust_head != before.robust_head || after.robust_len != before.robust_len)
    fail("robust list %p/%zu was %p/%zu", after.robust_head, after.robust_len, before.robust_head, before.robust_len);
  if (after.tid_addr != before.tid_addr) fail("clear_child_tid %p was %p", after.tid_addr, before.tid_addr);
  if (after.r != before.r || after.e != before.e || after.s != before.s)
    fail("uids %d/%d/%d were %d/%d/%d", (int)after.r, (int)after.e, (int)after.s, (int)before.r, (int)before.e,
         (int)before.s);
  if (after.rg != before.rg || after.eg != before.eg || after.sg != before.sg)
    fail("gids %d/%d/%d were %d/%d/%d", (int)after.rg, (int)after.eg, (int)after.sg, (int)before.rg, (int)before.eg,
         (int)before.sg);
  if (after.ngroups != before.ngroups || memcmp(after.groups, before.groups, sizeof(gid_t) * (size_t)(before.ngroups > 0 ? before.ngroups : 0)))
    fail("supplementary groups differ (%d, were %d)", after.ngroups, before.ngroups);
  if (memcmp(after.cap_eff, before.cap_eff, 8) || memcmp(after.cap_prm, before.cap_prm, 8) ||
      memcmp(after.cap_inh, before.cap_inh, 8))
    fail("capabilities eff %08x%08x prm %08x%08x inh %08x%08x were %08x%08x %08x%08x %08x%08x", after.cap_eff[1],
         after.cap_eff[0], after.cap_prm[1], after.cap_prm[0], after.cap_inh[1], after.cap_inh[0], before.cap_eff[1],
         before.cap_eff[0], before.cap_prm[1], before.cap_prm[0], before.cap_inh[1], before.cap_inh[0]);
  if (after.dumpable != before.dumpable) fail("dumpable %d was %d", after.dumpable, before.dumpable);
  if (after.nnp != before.nnp) fail("no_new_privs %d was %d", after.nnp, before.nnp);
  if (after.securebits != before.securebits) fail("securebits %#x was %#x", after.securebits, before.securebits);
  verdict();
}
