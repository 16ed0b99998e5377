// Restore side of SysV shared memory (dump side: cr-dump/sysv_shm.cc,
// record: SysvShmRec in common/image/files.h). cr-restore makes every
// segment of the images itself, before it forks any task, with its dumped
// id (kernel.shm_next_id), key, owner, permissions, lock and contents (from
// its page image, written through the segment's tmpfs file); the
// restorer of each task then attaches it at the dumped addresses (shmat).
// A segment still there from before (same id, key and size, attached by
// nobody: the tree was killed after the dump and the segment, not removed,
// outlived it) is reused: emptied and filled, its old data saved in a
// memfd first. Once the tree is restored, the segments removed
// at dump (SHM_DEST) are removed again; if the restore fails, every segment
// made is removed and every reused one put back as it was found.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>

#include "common/fd.h"
#include "common/image/pages.h"
#include "common/kernel/features.h"
#include "common/log.h"
#include "common/strings.h"
#include "cr-restore/restore.h"

namespace cr {

namespace {

constexpr const char* kNextId = "/proc/sys/kernel/shm_next_id";

Status write_next_id(int id) {
  UniqueFd f(open(kNextId, O_WRONLY | O_CLOEXEC));
  std::string v = std::to_string(id);
  if (!f.valid() || write(f.get(), v.data(), v.size()) != static_cast<ssize_t>(v.size()))
    return make_errno(errno, "cannot write %d to %s", id, kNextId);
  return ok_status();
}

// shmget with the dumped id, creator and permissions: shm_next_id is
// written as root (it needs CAP_CHECKPOINT_RESTORE), then the creator's
// effective ids are taken for shmget alone (it records them as cuid, cgid).
Result<int> create_with_id(const SysvShmRec& m) {
  TRY_STATUS(write_next_id(m.id));
  uid_t euid = geteuid();
  gid_t egid = getegid();
  bool as_creator = m.cgid != egid || m.cuid != euid;
  if (as_creator && (setegid(m.cgid) < 0 || seteuid(m.cuid) < 0)) {
    int e = errno;
    setegid(egid);
    (void)write_next_id(-1);
    return make_errno(e, "SysV segment %d: cannot take its creator's ids %u/%u", m.id, m.cuid, m.cgid);
  }
  int got = shmget(m.key, m.size, static_cast<int>(m.mode & 0777) | IPC_CREAT | IPC_EXCL);
  int e = errno;
  if (as_creator && (seteuid(euid) < 0 || setegid(egid) < 0)) {
    if (got >= 0) shmctl(got, IPC_RMID, nullptr);
    return make_errno(errno, "cannot take back cr-restore's own ids after creating SysV segment %d", m.id);
  }
  if (got < 0) {
    (void)write_next_id(-1);  // unused: the next shmget of anyone would take it
    return make_errno(e, "SysV segment %d (key %#x): shmget of %llu bytes", m.id, (unsigned)m.key,
                      (unsigned long long)m.size);
  }
  if (got != m.id) {
    shmctl(got, IPC_RMID, nullptr);
    return make_error("SysV segment %d (key %#x): the kernel gave id %d instead (another process made a segment "
                      "meanwhile, or that index is taken)",
                      m.id, (unsigned)m.key, got);
  }
  return got;
}

uint64_t page_round(uint64_t n) { return (n + kPageSize - 1) / kPageSize * kPageSize; }

// An attach of cr-restore's own, read-write, and the segment's tmpfs file
// behind it (opened through map_files): what `fn` works on.
Status with_attach(int id, uint64_t size, const std::function<Status(char*, int)>& fn) {
  void* p = shmat(id, nullptr, 0);
  if (p == reinterpret_cast<void*>(-1)) return make_errno(errno, "SysV segment %d: cannot attach it", id);
  char mf[96];
  snprintf(mf, sizeof mf, "/proc/self/map_files/%llx-%llx", (unsigned long long)reinterpret_cast<uint64_t>(p),
           (unsigned long long)(reinterpret_cast<uint64_t>(p) + page_round(size)));
  UniqueFd fd(open(mf, O_RDWR | O_CLOEXEC));
  Status st = fd.valid() ? fn(static_cast<char*>(p), fd.get())
                         : make_errno(errno, "SysV segment %d: cannot open it through map_files", id);
  shmdt(p);
  return st;
}

// Empty the segment (every page back to a hole), then write into it the
// pages of its page image, or of `from` (a saved copy) at their offsets.
Status fill(int id, uint64_t size, const ImageSet* set, const std::string& pagemap, int from) {
  return with_attach(id, size, [&](char* p, int fd) -> Status {
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(page_round(size))) < 0)
      return make_errno(errno, "SysV segment %d: cannot empty it", id);
    if (set) return fill_object_from_pages(*set, pagemap, fd, "SysV segment " + std::to_string(id));
    return for_each_data_range(from, size, [&](uint64_t off, uint64_t len) -> Status {
      size_t got = TRY(pread_full(from, p + off, len, off));
      (void)got;
      return ok_status();
    });
  });
}

