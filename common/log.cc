#include "common/log.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace cr {

namespace {
LogConfig g_cfg;
int g_fd = -1;  // log file, -1: stderr only
bool g_silent = false;
}  // namespace

Status log_init(const LogConfig& cfg) {
  g_cfg = cfg;
  if (g_cfg.verbosity < 0) g_cfg.verbosity = 0;
  if (g_fd >= 0) {
    close(g_fd);
    g_fd = -1;
  }
  if (!cfg.file.empty()) {
    int fd = open(cfg.file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return make_errno(errno, "cannot open log file %s", cfg.file.c_str());
    g_fd = fd;
  }
  return ok_status();
}

void log_close() {
  if (g_fd >= 0) close(g_fd);
  g_fd = -1;
}

void log_set_silent(bool silent) { g_silent = silent; }

int log_verbosity() { return g_cfg.verbosity; }
int log_file_fd() { return g_fd; }
const std::string& log_command() { return g_cfg.command; }
bool log_enabled(LogLevel l) { return !g_silent && static_cast<int>(l) <= g_cfg.verbosity; }

static void write_all(int fd, const char* p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += w;
    n -= w;
  }
}

static void vlog(LogLevel lvl, pid_t pid, const char* fmt, va_list ap) {
  if (!log_enabled(lvl)) return;
  int saved = errno;
  char msg[2048];
  vsnprintf(msg, sizeof msg, fmt, ap);
  // Keep a record on one line.
  for (char* c = msg; *c; c++)
    if (*c == '\n') *c = ' ';

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[40];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);

  const char* tag = lvl == LogLevel::Error ? "error: " : "";
  char line[2300];
  int n;
  if (pid > 0)
    n = snprintf(line, sizeof line, "%s.%03ldZ %s pid %d: %s%s\n", when, ts.tv_nsec / 1000000,
                 g_cfg.command.c_str(), pid, tag, msg);
  else
    n = snprintf(line, sizeof line, "%s.%03ldZ %s: %s%s\n", when, ts.tv_nsec / 1000000,
                 g_cfg.command.c_str(), tag, msg);
  if (n < 0) n = 0;
  if (n >= (int)sizeof line) n = sizeof line - 1;

  if (g_fd >= 0) write_all(g_fd, line, n);
  if (g_fd < 0) {
    write_all(2, line, n);
  } else if (lvl == LogLevel::Error) {
    // Errors also reach the user's terminal, as a short line.
    char e[2200];
    int m = snprintf(e, sizeof e, "%s: %s\n", g_cfg.command.c_str(), msg);
    if (m > (int)sizeof e - 1) m = sizeof e - 1;
    if (m > 0) write_all(2, e, m);
  }
  errno = saved;
}

void log_msg(LogLevel lvl, pid_t pid, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(lvl, pid, fmt, ap);
  va_end(ap);
}

void log_error(const Error& e) {
  if (e.pid > 0) {
    Error copy = e;
    copy.pid = 0;
    log_msg(LogLevel::Error, e.pid, "%s", copy.str().c_str());
  } else {
    log_msg(LogLevel::Error, 0, "%s", e.str().c_str());
  }
}

}  // namespace cr
