// Logging: one line per event, with a timestamp, the command and the pid it
// concerns. -v 0 errors only, 1 informative (default), 2 debug, 3/4 detail.
// With -o FILE the log goes to FILE and errors are also copied to stderr.
#pragma once

#include <string>

#include <sys/types.h>

#include "common/error.h"

namespace cr {

enum class LogLevel : int { Error = 0, Warn = 1, Info = 1, Debug = 2, Detail = 3, Trace = 4 };

struct LogConfig {
  std::string command = "crtools";  // e.g. "cr-dump"
  int verbosity = 1;
  std::string file;                  // empty: stderr
};

// Set up logging. Opens the log file (0600, appended); returns an error if
// it cannot be opened.
Status log_init(const LogConfig& cfg);
void log_close();
// Silence every log line (a child whose fds 0-2 are no longer ours).
void log_set_silent(bool silent);
int log_verbosity();
// The log file's descriptor (-o FILE), -1 when the log goes to stderr (a
// child that closes what it inherited keeps this one).
int log_file_fd();
const std::string& log_command();
bool log_enabled(LogLevel l);

void log_msg(LogLevel lvl, pid_t pid, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
// Print an Error at error level.
void log_error(const Error& e);

}  // namespace cr

#define pr_err(pid, ...) ::cr::log_msg(::cr::LogLevel::Error, (pid), __VA_ARGS__)
#define pr_warn(pid, ...) ::cr::log_msg(::cr::LogLevel::Warn, (pid), __VA_ARGS__)
#define pr_info(pid, ...) ::cr::log_msg(::cr::LogLevel::Info, (pid), __VA_ARGS__)
#define pr_debug(pid, ...)                                                      \
  do {                                                                          \
    if (::cr::log_enabled(::cr::LogLevel::Debug))                               \
      ::cr::log_msg(::cr::LogLevel::Debug, (pid), __VA_ARGS__);                 \
  } while (0)
#define pr_detail(pid, ...)                                                     \
  do {                                                                          \
    if (::cr::log_enabled(::cr::LogLevel::Detail))                              \
      ::cr::log_msg(::cr::LogLevel::Detail, (pid), __VA_ARGS__);                \
  } while (0)