// A copy of the segment's data (holes left out) in a memfd of its own.
Result<UniqueFd> save_copy(int id, uint64_t size) {
  UniqueFd copy(memfd_create("crtools-sysv-saved", MFD_CLOEXEC));
  if (!copy.valid() || ftruncate(copy.get(), static_cast<off_t>(size)) < 0)
    return make_errno(errno, "SysV segment %d: cannot make a memfd to save it in", id);
  TRY_STATUS(with_attach(id, size, [&](char* p, int fd) -> Status {
    return for_each_data_range(fd, size, [&](uint64_t off, uint64_t len) -> Status {
      return pwrite_full(copy.get(), p + off, std::min(len, size - off), off);
    });
  }));
  return copy;
}

Status set_attrs(int id, uint32_t uid, uint32_t gid, uint32_t mode) {
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) < 0) return make_errno(errno, "SysV segment %d: IPC_STAT", id);
  ds.shm_perm.uid = uid;
  ds.shm_perm.gid = gid;
  ds.shm_perm.mode = mode & 0777;
  if (shmctl(id, IPC_SET, &ds) < 0) return make_errno(errno, "SysV segment %d: IPC_SET owner %u/%u mode %#o", id, uid, gid, mode & 0777);
  bool locked = ds.shm_perm.mode & kSysvShmLocked;  // as it is now
  if ((mode & kSysvShmLocked) && !locked && shmctl(id, SHM_LOCK, nullptr) < 0)
    return make_errno(errno, "SysV segment %d: SHM_LOCK", id);
  if (!(mode & kSysvShmLocked) && locked && shmctl(id, SHM_UNLOCK, nullptr) < 0)
    return make_errno(errno, "SysV segment %d: SHM_UNLOCK", id);
  return ok_status();
}

}  // namespace

SysvShmRestore::~SysvShmRestore() {
  if (done_) return;
  for (int id : created_) shmctl(id, IPC_RMID, nullptr);
  for (auto& r : reused_) {
    (void)fill(r.id, r.size, nullptr, "", r.data.get());
    (void)set_attrs(r.id, r.uid, r.gid, r.mode);
  }
  if (!created_.empty() || !reused_.empty())
    pr_debug(0, "restore failed: removed the %zu SysV segments made, put back the %zu reused", created_.size(),
             reused_.size());
}

Status SysvShmRestore::prepare(const ImageSet& set, const Files& files) {
  // Everything is checked before the first segment is made.
  std::vector<const SysvShmRec*> make, reuse;
  for (auto& m : files.sysv_shm) {
    struct shmid_ds ds;
    if (shmctl(m.id, IPC_STAT, &ds) == 0) {
      bool same = ds.shm_perm.__key == m.key && ds.shm_segsz == m.size && !(m.mode & kSysvShmDest) &&
                  !(ds.shm_perm.mode & kSysvShmDest);
      if (same && ds.shm_nattch == 0) {
        reuse.push_back(&m);
        continue;
      }
      std::string how = !same ? strprintf("is another segment (key %#x, %zu bytes%s)", (unsigned)ds.shm_perm.__key,
                                          (size_t)ds.shm_segsz, (ds.shm_perm.mode & kSysvShmDest) ? ", removed" : "")
                              : strprintf("is attached %lu times", (unsigned long)ds.shm_nattch);
      Error e = make_error("SysV shared memory segment %d (key %#x) is in use: id %d %s", m.id, (unsigned)m.key,
                           m.id, how.c_str());
      e.remedy = "remove it with 'ipcrm -m " + std::to_string(m.id) + "' or end its users, then restore again";
      return e;
    }
    if (m.key != 0) {
      int other = shmget(m.key, 0, 0);
      if (other >= 0) {
        Error e = make_error("SysV shared memory segment %d: its key %#x is used by segment %d", m.id, (unsigned)m.key,
                             other);
        e.remedy = "remove that one with 'ipcrm -m " + std::to_string(other) + "', then restore again";
        return e;
      }
    }
    make.push_back(&m);
  }
  if (!make.empty()) TRY_STATUS(require_feature(Feature::SysvShmNextId));
  for (const SysvShmRec* m : reuse) {
    struct shmid_ds ds;
    if (shmctl(m->id, IPC_STAT, &ds) < 0) return make_errno(errno, "SysV segment %d: IPC_STAT", m->id);
    Saved s{m->id, ds.shm_perm.uid, ds.shm_perm.gid, ds.shm_perm.mode & (0777u | kSysvShmLocked), m->size,
            TRY(save_copy(m->id, m->size))};
    reused_.push_back(std::move(s));
    TRY_STATUS(fill(m->id, m->size, &set, m->pages, -1));
    TRY_STATUS(set_attrs(m->id, m->uid, m->gid, m->mode));
    pr_debug(0, "SysV segment %d (key %#x) was still there, unattached: reused", m->id, (unsigned)m->key);
  }
  for (const SysvShmRec* m : make) {
    int id = TRY(create_with_id(*m));
    created_.push_back(id);
    TRY_STATUS(fill(id, m->size, &set, m->pages, -1));
    TRY_STATUS(set_attrs(id, m->uid, m->gid, m->mode));
  }
  for (auto& m : files.sysv_shm)
    if (m.mode & kSysvShmDest) dest_.push_back(m.id);
  return ok_status();
}

Status SysvShmRestore::finish() {
  done_ = true;
  // Every task has attached its segments: those removed at dump are removed
  // again (the kernel destroys them at the last detach).
  for (int id : dest_)
    if (shmctl(id, IPC_RMID, nullptr) < 0) return make_errno(errno, "SysV segment %d: IPC_RMID", id);
  return ok_status();
}

}  // namespace cr
