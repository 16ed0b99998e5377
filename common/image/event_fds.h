// Event descriptors in files.img: the state of each eventfd, signalfd,
// timerfd, epoll and inotify open file description (a FileRec of that type, by
// file_id). Dump side: cr-dump/event_fds.cc; restore side:
// cr-restore/event_fds.cc.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>

#include "common/image/bytes.h"
#include <string>
#include <vector>

namespace cr {

struct EventfdRec {
  uint64_t file_id = 0;
  uint64_t count = 0;      // the counter (fdinfo eventfd-count)
  bool semaphore = false;  // EFD_SEMAPHORE
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(EventfdRec, file_id, count, semaphore)

struct SignalfdRec {
  uint64_t file_id = 0;
  uint64_t mask = 0;  // the signals it reads: bit n-1 for signal n (fdinfo sigmask)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SignalfdRec, file_id, mask)

struct TimerfdRec {
  uint64_t file_id = 0;
  int32_t clockid = 0;        // CLOCK_REALTIME, _MONOTONIC, _BOOTTIME, or their _ALARM forms
  int32_t settime_flags = 0;  // TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET
  int64_t value_sec = 0, value_nsec = 0;        // time left until it fires (0: disarmed)
  int64_t interval_sec = 0, interval_nsec = 0;  // its period (0: once)
  uint64_t ticks = 0;         // expirations not yet read
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TimerfdRec, file_id, clockid, settime_flags, value_sec, value_nsec,
                                   interval_sec, interval_nsec, ticks)

// One file watched by an epoll instance, registered under fd number `fd`
// of the process `EpollRec::pid` (fdinfo tfd), which holds that file there.
struct EpollTargetRec {
  int32_t fd = 0;
  uint32_t events = 0;  // EPOLLIN, EPOLLET, ... as registered
  uint64_t data = 0;    // epoll_data, returned with each event
  uint64_t file_id = 0;  // the FileRec at that fd
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(EpollTargetRec, fd, events, data, file_id)

struct EpollRec {
  uint64_t file_id = 0;
  int64_t pid = 0;  // the process whose fd numbers `targets` uses; it registers them at restore
  std::vector<EpollTargetRec> targets;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(EpollRec, file_id, pid, targets)

// One watch of an inotify instance: its watch descriptor (programs keep
// it), the events it asks for, and the watched file, found at dump from the
// kernel's file handle.
struct InotifyWatchRec {
  int32_t wd = 0;
  uint32_t mask = 0;     // IN_* as added (fdinfo mask)
  std::string path;      // absolute
  uint64_t dev = 0, ino = 0;  // of the watched file at dump (st_dev, st_ino)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(InotifyWatchRec, wd, mask, path, dev, ino)

struct InotifyRec {
  uint64_t file_id = 0;
  std::vector<InotifyWatchRec> watches;  // by wd
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(InotifyRec, file_id, watches)

// One mark of a fanotify group: on an inode (a file or directory, found at
// dump from the kernel's file handle), on a mount, or on a whole
// filesystem (either found by a mount point in the task's mount table).
struct FanotifyMarkRec {
  std::string kind;            // "inode", "mount" or "filesystem"
  std::string path;            // the file, or the mount point; absolute
  uint64_t dev = 0, ino = 0;   // of `path` at dump (st_dev, st_ino)
  uint32_t mflags = 0;         // FAN_MARK_IGNORED_SURV_MODIFY, FAN_MARK_EVICTABLE, FAN_MARK_IGNORE (fdinfo mflags)
  uint64_t mask = 0;           // FAN_* events it reports
  uint64_t ignored_mask = 0;   // FAN_* events it ignores
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(FanotifyMarkRec, kind, path, dev, ino, mflags, mask, ignored_mask)

// A fanotify group (fanotify_init): its flags (class, FAN_REPORT_*,
// FAN_UNLIMITED_*, FAN_CLOEXEC, FAN_NONBLOCK), the open flags of the
// descriptors its events carry, and its marks. Restore side:
// cr-restore/fanotify.cc; dump side: cr-dump/fanotify.cc.
struct FanotifyRec {
  uint64_t file_id = 0;
  uint32_t flags = 0;          // fanotify_init flags (fdinfo "fanotify flags")
  uint32_t event_flags = 0;    // fanotify_init event_f_flags (O_RDONLY, O_LARGEFILE, ...)
  std::vector<FanotifyMarkRec> marks;  // in the order fdinfo lists them
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(FanotifyRec, file_id, flags, event_flags, marks)

// A BPF map (array or hash) held by a task: how it was created and every
// entry, read through libbpf.
struct BpfMapEntryRec {
  Bytes key, value;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(BpfMapEntryRec, key, value)

struct BpfMapRec {
  uint64_t file_id = 0;
  uint32_t map_type = 0;  // BPF_MAP_TYPE_ARRAY or BPF_MAP_TYPE_HASH
  std::string name;
  uint32_t key_size = 0, value_size = 0, max_entries = 0;
  uint32_t map_flags = 0;  // BPF_F_NO_PREALLOC, BPF_F_RDONLY_PROG, ...
  bool frozen = false;     // bpf_map_freeze: no more writes from user space
  std::vector<BpfMapEntryRec> entries;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(BpfMapRec, file_id, map_type, name, key_size, value_size, max_entries, map_flags,
                                   frozen, entries)

}  // namespace cr
