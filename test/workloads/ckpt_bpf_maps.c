/* ckpt_bpf_maps: BPF maps held across a checkpoint (the raw bpf(2) system
 * call: workloads do not link libbpf).
 *
 * Before READY:
 *   fd 40  an array map "ckarr" (key 4 bytes, value 8, 64 entries): entry i
 *          holds ckpt_word(5, i)
 *   fd 41  a hash map "ckhash" (key 8, value 16, 1000 entries, made with
 *          BPF_F_NO_PREALLOC) holding 300 keys k*7919 -> a pattern
 *   fd 42  a hash map "ckfrozen" with 3 entries, frozen (bpf_map_freeze)
 * The child C (fork) shares fd 41.
 * READY "pids=P,C".
 * Verifies after SIGTERM: every array value; the hash holds exactly its
 * 300 keys with their values (walked with GET_NEXT_KEY); map names, types,
 * sizes and flags (BPF_OBJ_GET_INFO_BY_FD); the frozen map refuses an
 * update with EPERM; C adds a key to the shared hash and the parent reads
 * it.
 *
 * --selftest-corrupt: after READY one hash value changes.
 */
#include <linux/bpf.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ckpt_common.h"

static long bpf(int cmd, union bpf_attr *a) { return syscall(__NR_bpf, cmd, a, sizeof *a); }

static int map_create(uint32_t type, const char *name, uint32_t ks, uint32_t vs, uint32_t n, uint32_t flags) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = type;
  a.key_size = ks;
  a.value_size = vs;
  a.max_entries = n;
  a.map_flags = flags;
  strncpy(a.map_name, name, sizeof a.map_name - 1);
  return (int)bpf(BPF_MAP_CREATE, &a);
}

static int update(int fd, const void *k, const void *v) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = fd;
  a.key = (uint64_t)(uintptr_t)k;
  a.value = (uint64_t)(uintptr_t)v;
  a.flags = BPF_ANY;
  return (int)bpf(BPF_MAP_UPDATE_ELEM, &a);
}

static int lookup(int fd, const void *k, void *v) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = fd;
  a.key = (uint64_t)(uintptr_t)k;
  a.value = (uint64_t)(uintptr_t)v;
  return (int)bpf(BPF_MAP_LOOKUP_ELEM, &a);
}

static int next_key(int fd, const void *k, void *next) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = fd;
  a.key = (uint64_t)(uintptr_t)k;
  a.next_key = (uint64_t)(uintptr_t)next;
  return (int)bpf(BPF_MAP_GET_NEXT_KEY, &a);
}

static void hash_value(uint64_t key, uint64_t v[2]) {
  v[0] = ckpt_word(9, key);
  v[1] = ckpt_word(10, key);
}

static void place(int fd, int at) {
  if (fd < 0) die("bpf map for fd %d: %s", at, strerror(errno));
  if (dup2(fd, at) != at) die("dup2");
  close(fd);
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  place(map_create(BPF_MAP_TYPE_ARRAY, "ckarr", 4, 8, 64, 0), 40);
  for (uint32_t i = 0; i < 64; i++) {
    uint64_t v = ckpt_word(5, i);
    if (update(40, &i, &v)) die("array update");
  }
  place(map_create(BPF_MAP_TYPE_HASH, "ckhash", 8, 16, 1000, BPF_F_NO_PREALLOC), 41);
  for (uint64_t k = 0; k < 300; k++) {
    uint64_t key = k * 7919, v[2];
    hash_value(key, v);
    if (update(41, &key, v)) die("hash update");
  }
  place(map_create(BPF_MAP_TYPE_HASH, "ckfrozen", 4, 4, 8, 0), 42);
  for (uint32_t k = 1; k <= 3; k++)
    if (update(42, &k, &k)) die("frozen update");
  union bpf_attr fa;
  memset(&fa, 0, sizeof fa);
  fa.map_fd = 42;
  if (bpf(BPF_MAP_FREEZE, &fa)) die("freeze");
  int go, back[2];
  if (pipe(back)) die("pipe");
  pid_t c = ckpt_fork_waiting(&go);
  if (c == 0) {
    uint64_t key = 424242, v[2] = {1, 2};
    if (update(41, &key, v)) _exit(4);
    if (write(back[1], "d", 1) != 1) _exit(5);
    _exit(0);
  }
  ready("pids=%d,%d", (int)getpid(), (int)c);
  if (ckpt_corrupt) {
    uint64_t key = 7919, v[2] = {0, 0};
    update(41, &key, v);
  }
  wait_for_term();

  for (uint32_t i = 0; i < 64; i++) {
    uint64_t v = 0;
    if (lookup(40, &i, &v) || v != ckpt_word(5, i)) {
      fail("array entry %u differs", i);
      break;
    }
  }
  uint64_t key = 0, next = 0;
  int n = 0, first = 1;
  while (next_key(41, first ? NULL : &key, &next) == 0) {
    first = 0;
    key = next;
    uint64_t v[2], want[2];
    hash_value(key, want);
    if (key % 7919 || key / 7919 >= 300 || lookup(41, &key, v) || v[0] != want[0] || v[1] != want[1]) {
      fail("hash entry %llu is not as set", (unsigned long long)key);
      break;
    }
    n++;
  }
  if (n != 300) fail("the hash holds %d keys, expected 300", n);
  struct {
    int fd;
    const char *name;
    uint32_t type, ks, vs, max, flags;
  } want[] = {{40, "ckarr", BPF_MAP_TYPE_ARRAY, 4, 8, 64, 0},
              {41, "ckhash", BPF_MAP_TYPE_HASH, 8, 16, 1000, BPF_F_NO_PREALLOC},
              {42, "ckfrozen", BPF_MAP_TYPE_HASH, 4, 4, 8, 0}};
  for (int i = 0; i < 3; i++) {
    struct bpf_map_info info;
    memset(&info, 0, sizeof info);
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.info.bpf_fd = want[i].fd;
    a.info.info_len = sizeof info;
    a.info.info = (uint64_t)(uintptr_t)&info;
    if (bpf(BPF_OBJ_GET_INFO_BY_FD, &a) || strcmp(info.name, want[i].name) || info.type != want[i].type ||
        info.key_size != want[i].ks || info.value_size != want[i].vs || info.max_entries != want[i].max ||
        info.map_flags != want[i].flags)
      fail("fd %d: map '%s' type %u sizes %u/%u max %u flags %#x", want[i].fd, info.name, info.type, info.key_size,
           info.value_size, info.max_entries, info.map_flags);
  }
  uint32_t k1 = 1, v9 = 9, v1 = 0;
  if (update(42, &k1, &v9) == 0 || errno != EPERM) fail("the frozen map took an update");
  if (lookup(42, &k1, &v1) || v1 != 1) fail("the frozen map's entry 1 is %u", v1);
  if (write(go, "g", 1) != 1) fail("cannot wake C");
  char b;
  if (read(back[0], &b, 1) != 1) fail("C did not update the shared map");
  int st;
  if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st)) fail("child C ended with %#x", st);
  uint64_t ck = 424242, cv[2] = {0, 0};
  if (lookup(41, &ck, cv) || cv[0] != 1 || cv[1] != 2) fail("C's entry is not in the shared map");
  verdict();
}
