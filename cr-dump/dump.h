// cr-dump's internal interfaces: one file per kind of state (pstree.cc,
// core.cc, memory.cc, files.cc) and the orchestration (main.cc).
#pragma once

#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/image/core.h"
#include "common/image/files.h"
#include "common/image/image_set.h"
#include "common/image/memory.h"
#include "common/image/pstree.h"
#include "common/net_lock.h"
#include "common/options.h"
#include "common/proc/maps.h"
#include "common/ptrace/seized_task.h"
#include "common/remote/remote_session.h"

#include "common/proc/fdinfo.h"

namespace cr {

struct DumpStats {
  double start_us = 0;        // now_us() at the first seize
  double freeze_us = 0;       // from the first seize to the images written
  double memory_us = 0;       // reading and writing pages
  uint64_t pages_scanned = 0;
  uint64_t pages_written = 0;
  uint64_t pages_in_parent = 0;  // shared with the parent, not stored
  uint64_t bytes_written = 0;
};

// ---- pstree.cc
// One frozen process: every thread seized (the leader first), or a zombie.
struct FrozenProc {
  pid_t pid = 0, ppid = 0, pgid = 0, sid = 0;  // ppid 0 for the root
  bool zombie = false;
  int exit_status = 0;
  bool shares_fs = false;     // with its parent (CLONE_FS)
  bool shares_files = false;  // its fd table with its parent (CLONE_FILES)
  std::vector<SeizedTask> threads;
};
// The frozen tree, parents before children. Destroying it detaches every
// thread (the tree runs on), unless the threads were detached or killed.
struct FrozenTree {
  std::vector<FrozenProc> procs;
  size_t nr_threads() const;
};
// Check, before touching it, that `pid` can be the root of a dump: a
// process (not a thread, zombie, kernel thread or crtools itself).
Status check_tree_supported(pid_t pid);
// Seize every thread of every process of the tree rooted at `root`.
Result<FrozenTree> freeze_tree(pid_t root);
// Every frozen process and thread is still there: one killed by someone
// else during the dump (SIGKILL ends even a stopped task) is an error
// naming it; its images would picture a tree that no longer exists.
Status check_tree_intact(const FrozenTree& tree);
// What the restore cannot rebuild yet, refused naming the pid: sessions and
// groups led from outside the tree, seccomp, POSIX timers, threads with
// their own credentials, processes sharing fd tables, fs or memory.
Status check_frozen_tree(FrozenTree& tree);
Result<Pstree> make_pstree(const FrozenTree& tree);

// ---- core.cc
// Everything of the process but memory and files. `rs` is a remote session
// on its frozen leader (its saved registers are the dumped ones); the other
// threads are in `p`.
Result<Core> dump_core(FrozenProc& p, RemoteSession& rs);
// PR_GET_CHILD_SUBREAPER, run in the task.
Result<bool> read_child_subreaper(RemoteSession& rs);

// ---- memory.cc
// Everything of the address space: VMAs and mm fields into `mm`, the pages
// into pagemap-<pid>/pages-<pid>. Unsupported mappings are refused.
Status check_memory_supported(pid_t pid);
// Shared anonymous memory objects go into `files` (once for the tree).
// With `parent` (its frozen parent, dumped already), pages of a private
// mapping that are the very pages of the parent's identical mapping (shared
// copy-on-write since the fork) are recorded as the parent's, not stored.
struct CowParent {
  pid_t pid = 0;
  const Mm* mm = nullptr;
};
Result<Mm> dump_memory(pid_t pid, RemoteSession& rs, ImageSet& set, bool compress, DumpStats& stats, Files& files,
                       const CowParent* parent);

// A shared memory object (shared anonymous memory, memfd, a deleted tmpfs
// file) found through `fd`, saved once in `files`; its ShmemRec id. `path`
// is empty for anonymous memory; `what` names it in errors. A copy of the
// fd is kept for dump_shmem_contents.
Result<uint64_t> dump_shmem_object(pid_t pid, int fd, const std::string& path, const std::string& what, Files& files);
// Once the tree is collected (still frozen): the contents of every shared
// memory object into its own page image (ShmemRec::pages), whose names are
// added to `images`.
Status dump_shmem_contents(ImageSet& set, bool compress, const Files& files, DumpStats& stats,
                           std::vector<std::string>& images);
// The data of a shared object read through `fd` (a tmpfs file of `size`
// bytes) into pagemap-ID/pages-ID: only the pages that hold data and are
// not zero (lseek SEEK_DATA/SEEK_HOLE skips the holes); offsets in the
// object stand for addresses. `what` names it in errors.
Status write_object_pages(ImageSet& set, const std::string& id, int fd, uint64_t size, bool compress,
                          DumpStats& stats, const std::string& what);

// ---- sysv_shm.cc
// An attach of a SysV shared memory segment ("/SYSV%08x" mapped shared).
bool is_sysv_shm(const proc::VmaInfo& v);
// Refuse what restore cannot make: a segment in another IPC namespace, over
// kMaxShmemSize, or mapped there other than as one whole attach (pgoff 0,
// the segment's size in pages). Its IPC_STAT on success.
Result<struct shmid_ds> check_sysv_attach(pid_t pid, const proc::VmaInfo& v);
// The VMA's pointer to its segment (ino: the shmid); the segment itself
// (IPC_STAT) into `files` once for the tree.
Status dump_sysv_shm(pid_t pid, const proc::VmaInfo& v, VmaRec& r, Files& files);
// Once the tree is collected: the contents of every segment into its own
// page image (SysvShmRec::pages), read through an attach of cr-dump's own;
// the names are added to `images`.
Status dump_sysv_contents(ImageSet& set, bool compress, const Files& files, DumpStats& stats,
                          std::vector<std::string>& images);

// ---- files.cc
// The open file descriptions seen so far in the tree, to find those shared
// between processes (kcmp).
struct FileSharing {
  struct Seen {
    pid_t pid;
    int fd;
    uint64_t dev, ino;
    uint64_t id;
  };
  std::vector<Seen> seen;
  // Where each terminal description was first seen (cr-dump/ttys.cc).
  struct TtySeen {
    pid_t pid;
    int fd;
    uint64_t tty_id;  // 0: /dev/tty
    int queued;       // bytes unread at this end
    bool master;
  };
  std::vector<TtySeen> ttys;
};
// The fd table of `pid`, adding its open file descriptions (and pipes, with
// their unread bytes) to `files`. Unsupported kinds of fd are refused,
// naming pid, fd and kind.
// Deleted files are saved up to `ghost_limit` bytes (--ghost-limit).
// File locks are saved with `file_locks` (--file-locks), else refused.
Result<FdTable> dump_files(pid_t pid, Files& files, FileSharing& sharing, uint64_t ghost_limit, bool file_locks);

// ---- file_locks.cc
// The locks fdinfo shows for `pid`'s fd: refused without `allowed`.
Result<std::vector<FileLockRec>> parse_fd_locks(pid_t pid, int fd, const proc::FdInfo& info, bool allowed);
// Into the description's (flock, OFD) or the process's (POSIX) list, once;
// a POSIX lock through an fd whose access allows it (check_posix_locks_placed
// refuses one that found none).
void add_fd_locks(const std::vector<FileLockRec>& locks, const FileRec& file, Files& files, FdTable& t);
Status check_posix_locks_placed(pid_t pid, const std::vector<std::pair<int, std::vector<FileLockRec>>>& seen,
                                const FdTable& t);

// ---- dump_lock.cc
// The exclusive lock of one tree's dump (see dump_lock.cc), held while the
// object lives.
class DumpLock {
 public:
  DumpLock() = default;
  DumpLock(DumpLock&&) = default;
  DumpLock& operator=(DumpLock&&) = default;
  ~DumpLock();

