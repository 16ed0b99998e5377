// The one option table shared by every crtools command.
//
// Every option any command understands is a row of kOptionTable. Each command
// names the rows it accepts; parse_options() builds getopt_long's tables from
// them, validates values, and reports misuse as a one-line usage error.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "common/error.h"

namespace cr {

enum class Opt : int {
  Tree,             // -t PID
  ImagesDir,        // -D DIR
  LeaveStopped,     // -s
  RestoreDetached,  // -d
  Namespaces,       // -n LIST
  LogFile,          // -o FILE
  Verbosity,        // -v N
  Contents,         // -c
  File,             // -f FILE
  Help,             // -h
  Json,             // --json
  All,              // --all (check)
  Feature,          // --feature NAME (check)
  LeaveRunning,     // --leave-running (dump)
  Compress,         // -z (dump)
  Overwrite,        // --overwrite (dump)
  SkipFileCheck,    // --skip-file-check (restore)
  TcpEstablished,   // --tcp-established
  ExtUnixSk,        // --ext-unix-sk
  ShellJob,         // --shell-job
  FileLocks,        // --file-locks
  GhostLimit,       // --ghost-limit SIZE
  Version,          // --version
  Count_
};

enum class ArgKind { None, Pid, Path, Int, String, Size };

struct OptionSpec {
  Opt id;
  char short_name;  // 0 if none
  const char* long_name;
  ArgKind arg;
  const char* metavar;
  const char* help;
};

// The table itself (common/options.cc).
const std::vector<OptionSpec>& option_table();
const OptionSpec& option_spec(Opt id);

struct Options {
  pid_t tree = 0;
  std::string images_dir;
  bool leave_stopped = false;
  bool restore_detached = false;
  std::vector<std::string> namespaces;  // validated names: uts ipc net mnt pid user cgroup time
  std::string log_file;
  int verbosity = 1;
  bool contents = false;
  std::string file;
  bool help = false;
  bool json = false;
  bool all = false;
  std::string feature;
  bool leave_running = false;
  bool compress = false;
  bool overwrite = false;
  bool skip_file_check = false;
  bool tcp_established = false;
  std::vector<std::string> ext_unix_sk;
  bool shell_job = false;
  bool file_locks = false;
  uint64_t ghost_limit = 1 << 20;
  bool version = false;

  std::vector<std::string> positional;
  // Which options were given on the command line.
  bool given[static_cast<int>(Opt::Count_)] = {};
  bool has(Opt o) const { return given[static_cast<int>(o)]; }
};

struct CommandSpec {
  const char* name;      // "dump": used in messages as cr-dump
  const char* synopsis;  // one line for --help
  std::vector<Opt> accepted;
  // Stop at the first positional argument (cr-exec: "-1" is an argument).
  bool stop_at_positional = false;
  int min_positional = 0;
  int max_positional = 0;  // -1: unlimited
};

// Parse argv. On misuse returns an Error whose message is the one-line usage
// error ("option '-c' does not apply to dump; see 'cr-dump --help'").
Result<Options> parse_options(const CommandSpec& cmd, int argc, char** argv);

// Text for --help: synopsis and one line per accepted option.
std::string usage_text(const CommandSpec& cmd);

// Parse helpers, exposed for tests.
Result<pid_t> parse_pid(const std::string& s);
Result<uint64_t> parse_size(const std::string& s);  // 123, 4k, 16M, 2G

// The common start of every command: parse options, handle --help and
// --version, set up logging. Exits with status 2 on a usage error, 0 after
// --help. Returns the options otherwise.
Options command_start_or_exit(const CommandSpec& cmd, int argc, char** argv);

}  // namespace cr
