// cr-restore's internal interfaces: one file per kind of state
// (files.cc, memory.cc, core.cc), the task-side driver (task.cc) and the
// orchestration (main.cc).
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/image/image_set.h"
#include "common/image/sessions.h"
#include "common/image/task_images.h"
#include "common/options.h"

namespace cr {

struct RestoreOptions {
  bool skip_file_check = false;
  bool detached = false;  // -d
  bool shell_job = false;  // --shell-job
};

// ---- pstree.cc
// The plan of the tree, made once in cr-restore before the first fork and
// inherited by every task.
//
// Open file descriptions held by more than one task, and every pipe, are
// made once — by the nearest common ancestor of the tasks holding them —
// at a fixed "transit" fd number above every restored one, and reach the
// others through fork. Each task dups what it holds from there to its own
// numbers and closes the transit range.
struct TreePlan {
  std::vector<int> parent;                 // task index -> its parent's (-1: the root)
  std::vector<std::vector<int>> children;  // task index -> its children's, in pstree order
  int transit_base = 0, transit_end = 0;   // [base, end): the transit fd numbers
  std::map<uint64_t, int> transit_fd;      // file id -> its transit fd number
  std::vector<std::vector<uint64_t>> creates_files;  // task index -> files it opens for the tree
  std::vector<std::vector<uint64_t>> creates_pipes;  // task index -> pipes it makes
  std::map<uint64_t, int> transit_shmem;             // shared memory id -> its transit fd number
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> shmem_of_inode;  // (dev, ino) -> shared memory id
  std::vector<std::vector<uint64_t>> creates_shmem;  // task index -> shared memory objects it makes
  int unix_creator = -1;  // task index that makes every unix socket (unix_sockets.cc); -1: none
  SessionPlan sessions;  // helpers for gone session and group leaders below the root
  std::map<uint64_t, int> transit_ghost;  // deleted file id -> its transit fd (made by cr-restore)
  // Ptys (ttys.cc): each pair made by the nearest common ancestor of the
  // tasks holding its ends, of its session's leader and of the first task
  // of its foreground group; every end at a transit fd (transit_fd), and a
  // slave of each controlling terminal for TIOCSCTTY and TIOCSPGRP.
  std::vector<std::vector<uint64_t>> creates_ttys;  // task index -> tty ids it makes
  std::map<uint64_t, int> transit_ctty;             // tty id -> its slave's transit fd
  std::map<uint64_t, int> fg_task;                  // tty id -> the task index that sets its foreground group
  // --shell-job: cr-restore's terminal (its stdin), opened by cr-restore
  // at this transit fd and inherited by every task; -1: none.
  int transit_ext_tty = -1;
  bool shell_job = false;  // the root makes its own group (restore_session)
};
Result<TreePlan> plan_tree(const SetImages& imgs);
// Every pid and tid of the tree is free (a zombie holding one is given a
// few seconds to be reaped); otherwise an Error naming who holds it.
Status check_pids_free(const SetImages& imgs);
Status check_pid_free_now(pid_t pid);
// clone3 with set_tid: a child process with exactly this pid.
// flags: CLONE_FS for a task sharing its parent's fs information.
pid_t clone_with_pid(pid_t pid, uint64_t flags = 0);
// The same, with an Error naming whoever holds the pid when it is taken.
Result<pid_t> fork_with_pid(pid_t want, uint64_t flags);
// In a new task: its session and process group as dumped.
Status restore_session(const SetImages& imgs, const TreePlan& plan, int index);
// The pids of the helpers that remake the root's gone session and group
// (pstree root_session_gone, root_group_gone), session first; empty if none.
std::vector<pid_t> session_helpers(const SetImages& imgs);
// Those and the helpers of `plan.sessions`: every helper pid of the restore.
std::vector<pid_t> all_helpers(const SetImages& imgs, const TreePlan& plan);
// In the first task cr-restore makes when there are helpers (its pid is the
// session's): setsid(), the group helper if any (setpgid), then the root
// with its pid; each helper exits once it has forked. Never returns.
[[noreturn]] void run_session_helpers(const ImageSet& set, const SetImages& imgs, const TreePlan& plan,
                                      const RestoreOptions& o, int err_fd);
// In a new task restored as a zombie: exit as it did. Never returns.
[[noreturn]] void become_zombie(const PstreeEntry& e);
// In a new task: fork its children with their pids; each goes on in
// restore_task_and_jump. Zombie children are waited for (not reaped). A
// child sharing the fd table (CLONE_FILES) is forked with it and a "done"
// pipe: it tells its parent when it no longer needs the fds the parent's
// restore_files closes (wait_files_sharers).
Status fork_children(const ImageSet& set, const SetImages& imgs, const TreePlan& plan, int index,
                     const RestoreOptions& o, int err_fd);
// In a child sharing its parent's fd table: it is done with the shared fds.
void tell_parent_files_done();
// In a parent: every child sharing its fd table is done (or an Error).
Status wait_files_sharers();

// ---- sysv_shm.cc (runs in cr-restore, before the first fork)
// The SysV shared memory segments of the images, made (or reused) with
// their ids before any task exists; undone unless finish() was called.
class SysvShmRestore {
 public:
  SysvShmRestore() = default;
  SysvShmRestore(const SysvShmRestore&) = delete;
  SysvShmRestore& operator=(const SysvShmRestore&) = delete;
  // Removes every segment made, puts every reused one back as found.
  ~SysvShmRestore();
  // Check them all (a segment at a dumped id that is not the dumped one or
  // is attached, a dumped key taken by another id: refused naming id and
  // key, nothing made), then make each missing one with its id and fill
  // and set up each.
  Status prepare(const ImageSet& set, const Files& files);
  // The tree is restored (every attach made): keep the segments, and
  // remove again those removed at dump (SHM_DEST).
  Status finish();