 private:
  friend Result<DumpLock> take_dump_lock(pid_t root);
  UniqueFd fd_;
  std::string path_;
};
// Refused, naming the other cr-dump, while another dump of `root` runs.
Result<DumpLock> take_dump_lock(pid_t root);

// ---- deleted_files.cc
// A regular file deleted while open, behind `pid`'s fd (stat `st`), saved
// once in `files`; its GhostRec id. Refused over `ghost_limit` bytes or
// with other links left.
Result<uint64_t> dump_deleted_file(pid_t pid, int fd, const std::string& path, const struct stat& st,
                                   uint64_t ghost_limit, Files& files);

// ---- event_fds.cc
// "eventfd", "signalfd", "timerfd", "epoll", "inotify", "fanotify" or "bpf-map" for an fd's link
// (anon_inode:[...]), else nullptr.
const char* event_fd_type(const std::string& link);
// The state of event descriptor `f` (its FileRec, just made) into `files`.
// An epoll's targets get their file ids from resolve_epoll_targets, once
// the process's whole fd table is read.
Status dump_event_fd(pid_t pid, int fd, const proc::FdInfo& info, const FileRec& f, Files& files);
Status resolve_epoll_targets(pid_t pid, const FdTable& t, Files& files);

// ---- bpf_maps.cc
// A BPF array or hash map: its description and every entry.
Status dump_bpf_map(pid_t pid, int fd, const FileRec& f, Files& files);

// ---- inotify.cc
// An inotify instance's watches, each with the path of its file.
Status dump_inotify(pid_t pid, int fd, const proc::FdInfo& info, const FileRec& f, Files& files);
// Refused if the notification group behind `pid`'s fd holds unread events
// (FIONREAD on a copy of the description): they cannot be saved.
Status check_no_queued_events(pid_t pid, int fd, const char* kind);

// The file a notification mark or watch is on, from fdinfo's "sdev:..
// ino:.. fhandle-bytes:.. fhandle-type:.. f_handle:.." fields: its path,
// checked to lead to that inode, and st_dev. `what` names the mark for
// messages ("inotify watch 3").
struct MarkedFile {
  std::string path;
  uint64_t dev = 0;
};
Result<MarkedFile> file_of_handle(pid_t pid, int fd, const std::string& what, uint32_t sdev, uint64_t ino, int hbytes,
                                  int htype, const char* hex);

// ---- fanotify.cc
// A fanotify group's flags and marks (inode marks by path, mount and
// filesystem marks by a mount point).
Status dump_fanotify(pid_t pid, int fd, const proc::FdInfo& info, const FileRec& f, Files& files);

// ---- unix_sockets.cc
// A socket at `pid`'s fd (FileRec `f`, type unix, just made): its record
// into `files`; an inet socket goes to dump_inet_socket (f.type becomes
// inet); any other is refused naming pid, fd, family and type.
Status dump_socket(pid_t pid, int fd, FileRec& f, Files& files);

// ---- inet_sockets.cc
// An IPv4 or IPv6 socket at `pid`'s fd (`sk`: our copy of it, `type` its
// SO_TYPE): its record into `files`. TCP listening, unconnected and (with
// the network lock's permission, --tcp-established) established sockets,
// UDP sockets bound or connected with an empty receive queue; anything
// else is refused naming pid, fd, kind and addresses.
Status dump_inet_socket(pid_t pid, int fd, int sk, int type, const FileRec& f, Files& files);

// ---- net_lock_guard.cc
// The guard of a network lock: a process of its own (not of the tree, in a
// session of its own, deaf to SIGINT, SIGTERM and SIGHUP, holding none of
// cr-dump's fds but stderr and the log file; stdin and stdout, which may
// be the image stream, are /dev/null) forked before the first table is
// made, so that a SIGKILLed cr-dump does not leave the tree running with
// its connections in repair mode and blackholed. cr-dump hands it, over a
// socketpair (SCM_RIGHTS), a copy of each socket before putting it in
// repair mode, with its SO_REUSEADDR. On the normal paths cr-dump says how
// the lock ended and reaps it: "undone" (it just exits), "killing" (sent
// before the tree is killed) then "closed" (the tree is dead and the lock
// stays for restore: it closes its copies, still in repair mode, and
// exits; cr-dump waits for that, so a `dump -D - | restore` does not find
// the 4-tuples still held). At end of file without an end (cr-dump died;
// cr-dump's end is inherited by its nft children, so this is also after
// an nft it ran has finished) it does the undo itself: repair mode off,
// SO_REUSEADDR back on each socket, the table deleted (net_unlock) -- unless
// "killing" came and the root dies within 5 s, when the lock stays as after
// a kill. Then it exits, reaped by cr-dump's subreaper or init.
class NetLockGuard {
 public:
  NetLockGuard() = default;
  NetLockGuard(const NetLockGuard&) = delete;
  NetLockGuard& operator=(const NetLockGuard&) = delete;
  ~NetLockGuard() { end(kUndone); }
  bool running() const { return pid_ > 0; }
  // Fork the guard of the lock of the tree rooted at `root`.
  Status start(pid_t root);
  // Hand it a copy of a socket about to go into repair mode (whose
  // SO_REUSEADDR was `reuse`).
  Status hand(int sk, int reuse);
  // The tree is about to be killed.
  void killing();
  // The lock was undone: the guard exits.
  void undone() { end(kUndone); }
  // The tree is dead: the guard closes its copies and exits; returns once
  // it has.
  void closed() { end(kClosed); }
  static constexpr char kUndone = 'U', kClosed = 'C';  // the two ends

