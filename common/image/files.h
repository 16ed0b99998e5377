// files.img: the open file descriptions of the tree; fdinfo-<pid>.img: one
// task's fd table pointing at them. Dump side: cr-dump/files.cc; restore
// side: cr-restore/files.cc.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "common/image/bytes.h"
#include "common/image/event_fds.h"
#include "common/image/format.h"
#include "common/image/inet_sockets.h"
#include "common/image/sockets.h"
#include "common/image/ttys.h"

namespace cr {

// A file lock: flock and OFD locks belong to an open file description
// (FileRec::locks), POSIX locks to a process (FdTable::posix_locks, set
// through the fd `fd` of that process).
struct FileLockRec {
  std::string kind;     // flock, posix, ofd
  bool write = false;   // exclusive (write) or shared (read)
  uint64_t start = 0;   // posix, ofd: the first byte
  uint64_t len = 0;     // posix, ofd: bytes, 0 to the end of the file
  int32_t fd = 0;       // posix: the fd to set it through (a flock/ofd lock: where it was seen)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(FileLockRec, kind, write, start, len, fd)

struct FileRec {
  uint64_t id = 0;        // referenced by FdRec::file_id
  std::string type;       // reg, dir, chr, pipe, fifo, memfd, eventfd, signalfd, timerfd, epoll, inotify, fanotify, bpf-map,
                          // opath (an O_PATH descriptor), ghost (a deleted file), unix, inet,
                          // pty-master, pty-slave, tty-external (the shell job's terminal), dev-tty (/dev/tty)
  std::string path;       // absolute (empty for a pipe)
  uint32_t flags = 0;     // open flags as in fdinfo (O_ACCMODE, O_APPEND, ...)
  uint64_t pos = 0;       // file offset
  uint32_t mode = 0;      // st_mode
  uint64_t dev = 0, ino = 0, rdev = 0;
  uint64_t size = 0;      // st_size at dump (regular files)
  int64_t mtime_ns = 0;   // st_mtim at dump (regular files)
  int64_t btime_ns = 0;   // statx birth time, 0 if the filesystem has none:
                          // tells a replaced file that reuses the inode number
  uint64_t pipe_id = 0;   // type pipe or fifo: the PipeRec this end belongs to
  uint64_t shmem_id = 0;  // type memfd: the ShmemRec it opens
  uint64_t ghost_id = 0;  // type ghost: the GhostRec it opens
  uint64_t tty_id = 0;    // type pty-master, pty-slave, tty-external: its TtyRec
  std::vector<FileLockRec> locks;  // flock and OFD locks it holds (cr-dump --file-locks)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(FileRec, id, type, path, flags, pos, mode, dev, ino, rdev, size, mtime_ns,
                                   btime_ns, pipe_id, shmem_id, ghost_id, tty_id, locks)

// A regular file deleted while open (its fds show "PATH (deleted)"): its
// contents, saved up to cr-dump --ghost-limit, and attributes. Restore
// makes it again at its path (or, if that name is taken, as an unnamed
// file in the same directory), unlinks it at once, and each description
// (FileRec of type ghost) opens it.
struct GhostRec {
  uint64_t id = 0;
  uint64_t dev = 0, ino = 0;  // at dump
  std::string path;           // where it was, absolute
  uint32_t mode = 0;          // st_mode
  uint32_t uid = 0, gid = 0;
  int64_t mtime_ns = 0;
  Bytes data;                 // all of it (its size)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(GhostRec, id, dev, ino, path, mode, uid, gid, mtime_ns, data)

// The largest deleted file cr-dump --ghost-limit may ask to save inline.
inline constexpr uint64_t kMaxGhostSize = 64ull << 20;

// One pipe (both ends share it) or named FIFO: its capacity and the bytes
// in it, unread, at dump time. Each end an fd refers to is its own FileRec
// (type pipe or fifo).
struct PipeRec {
  uint64_t id = 0;      // FileRec pipe_id refers to it
  uint64_t ino = 0;     // the pipe's inode number at dump
  uint64_t size = 0;    // capacity (F_GETPIPE_SZ)
  Bytes data;           // unread bytes, oldest first
  std::string path;     // a FIFO's path; empty for a pipe
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PipeRec, id, ino, size, data, path)

// One shared memory object: shared anonymous memory (mmap MAP_SHARED|
// MAP_ANONYMOUS, shared across fork), a memfd, or a deleted tmpfs file
// mapped shared (a POSIX semaphore or shm object after sem_unlink or
// shm_unlink): its size and seals; its contents are in a page image of
// its own (`pages`, pagemap-shmem-ID.img), whose "addresses" are offsets
// in the object. VMAs of kind "shmem" map it (by dev and ino), shared or
// (a memfd or deleted tmpfs file) private; fds of type memfd refer to it
// (FileRec shmem_id).
struct ShmemRec {
  uint64_t id = 0;              // FileRec shmem_id refers to it
  uint64_t dev = 0, ino = 0;    // its inode at dump
  uint64_t size = 0;            // bytes
  std::string pages;            // its pagemap: shmem_pagemap_name(id)
  std::string path;             // "/memfd:NAME", a deleted file's former path, or empty: anonymous
  int32_t seals = 0;            // a memfd's F_GET_SEALS
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ShmemRec, id, dev, ino, size, pages, path, seals)

// The largest shared memory object or SysV segment an image may hold: a
// sanity bound (1 TiB), far above the address space of any real program's
// shared memory, below anything that would overflow an offset.
inline constexpr uint64_t kMaxShmemSize = 1ull << 40;

// The page images of a shared memory object and of a SysV segment
// ("pagemap-shmem-ID.img" with "pages-shmem-ID.img", "pagemap-sysv-SHMID.img"
// with "pages-sysv-SHMID.img"): a task's are "pagemap-PID.img", digits only,
// so the names never collide.
inline std::string shmem_pages_id(uint64_t id) { return "shmem-" + std::to_string(id); }
inline std::string sysv_pages_id(int32_t shmid) { return "sysv-" + std::to_string(shmid); }
inline std::string shmem_pagemap_name(uint64_t id) { return image_name(ImageKind::Pagemap, shmem_pages_id(id)); }
inline std::string sysv_pagemap_name(int32_t shmid) { return image_name(ImageKind::Pagemap, sysv_pages_id(shmid)); }

// One SysV shared memory segment (shmget) attached by some task of the
// tree, in the host IPC namespace: what IPC_STAT said of it at dump and its
// contents. VMAs of kind "sysv" attach it: their ino is its id (the inode
// number /proc/PID/maps shows for "/SYSV%08x" is the shmid). Restore makes
// it again with the same id (kernel.shm_next_id) before any task exists.
// Its contents are in a page image of its own (`pages`).
struct SysvShmRec {
  int32_t id = 0;        // shmid
  int32_t key = 0;       // IPC key; 0 (IPC_PRIVATE) always once SHM_DEST is set
  uint32_t mode = 0;     // shm_perm.mode: 0777 bits, SHM_DEST (01000), SHM_LOCKED (02000)
  uint32_t uid = 0, gid = 0, cuid = 0, cgid = 0;  // owner and creator
  uint64_t size = 0;     // shm_segsz, bytes
  std::string pages;     // its pagemap (offsets in the segment): sysv_pagemap_name(id)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SysvShmRec, id, key, mode, uid, gid, cuid, cgid, size, pages)

// shm_perm.mode bits besides the permissions (linux/shm.h).
inline constexpr uint32_t kSysvShmDest = 01000;    // SHM_DEST: removed, gone at the last detach
inline constexpr uint32_t kSysvShmLocked = 02000;  // SHM_LOCKED: SHM_LOCK held

struct Files {
  static constexpr ImageKind kKind = ImageKind::Files;
  std::vector<FileRec> files;  // every open file description of the tree
  std::vector<PipeRec> pipes;
  std::vector<ShmemRec> shmem;
  std::vector<SysvShmRec> sysv_shm;  // by id
  std::vector<EventfdRec> eventfds;  // one per FileRec of type eventfd
  std::vector<SignalfdRec> signalfds;
  std::vector<TimerfdRec> timerfds;
  std::vector<EpollRec> epolls;
  std::vector<InotifyRec> inotifies;
  std::vector<BpfMapRec> bpf_maps;
  std::vector<GhostRec> ghosts;
  std::vector<UnixSocketRec> unix_sockets;  // one per FileRec of type unix
  std::vector<FanotifyRec> fanotifies;      // one per FileRec of type fanotify
  std::vector<InetSocketRec> inet_sockets;  // one per FileRec of type inet
  std::vector<TtyRec> ttys;                 // pty pairs and the shell job's terminal
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Files, files, pipes, shmem, sysv_shm, eventfds, signalfds, timerfds, epolls,
                                   inotifies, bpf_maps, ghosts, unix_sockets, fanotifies, inet_sockets, ttys)

struct FdRec {
  int32_t fd = 0;
  bool cloexec = false;
  uint64_t file_id = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(FdRec, fd, cloexec, file_id)

struct FdTable {
  static constexpr ImageKind kKind = ImageKind::Fdinfo;
  int64_t pid = 0;
  std::vector<FdRec> fds;
  std::vector<FileLockRec> posix_locks;  // the POSIX locks the process holds (cr-dump --file-locks)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(FdTable, pid, fds, posix_locks)

}  // namespace cr