 private:
  struct Saved {
    int id;
    uint32_t uid, gid, mode;
    uint64_t size;
    UniqueFd data;  // a memfd holding its contents as found
  };
  std::vector<int> created_, dest_;
  std::vector<Saved> reused_;
  bool done_ = false;
};

// ---- files.cc (runs in the task being restored)
// Close every fd except `keep`, then open each dumped fd at its number.
// Returns the lowest fd number above all restored ones (for service fds).
// `keep` fds are moved above the restored ones (their new numbers are
// written back).
// Shared descriptions come from the transit fds of `plan`, which are then
// closed.
Result<int> restore_files(const Files& files, const FdTable& fds, const TreePlan& plan, const RestoreOptions& o,
                          std::vector<int>& keep);
// Open (or make, for pipes) the transit objects task `index` creates for
// the tree, at their transit numbers.
Status create_transit_files(const Files& files, const TreePlan& plan, int index, const RestoreOptions& o);
// Check that a file still is what the dump saw (a regular file: identity
// and size); an error unless o.skip_file_check.
Status check_file_unchanged(const std::string& what, const std::string& path, uint64_t dev, uint64_t ino,
                            uint64_t size, const RestoreOptions& o);
// (in cr-restore, before the first task) Every file the tasks will open or
// map by its path is there and still the dumped one (as the tasks check
// again when they open it): the fds' files, the named FIFOs, each task's
// executable and mapped files. A refusal names the image and record.
Status check_files_here(const SetImages& imgs, const RestoreOptions& o);
// Move fd to the lowest free number >= min (close-on-exec); returns it.
Result<int> move_fd_above(int fd, int min);
// Set the status flags of a description (O_APPEND, O_NONBLOCK, O_ASYNC,
// O_NOATIME) as in `flags`.
Status set_status_flags(int fd, uint32_t flags, const char* what);
// dup3 fd to `at` (close-on-exec) and close fd, also on failure.
Status place_at(int fd, int at, const char* what);

// ---- ttys.cc
// (in the task plan.creates_ttys names) A new pty pair with the settings
// of `t`, every end of it at its transit fd, and the slave kept for its
// session at plan.transit_ctty.
Status make_pty(const Files& files, const TtyRec& t, const TreePlan& plan);
// (in a task, after its session and group and its transit files) A
// session leader takes its controlling terminal (TIOCSCTTY); the first
// task of a foreground group makes it the foreground (TIOCSPGRP).
Status restore_ctty(const SetImages& imgs, const TreePlan& plan, int index);
// A new description of the external terminal (tty-external: cr-restore's
// terminal, --shell-job) or of /dev/tty (dev-tty).
Result<int> open_tty(const FileRec& f, const TreePlan& plan, const std::string& what);
// (in cr-restore, before the first task) With an external terminal in the
// images: cr-restore --shell-job on a terminal (its standard input, or
// else output or error), opened at plan.transit_ext_tty; an Error
// otherwise.
Status open_shell_job_tty(const Files& files, const TreePlan& plan, const RestoreOptions& o);
// cr-restore's terminal handed to a shell job (--shell-job): put back as
// found (settings, foreground group) on destruction unless keep().
class ShellJobTerminal {
 public:
  ShellJobTerminal() = default;
  ShellJobTerminal(const ShellJobTerminal&) = delete;
  ShellJobTerminal& operator=(const ShellJobTerminal&) = delete;
  ~ShellJobTerminal();
  // (every task made and stopped before its last step) If the job was the
  // foreground of its terminal: its dumped settings on this one and its
  // group in the foreground; returns that group (0: nothing done).
  Result<pid_t> take(const SetImages& imgs, const TreePlan& plan);
  // The restore succeeded: leave the terminal to the job.
  void keep() { fd_ = -1; }