 private:
  void end(char how);
  pid_t pid_ = -1;
  UniqueFd ch_;  // our end of the socketpair (inherited by our nft children)
};

// ---- net_lock.cc
// The network lock of one dump (common/net_lock.h): the established TCP
// connections of the tree, each put in repair mode through a copy of its
// fd, and the nftables table that drops their packets. Made in main before
// any fd is read; it is the one current_net_lock() returns. Its
// destructor undoes everything (sockets out of repair mode, table deleted)
// unless release_killed() was called: a failed dump leaves the tree as it
// was. A guard process (NetLockGuard) does the same if cr-dump dies.
class NetLock {
 public:
  NetLock(pid_t root, bool tcp_established);
  ~NetLock();
  NetLock(const NetLock&) = delete;
  NetLock& operator=(const NetLock&) = delete;
  bool tcp_established() const { return tcp_established_; }
  // Lock one connection: its rule first (nothing reaches either end any
  // more), then repair mode on a copy of `sk` (pid's fd `fd`).
  Status add(pid_t pid, int fd, int sk, const TcpTuple& t);
  // The tree is about to be killed (before kill_tree): the guard keeps
  // the lock if cr-dump dies from here and the tree with it.
  void killing();
  // The tree is dead (kill mode): close the copies while in repair mode
  // (nothing is sent), and the guard's; the table stays for cr-restore to
  // delete.
  void release_killed();
  // The tree lives on (-s, --leave-running, a failed dump): repair mode
  // off, table deleted. Idempotent.
  Status undo();
  size_t connections() const { return locked_; }  // locked by this dump

