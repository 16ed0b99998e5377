// Dump side of event descriptors (records: common/image/event_fds.h;
// restore side: cr-restore/event_fds.cc): eventfd, signalfd and timerfd
// state from fdinfo; an epoll instance's targets from fdinfo, each checked
// with kcmp (KCMP_EPOLL_TFD) to be the file the process still holds at the
// registered number.
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <map>
#include <set>

#include "common/kernel/features.h"
#include "cr-dump/dump.h"

namespace cr {

namespace {

const std::string* need(pid_t pid, int fd, const proc::FdInfo& info, const char* key, Status& st) {
  const std::string* v = info.find(key);
  if (!v) st = make_pid_error(pid, 0, "fd %d: fdinfo has no '%s' line (this kernel does not show it)", fd, key);
  return v;
}

}  // namespace

const char* event_fd_type(const std::string& link) {
  if (link == "anon_inode:[eventfd]") return "eventfd";
  if (link == "anon_inode:[signalfd]") return "signalfd";
  if (link == "anon_inode:[timerfd]") return "timerfd";
  if (link == "anon_inode:[eventpoll]") return "epoll";
  if (link == "anon_inode:inotify") return "inotify";
  if (link == "anon_inode:[fanotify]") return "fanotify";
  if (link == "anon_inode:bpf-map") return "bpf-map";
  return nullptr;
}

Status dump_event_fd(pid_t pid, int fd, const proc::FdInfo& info, const FileRec& f, Files& files) {
  Status st = ok_status();
  auto bad = [&](const char* what, const std::string& v) {
    return make_pid_error(pid, 0, "fd %d: cannot parse %s '%s' in its fdinfo", fd, what, v.c_str());
  };
  if (f.type == "eventfd") {
    EventfdRec r;
    r.file_id = f.id;
    const std::string* c = need(pid, fd, info, "eventfd-count", st);
    const std::string* s = need(pid, fd, info, "eventfd-semaphore", st);
    if (!st) return st;
    if (sscanf(c->c_str(), "%" SCNx64, &r.count) != 1) return bad("eventfd-count", *c);
    r.semaphore = *s == "1";
    files.eventfds.push_back(r);
    return ok_status();
  }
  if (f.type == "signalfd") {
    SignalfdRec r;
    r.file_id = f.id;
    const std::string* m = need(pid, fd, info, "sigmask", st);
    if (!st) return st;
    if (sscanf(m->c_str(), "%" SCNx64, &r.mask) != 1) return bad("sigmask", *m);
    files.signalfds.push_back(r);
    return ok_status();
  }
  if (f.type == "timerfd") {
    TimerfdRec r;
    r.file_id = f.id;
    const std::string* c = need(pid, fd, info, "clockid", st);
    const std::string* t = need(pid, fd, info, "ticks", st);
    const std::string* fl = need(pid, fd, info, "settime", st);  // "settime flags: 00"
    const std::string* v = need(pid, fd, info, "it_value", st);
    const std::string* i = need(pid, fd, info, "it_interval", st);
    if (!st) return st;
    if (sscanf(c->c_str(), "%" SCNd32, &r.clockid) != 1) return bad("clockid", *c);
    if (sscanf(t->c_str(), "%" SCNu64, &r.ticks) != 1) return bad("ticks", *t);
    if (sscanf(fl->c_str(), "flags: %" SCNo32, &r.settime_flags) != 1) return bad("settime flags", *fl);
    if (sscanf(v->c_str(), "(%" SCNd64 ", %" SCNd64 ")", &r.value_sec, &r.value_nsec) != 2) return bad("it_value", *v);
    if (sscanf(i->c_str(), "(%" SCNd64 ", %" SCNd64 ")", &r.interval_sec, &r.interval_nsec) != 2)
      return bad("it_interval", *i);
    if (r.ticks && !feature_available(Feature::TimerfdSetTicks))
      return make_pid_error(pid, 0, "fd %d: timerfd has %" PRIu64 " unread expirations, which this kernel cannot set "
                            "again (feature timerfd-set-ticks)", fd, r.ticks);
    files.timerfds.push_back(r);
    return ok_status();
  }
  if (f.type == "epoll") {
    EpollRec r;
    r.file_id = f.id;
    r.pid = pid;
    std::set<int> seen;
    for (const std::string& line : info.find_all("tfd")) {
      // "   3 events: 80000019 data:       1234567890  pos:0 ino:40c sdev:10"
      int tfd;
      uint32_t events;
      uint64_t data;
      if (sscanf(line.c_str(), "%d events: %" SCNx32 " data: %" SCNx64, &tfd, &events, &data) != 3)
        return bad("tfd", line);
      if (!seen.insert(tfd).second)
        return make_pid_error(pid, 0, "fd %d: epoll watches two files registered as fd %d; not supported", fd, tfd);
      struct kcmp_epoll_slot slot = {static_cast<uint32_t>(fd), static_cast<uint32_t>(tfd), 0};
      if (syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, tfd, &slot) != 0)
        return make_pid_error(pid, 0, "fd %d: epoll watches a file registered as fd %d, which the process has since "
                              "closed or replaced; not supported", fd, tfd);
      r.targets.push_back({tfd, events, data, 0});  // file ids once the table is read
    }
    files.epolls.push_back(std::move(r));
    return ok_status();
  }
  if (f.type == "inotify") return dump_inotify(pid, fd, info, f, files);
  if (f.type == "fanotify") return dump_fanotify(pid, fd, info, f, files);
  if (f.type == "bpf-map") return dump_bpf_map(pid, fd, f, files);
  return make_pid_error(pid, 0, "fd %d: %s is not an event descriptor", fd, f.type.c_str());
}

Status resolve_epoll_targets(pid_t pid, const FdTable& t, Files& files) {
  std::map<int, uint64_t> file_at;
  for (auto& d : t.fds) file_at[d.fd] = d.file_id;
  for (auto& ep : files.epolls) {
    if (ep.pid != pid) continue;
    for (auto& tg : ep.targets) {
      auto it = file_at.find(tg.fd);
      if (it == file_at.end())
        return make_pid_error(pid, 0, "epoll target fd %d is gone from the fd table", tg.fd);
      tg.file_id = it->second;
    }
  }
  return ok_status();
}

}  // namespace cr