 private:
  int fd_ = -1;  // cr-restore's own fd 0, 1 or 2
  TermiosRec saved_;
  pid_t saved_pgrp_ = 0;
};

// ---- unix_sockets.cc (runs in the task plan.unix_creator)
// Every unix socket of the images, connected, named, with its queue,
// options and shutdown state, at its transit fd.
Status make_unix_sockets(const Files& files, const TreePlan& plan);
// (in cr-restore, before the first task) The directories the sockets'
// names are in, and no other kind of file at a path a socket binds.
Status check_unix_sockets_here(const Files& files);

// ---- task.cc: the work inside the new task; never returns on success
// (it ends in the restorer's rt_sigreturn). err_fd reports failures as
// one line; the task then exits.
[[noreturn]] void restore_task_and_jump(const ImageSet& set, const SetImages& imgs, const TreePlan& plan,
                                        int index, const RestoreOptions& o, int err_fd);

}  // namespace cr

#include "parasite/restorer_task_abi.h"

namespace cr {

// ---- memory.cc (runs in the task being restored)
// The restore hole: one region of the address space that collides with no
// dumped VMA and no mapping of cr-restore, holding (in order) the restorer
// blob, the task args, the vDSO temp slot and every premapped VMA.
struct MemoryPlan {
  uint64_t hole_start = 0, hole_end = 0;
  uint64_t blob_at = 0;  // blob_size bytes
  uint64_t args_at = 0;  // args_size bytes
  uint64_t vdso_temp = 0;
  std::vector<RestoreVma> vmas;
  std::vector<RestoreVdsoPart> vdso;
  std::vector<RestoreRange> keep;  // sorted: what the restorer must not unmap
  uint64_t pages_restored = 0;  // bytes
  uint64_t pages_inherited = 0;  // bytes of VMAs taken over from the parent
};
// Choose the hole, reserve it, map every dumped VMA (but the vDSO parts) in
// it and fill the dumped pages. blob_size and args_size are page multiples.
// `parent_vmas`: the parent's premapped VMAs, inherited by the fork; a VMA
// with pages of the parent's (Pagemap::in_parent) is taken over from there,
// its pages still shared copy-on-write.
Result<MemoryPlan> premap_memory(const ImageSet& set, const TaskImages& t, const TreePlan& tree,
                                 const RestoreOptions& o, uint64_t blob_size, uint64_t args_size,
                                 const std::vector<RestoreVma>& parent_vmas);
// (in cr-restore, before the first task) What the memory of each task
// needs of this machine: its vDSO layout, and mm fields that
// PR_SET_MM_MAP takes here (vm.mmap_min_addr, RLIMIT_DATA).
Status check_memory_here(const SetImages& imgs);
// A number in a /proc/sys file (`dflt` if it cannot be read).
uint64_t read_sys_u64(const char* path, uint64_t dflt);
// Make the shared memory objects task `index` creates for the tree (filled
// from their page images, at their transit fd numbers).
Status create_transit_shmem(const ImageSet& set, const Files& files, const TreePlan& tree, int index);
// Write the pages of a shared object's page image (pagemap name) into fd at
// their offsets, a frame at a time; `what` names it in errors.
Status fill_object_from_pages(const ImageSet& set, const std::string& pagemap, int fd, const std::string& what);
// kMadv* bits for VmFlags names.
uint64_t madv_bits(const std::vector<std::string>& vmflags);

}  // namespace cr

