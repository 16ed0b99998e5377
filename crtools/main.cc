// crtools: the multiplexer. `crtools <command> [args]` execs cr-<command>,
// found next to this binary first, then on PATH (so an external cr-foo
// extends crtools as git's subcommands do).
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/version.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
};

// The commands crtools ships, one line each for --help.
const Command kCommands[] = {
    {"dump", "checkpoint a process tree into an image set"},
    {"restore", "restore a process tree from an image set"},
    {"show", "decode an image set for people (text) or programs (--json)"},
    {"check", "tell whether this kernel can dump and restore"},
    {"exec", "run one system call inside another task"},
};

std::string self_dir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  buf[n] = 0;
  std::string p = buf;
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? "" : p.substr(0, slash);
}

bool is_executable(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0;
}

// Next to crtools first, then each PATH entry.
std::string find_command(const std::string& name) {
  std::string exe = "cr-" + name;
  std::string dir = self_dir();
  if (!dir.empty() && is_executable(dir + "/" + exe)) return dir + "/" + exe;
  const char* path = getenv("PATH");
  if (!path) return "";
  std::string ps = path;
  size_t pos = 0;
  while (pos <= ps.size()) {
    size_t c = ps.find(':', pos);
    std::string d = ps.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
    if (d.empty()) d = ".";
    if (is_executable(d + "/" + exe)) return d + "/" + exe;
    if (c == std::string::npos) break;
    pos = c + 1;
  }
  return "";
}

void usage(FILE* f) {
  fprintf(f,
          "usage: crtools <command> [options]\n"
          "       crtools help <command>\n"
          "       crtools --version\n\n"
          "Checkpoint/restore of Linux process trees in userspace.\n\ncommands:\n");
  for (const auto& c : kCommands) fprintf(f, "  %-9s %s\n", c.name, c.summary);
  fprintf(f,
          "\nEach command is the program cr-<command>; 'crtools <command> --help' lists its\n"
          "options and 'crtools help <command>' opens its man page. See crtools(8).\n");
}

int open_man(const std::string& cmd) {
  std::string page = cmd == "crtools" ? "crtools" : "cr-" + cmd;
  // Build tree (bin/ is build/bin, pages in ../../man) or installed tree
  // (sbin/ beside share/man/man8), else let man(1) search.
  std::string dir = self_dir();
  const std::string candidates[] = {dir + "/../../man/" + page + ".8",
                                    dir + "/../share/man/man8/" + page + ".8"};
  for (const auto& c : candidates) {
    if (access(c.c_str(), R_OK) == 0) {
      execlp("man", "man", "-l", c.c_str(), (char*)nullptr);
      perror("crtools: cannot run man");
      return 1;
    }
  }
  execlp("man", "man", "8", page.c_str(), (char*)nullptr);
  perror("crtools: cannot run man");
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h") {
    usage(stdout);
    return 0;
  }
  if (cmd == "--version" || cmd == "-V") {
    printf("crtools %s\n", CRTOOLS_VERSION);
    return 0;
  }
  if (cmd == "help") {
    if (argc < 3) {
      usage(stdout);
      return 0;
    }
    std::string sub = argv[2];
    if (sub != "crtools" && find_command(sub).empty()) {
      fprintf(stderr, "crtools: '%s' is not a crtools command; see 'crtools --help'\n", sub.c_str());
      return 1;
    }
    return open_man(sub);
  }
  if (cmd.empty() || cmd[0] == '-' || cmd.find('/') != std::string::npos) {
    fprintf(stderr, "crtools: unknown option '%s'; see 'crtools --help'\n", cmd.c_str());
    return 2;
  }
  std::string path = find_command(cmd);
  if (path.empty()) {
    fprintf(stderr, "crtools: '%s' is not a crtools command; see 'crtools --help'\n", cmd.c_str());
    return 1;
  }
  std::vector<char*> args;
  std::string argv0 = "cr-" + cmd;
  args.push_back(argv0.data());
  for (int i = 2; i < argc; i++) args.push_back(argv[i]);
  args.push_back(nullptr);
  execv(path.c_str(), args.data());
  fprintf(stderr, "crtools: cannot run %s: %s\n", path.c_str(), strerror(errno));
  return 1;
}
