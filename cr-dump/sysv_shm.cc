// Dump side of SysV shared memory (record: SysvShmRec in
// common/image/files.h; restore side: cr-restore/sysv_shm.cc and the
// restorer's shmat). A task's attach shows in /proc/PID/maps as
// "/SYSV%08x (deleted)" (the key) and its inode number is the shmid. Each
// segment attached anywhere in the tree is saved once: what IPC_STAT says
// of it (from cr-dump, in the host IPC namespace) and its contents, read
// into a page image of its own through an attach of cr-dump's own (shmat
// SHM_RDONLY, the attach's file opened through map_files, then shmdt).
#include <fcntl.h>
#include <sys/shm.h>
#include <sys/stat.h>

#include <cstring>

#include "common/fd.h"
#include "common/image/pages.h"
#include "common/log.h"
#include "cr-dump/dump.h"

namespace cr {

namespace {

unsigned long long ull(uint64_t v) { return v; }

uint64_t page_round(uint64_t n) { return (n + kPageSize - 1) / kPageSize * kPageSize; }

// The IPC namespace of pid is cr-dump's own; a segment id means something
// only there.
Status check_same_ipc_ns(pid_t pid, uint64_t addr) {
  struct stat mine, theirs;
  std::string p = "/proc/" + std::to_string(pid) + "/ns/ipc";
  if (stat("/proc/self/ns/ipc", &mine) < 0 || stat(p.c_str(), &theirs) < 0)
    return make_pid_error(pid, errno, "address %#llx: cannot compare IPC namespaces", ull(addr));
  if (mine.st_ino != theirs.st_ino || mine.st_dev != theirs.st_dev)
    return make_pid_error(pid, 0, "address %#llx: SysV shared memory in another IPC namespace is not supported",
                          ull(addr));
  return ok_status();
}

}  // namespace

bool is_sysv_shm(const proc::VmaInfo& v) { return v.shared && v.path.rfind("/SYSV", 0) == 0; }

Result<struct shmid_ds> check_sysv_attach(pid_t pid, const proc::VmaInfo& v) {
  TRY_STATUS(check_same_ipc_ns(pid, v.start));
  const int id = static_cast<int>(v.inode);
  struct shmid_ds ds;
  memset(&ds, 0, sizeof ds);
  // IPC_STAT works on a segment already removed (SHM_DEST) while attached.
  if (v.inode > 0x7fffffff || shmctl(id, IPC_STAT, &ds) < 0)
    return make_pid_error(pid, errno, "SysV shared memory at %#llx: no segment %llu", ull(v.start), ull(v.inode));
  if (ds.shm_segsz > kMaxShmemSize)
    return make_pid_error(pid, 0, "SysV shared memory at %#llx: segment %d of %llu GiB is larger than the %llu GiB a segment may have",
                          ull(v.start), id, ull(ds.shm_segsz >> 30), ull(kMaxShmemSize >> 30));
  // shmat maps the whole segment from offset 0; anything else is what a
  // partial munmap or an mprotect of part of it left, which restore cannot
  // make with shmat alone.
  if (v.pgoff != 0 || v.size() != page_round(ds.shm_segsz))
    return make_pid_error(pid, 0,
                          "SysV shared memory at %#llx-%#llx (segment %d, %llu bytes): only part of the attach is "
                          "mapped there (partly unmapped or mprotected); this is not supported",
                          ull(v.start), ull(v.end), id, ull(ds.shm_segsz));
  return ds;
}

Status dump_sysv_shm(pid_t pid, const proc::VmaInfo& v, VmaRec& r, Files& files) {
  struct shmid_ds ds = TRY(check_sysv_attach(pid, v));
  const int id = static_cast<int>(v.inode);
  r.dev = 0;
  r.ino = v.inode;
  r.file_size = ds.shm_segsz;
  for (auto& m : files.sysv_shm)
    if (m.id == id) return ok_status();
  SysvShmRec m;
  m.id = id;
  m.key = ds.shm_perm.__key;
  m.mode = ds.shm_perm.mode & (0777 | kSysvShmDest | kSysvShmLocked);
  m.uid = ds.shm_perm.uid;
  m.gid = ds.shm_perm.gid;
  m.cuid = ds.shm_perm.cuid;
  m.cgid = ds.shm_perm.cgid;
  m.size = ds.shm_segsz;
  m.pages = sysv_pagemap_name(id);
  pr_debug(pid, "SysV segment %d key %#x mode %#o: %llu bytes", id, (unsigned)m.key, m.mode, ull(m.size));
  files.sysv_shm.push_back(std::move(m));
  return ok_status();
}

Status dump_sysv_contents(ImageSet& set, bool compress, const Files& files, DumpStats& stats,
                          std::vector<std::string>& images) {
  for (auto& m : files.sysv_shm) {
    // Linux lets a segment already marked SHM_DEST be attached (shmctl(2)).
    void* p = shmat(m.id, nullptr, SHM_RDONLY);
    if (p == reinterpret_cast<void*>(-1))
      return make_errno(errno, "SysV shared memory segment %d: cannot attach it to read it", m.id);
    // The attach's file is the segment's tmpfs file: read like any shared
    // memory object, skipping its holes.
    uint64_t len = page_round(m.size);
    char mf[96];
    snprintf(mf, sizeof mf, "/proc/self/map_files/%llx-%llx", ull(reinterpret_cast<uint64_t>(p)),
             ull(reinterpret_cast<uint64_t>(p) + len));
    UniqueFd fd(open(mf, O_RDONLY | O_CLOEXEC));
    int e = errno;
    Status st = ok_status();
    char what[64];
    snprintf(what, sizeof what, "SysV shared memory segment %d", m.id);
    if (!fd.valid()) st = make_errno(e, "%s: cannot open it through %s", what, mf);
    else st = write_object_pages(set, sysv_pages_id(m.id), fd.get(), m.size, compress, stats, what);
    shmdt(p);
    TRY_STATUS(st);
    images.push_back(m.pages);
    images.push_back(image_name(ImageKind::Pages, sysv_pages_id(m.id)));
  }
  return ok_status();
}

}  // namespace cr