namespace cr {

// ---- deleted_files.cc (runs in cr-restore, before the first task)
// Every deleted-but-open file, made again and unlinked, open at its
// transit fd (plan.transit_ghost) for the tasks to inherit.
Status create_deleted_files(const Files& files, const TreePlan& plan);
// cr-restore's own copies, once the first task is forked.
void close_deleted_files(const TreePlan& plan);

// ---- file_locks.cc (runs in the task being restored)
// The flock and OFD locks of description `f`, just opened at `fd`.
Status take_description_locks(const FileRec& f, int fd, const std::string& what);
// The POSIX locks of task `t`, through its fds (all in place).
Status take_posix_locks(const FdTable& t);

// ---- event_fds.cc (runs in the task being restored)
bool is_event_fd_type(const std::string& type);
// A new eventfd, signalfd, timerfd or epoll instance with the state of
// file `f` (close-on-exec; epoll without its targets).
Result<int> open_event_fd(const Files& files, const FileRec& f, const std::string& what);
// ---- bpf_maps.cc (runs in the task being restored)
// A new BPF map with the entries of file `f`.
Result<int> open_bpf_map(const Files& files, const FileRec& f, const std::string& what);

// ---- inet_sockets.cc
// A new inet socket as file `f` (type inet) was dumped: bound, listening,
// connected or (in repair mode) established, with its options and status
// flags. `what` names the fd for messages.
Result<int> open_inet_socket(const Files& files, const FileRec& f, const std::string& what);
// Before the tree is made: a socket of a dumped connection's 4-tuple that
// no file holds any more (closed, still sending its FIN: left by an
// earlier restore that failed after making it) would make the repair-mode
// connect fail (EADDRNOTAVAIL); such orphans are destroyed (SOCK_DESTROY).
// Live connections and TIME_WAIT are left alone.
Status destroy_orphan_connections(const Files& files);


// ---- inotify.cc (runs in the task being restored)
// A new inotify instance with the watches of file `f`, each with its wd.
Result<int> open_inotify(const Files& files, const FileRec& f, const std::string& what, const RestoreOptions& o);

// ---- fanotify.cc (runs in the task being restored)
// A new fanotify group with the flags and marks of file `f`.
Result<int> open_fanotify(const Files& files, const FileRec& f, const std::string& what, const RestoreOptions& o);
// Register again the targets of the epoll instances task `t` dumped, at
// its fd numbers (every fd of `t` is in place).
Status register_epoll_targets(const Files& files, const FdTable& t);

// Refused, naming the pid, if a task of the set ran with credentials that
// cr-restore could not give it (a user other than cr-restore's, groups or
// capabilities it lacks): a restore never hands out more than the caller
// has. Root (CAP_SETUID, CAP_SETGID, CAP_SYS_ADMIN) may give any.
Status check_creds_allowed(const SetImages& imgs);
// (in cr-restore, before the first task) What the restorer will ask of
// this machine for each task: capabilities it knows, hard limits it lets
// us set, an online CPU in each affinity, XSAVE features it grants.
Status check_core_here(const SetImages& imgs);

// ---- core.cc (runs in the task being restored)
// Bytes the task args need (a page multiple).
uint64_t task_args_size(const TaskImages& t);
// Build the RestoreTaskArgs, its arrays and the rt_sigframe at plan.args_at
// (already mapped read-write, task_args_size(t) bytes).
Status fill_task_args(const TaskImages& t, const MemoryPlan& plan, int exe_fd, int log_fd);

}  // namespace cr
