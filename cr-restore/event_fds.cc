// Restore side of event descriptors (dump side: cr-dump/event_fds.cc,
// records: common/image/event_fds.h): each eventfd, signalfd, timerfd and
// epoll instance made again with its state; an epoll's targets are
// registered by the process whose fd numbers they use, once its fds are in
// place.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/kernel/uapi.h"
#include "cr-restore/restore.h"

namespace cr {

namespace {

template <typename R>
const R* record_of(const std::vector<R>& v, uint64_t file_id) {
  for (auto& r : v)
    if (r.file_id == file_id) return &r;
  return nullptr;
}

// The clock an _ALARM clock counts on (clock_gettime takes both; kept
// explicit for the absolute-time arithmetic below).
clockid_t base_clock(int32_t c) {
  if (c == CLOCK_REALTIME_ALARM) return CLOCK_REALTIME;
  if (c == CLOCK_BOOTTIME_ALARM) return CLOCK_BOOTTIME;
  return c;
}

}  // namespace

bool is_event_fd_type(const std::string& type) {
  return type == "eventfd" || type == "signalfd" || type == "timerfd" || type == "epoll";
}

Result<int> open_event_fd(const Files& files, const FileRec& f, const std::string& what) {
  const bool nonblock = f.flags & O_NONBLOCK;
  if (f.type == "eventfd") {
    const EventfdRec* r = record_of(files.eventfds, f.id);
    if (!r) return make_error("%s: eventfd %llu has no record", what.c_str(), (unsigned long long)f.id);
    // eventfd() takes an unsigned int; the rest of a larger count is
    // written (it adds to the counter).
    UniqueFd fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | (r->semaphore ? EFD_SEMAPHORE : 0)));
    if (!fd.valid()) return make_errno(errno, "%s: eventfd", what.c_str());
    if (r->count && write(fd.get(), &r->count, sizeof r->count) != sizeof r->count)
      return make_errno(errno, "%s: cannot set the eventfd counter to %llu", what.c_str(),
                        (unsigned long long)r->count);
    if (!nonblock && fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK) < 0)
      return make_errno(errno, "%s: F_SETFL", what.c_str());
    return fd.release();
  }
  if (f.type == "signalfd") {
    const SignalfdRec* r = record_of(files.signalfds, f.id);
    if (!r) return make_error("%s: signalfd %llu has no record", what.c_str(), (unsigned long long)f.id);
    sigset_t mask;
    sigemptyset(&mask);
    for (int sig = 1; sig <= 64; sig++)
      if (r->mask & (1ull << (sig - 1))) sigaddset(&mask, sig);
    int fd = signalfd(-1, &mask, SFD_CLOEXEC | (nonblock ? SFD_NONBLOCK : 0));
    if (fd < 0) return make_errno(errno, "%s: signalfd", what.c_str());
    return fd;
  }
  if (f.type == "timerfd") {
    const TimerfdRec* r = record_of(files.timerfds, f.id);
    if (!r) return make_error("%s: timerfd %llu has no record", what.c_str(), (unsigned long long)f.id);
    UniqueFd fd(timerfd_create(r->clockid, TFD_CLOEXEC | (nonblock ? TFD_NONBLOCK : 0)));
    if (!fd.valid()) return make_errno(errno, "%s: timerfd_create (clock %d)", what.c_str(), r->clockid);
    struct itimerspec its = {{r->interval_sec, r->interval_nsec}, {r->value_sec, r->value_nsec}};
    int flags = 0;
    if ((r->value_sec || r->value_nsec) && (r->settime_flags & TFD_TIMER_ABSTIME)) {
      // The time left, from now, as the absolute time it was set with.
      struct timespec now;
      clock_gettime(base_clock(r->clockid), &now);
      its.it_value.tv_sec += now.tv_sec;
      its.it_value.tv_nsec += now.tv_nsec;
      if (its.it_value.tv_nsec >= 1000000000) its.it_value.tv_sec++, its.it_value.tv_nsec -= 1000000000;
      flags = r->settime_flags;
    }
    if (timerfd_settime(fd.get(), flags, &its, nullptr) < 0) return make_errno(errno, "%s: timerfd_settime", what.c_str());
    uint64_t ticks = r->ticks;
    if (ticks && ioctl(fd.get(), uapi::TFD_IOC_SET_TICKS, &ticks) < 0)
      return make_errno(errno, "%s: cannot give the timerfd its %llu unread expirations (TFD_IOC_SET_TICKS)",
                        what.c_str(), (unsigned long long)ticks);
    return fd.release();
  }
  if (f.type == "epoll") {
    if (!record_of(files.epolls, f.id))
      return make_error("%s: epoll %llu has no record", what.c_str(), (unsigned long long)f.id);
    int fd = epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) return make_errno(errno, "%s: epoll_create1", what.c_str());
    return fd;
  }
  return make_error("%s: %s is not an event descriptor", what.c_str(), f.type.c_str());
}

Status register_epoll_targets(const Files& files, const FdTable& t) {
  for (auto& ep : files.epolls) {
    if (ep.pid != t.pid) continue;
    int epfd = -1;
    for (auto& d : t.fds)
      if (d.file_id == ep.file_id) epfd = d.fd;
    if (epfd < 0) return make_error("epoll %llu is not in this task's fd table", (unsigned long long)ep.file_id);
    for (auto& tg : ep.targets) {
      struct epoll_event ev;
      // EPOLLERR and EPOLLHUP show in fdinfo; the kernel adds them anyway.
      ev.events = tg.events & ~(EPOLLERR | EPOLLHUP);
      ev.data.u64 = tg.data;
      if (epoll_ctl(epfd, EPOLL_CTL_ADD, tg.fd, &ev) < 0)
        return make_errno(errno, "fd %d: epoll cannot watch fd %d again (events %#x)", epfd, tg.fd, tg.events);
    }
  }
  return ok_status();
}

}  // namespace cr