 private:
  pid_t root_;
  bool tcp_established_;
  bool table_made_ = false;
  size_t locked_ = 0;
  std::set<std::string> locked_tuples_;  // "addr port addr port", lower end first
  struct Repaired {
    UniqueFd fd;  // our copy of the socket, in repair mode
    int reuse;    // its SO_REUSEADDR before
  };
  std::vector<Repaired> repaired_;
  NetLockGuard guard_;  // from the first lock on
};
NetLock* current_net_lock();
// Once every process's fds are read: peers, listeners and pending
// connections by file id. A peer outside the tree is refused unless its
// inode (or the socket's) is in `external` (--ext-unix-sk).
Status resolve_unix_sockets(Files& files, const std::vector<std::string>& external);

// ---- ttys.cc
// A pty master or slave, /dev/tty, a console, VT or serial line?
bool is_terminal_device(unsigned long long rdev);
// The terminal behind `pid`'s fd into `f` (its type and tty_id) and
// files.ttys (settings read through a pidfd_getfd copy).
Status dump_tty(pid_t pid, int fd, const std::string& path, const struct stat& st, FileRec& f, Files& files,
                FileSharing& sharing);
// Once every fd is seen: ptys whose master is outside the tree become the
// external terminal (refused without --shell-job, as are fds on any
// terminal outside the tree), data queued in a pty of the tree is refused,
// and the controlling terminal of each process, with its foreground group,
// is recorded (a session leader's outside the tree is refused).
Status resolve_ttys(const FrozenTree& tree, Files& files, const FileSharing& sharing, bool shell_job);

}  // namespace cr
