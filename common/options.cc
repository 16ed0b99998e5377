#include "common/fault.h"
#include "common/options.h"

#include <getopt.h>
#include <unistd.h>

#include <cctype>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/log.h"
#include "common/version.h"

namespace cr {

namespace {

const std::vector<OptionSpec> kTable = {
    {Opt::Tree, 't', "tree", ArgKind::Pid, "PID", "the process tree rooted at PID"},
    {Opt::ImagesDir, 'D', "images-dir", ArgKind::Path, "DIR",
     "image directory; '-' streams the set as a tar archive on stdout/stdin"},
    {Opt::LeaveStopped, 's', "leave-stopped", ArgKind::None, nullptr,
     "leave the tree stopped after dump instead of killing it"},
    {Opt::RestoreDetached, 'd', "restore-detached", ArgKind::None, nullptr,
     "return once the tree runs, leaving it re-parented"},
    {Opt::Namespaces, 'n', "namespaces", ArgKind::String, "LIST",
     "namespaces to dump/restore: comma list of uts,ipc,net,mnt,pid,user,cgroup,time"},
    {Opt::LogFile, 'o', "log-file", ArgKind::Path, "FILE", "write the log to FILE"},
    {Opt::Verbosity, 'v', "verbosity", ArgKind::Int, "N",
     "0 errors only, 1 informative (default), 2 debug, 3-4 more detail"},
    {Opt::Contents, 'c', "contents", ArgKind::None, nullptr, "show page contents as a hex dump"},
    {Opt::File, 'f', "file", ArgKind::Path, "FILE", "decode one image file"},
    {Opt::Help, 'h', "help", ArgKind::None, nullptr, "show this help"},
    {Opt::Json, 0, "json", ArgKind::None, nullptr, "print JSON for programs"},
    {Opt::All, 0, "all", ArgKind::None, nullptr, "include optional features"},
    {Opt::Feature, 0, "feature", ArgKind::String, "NAME", "check one feature"},
    {Opt::LeaveRunning, 0, "leave-running", ArgKind::None, nullptr,
     "let the tree go on running after dump"},
    {Opt::Compress, 'z', "compress", ArgKind::None, nullptr, "compress page data with zstd"},
    {Opt::Overwrite, 0, "overwrite", ArgKind::None, nullptr,
     "replace an image set already in the directory"},
    {Opt::SkipFileCheck, 0, "skip-file-check", ArgKind::None, nullptr,
     "restore files that changed size or identity since the dump"},
    {Opt::TcpEstablished, 0, "tcp-established", ArgKind::None, nullptr,
     "checkpoint/restore established TCP connections"},
    {Opt::ExtUnixSk, 0, "ext-unix-sk", ArgKind::String, "INODE",
     "dump a unix socket whose peer outside the tree has this inode (restored hung up)"},
    {Opt::ShellJob, 0, "shell-job", ArgKind::None, nullptr,
     "the tree is a job of the user's terminal"},
    {Opt::FileLocks, 0, "file-locks", ArgKind::None, nullptr, "dump/restore file locks"},
    {Opt::GhostLimit, 0, "ghost-limit", ArgKind::Size, "SIZE",
     "largest deleted-but-open file to save (default 1M)"},
    {Opt::Version, 0, "version", ArgKind::None, nullptr, "print the version"},
};

const std::vector<std::string> kNamespaceNames = {"uts", "ipc",  "net",    "mnt",
                                                  "pid", "user", "cgroup", "time"};

}  // namespace

const std::vector<OptionSpec>& option_table() { return kTable; }

const OptionSpec& option_spec(Opt id) {
  for (const auto& s : kTable)
    if (s.id == id) return s;
  abort();  // every Opt has a row; the unit test checks it
}

Result<pid_t> parse_pid(const std::string& s) {
  if (s.empty() || s.size() > 10) return make_error("'%s' is not a pid", s.c_str());
  for (char c : s)
    if (!isdigit((unsigned char)c)) return make_error("'%s' is not a pid", s.c_str());
  long v = strtol(s.c_str(), nullptr, 10);
  if (v <= 0 || v > INT_MAX) return make_error("'%s' is not a pid", s.c_str());
  return static_cast<pid_t>(v);
}

Result<uint64_t> parse_size(const std::string& s) {
  if (s.empty() || !isdigit((unsigned char)s[0])) return make_error("'%s' is not a size", s.c_str());
  errno = 0;
  char* end = nullptr;
  unsigned long long v = strtoull(s.c_str(), &end, 10);
  if (errno) return make_error("'%s' is not a size", s.c_str());
  unsigned shift = 0;
  std::string suf = end;
  if (suf == "" ) shift = 0;
  else if (suf == "k" || suf == "K") shift = 10;
  else if (suf == "m" || suf == "M") shift = 20;
  else if (suf == "g" || suf == "G") shift = 30;
  else return make_error("'%s' is not a size (use a number with k, M or G)", s.c_str());
  if (shift && v > (~0ULL >> shift)) return make_error("'%s' is too large", s.c_str());
  return static_cast<uint64_t>(v << shift);
}

static Status set_value(Options& o, const OptionSpec& s, const char* arg) {
  std::string a = arg ? arg : "";
  switch (s.id) {
    case Opt::Tree: o.tree = TRY(parse_pid(a)); break;
    case Opt::ImagesDir:
      if (a.empty()) return make_error("-D needs a directory or '-'");
      o.images_dir = a;
      break;
    case Opt::LeaveStopped: o.leave_stopped = true; break;
    case Opt::RestoreDetached: o.restore_detached = true; break;
    case Opt::Namespaces: {
      o.namespaces.clear();
      size_t pos = 0;
      while (true) {
        size_t c = a.find(',', pos);
        std::string n = a.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
        bool known = false;
        for (const auto& k : kNamespaceNames) known |= (k == n);
        if (!known)
          return make_error("unknown namespace '%s' in -n (known: uts,ipc,net,mnt,pid,user,cgroup,time)",
                            n.c_str());
        o.namespaces.push_back(n);
        if (c == std::string::npos) break;
        pos = c + 1;
      }
      break;
    }
    case Opt::LogFile:
      if (a.empty()) return make_error("-o needs a file name");
      o.log_file = a;
      break;
    case Opt::Verbosity: {
      if (a.size() != 1 || a[0] < '0' || a[0] > '4')
        return make_error("-v takes a level from 0 to 4, not '%s'", a.c_str());
      o.verbosity = a[0] - '0';
      break;
    }
    case Opt::Contents: o.contents = true; break;
    case Opt::File:
      if (a.empty()) return make_error("-f needs a file name");
      o.file = a;
      break;
    case Opt::Help: o.help = true; break;
    case Opt::Json: o.json = true; break;
    case Opt::All: o.all = true; break;
    case Opt::Feature: o.feature = a; break;
    case Opt::LeaveRunning: o.leave_running = true; break;
    case Opt::Compress: o.compress = true; break;
    case Opt::Overwrite: o.overwrite = true; break;
    case Opt::SkipFileCheck: o.skip_file_check = true; break;
    case Opt::TcpEstablished: o.tcp_established = true; break;
    case Opt::ExtUnixSk: o.ext_unix_sk.push_back(a); break;
    case Opt::ShellJob: o.shell_job = true; break;
    case Opt::FileLocks: o.file_locks = true; break;
    case Opt::GhostLimit: o.ghost_limit = TRY(parse_size(a)); break;
    case Opt::Version: o.version = true; break;
    case Opt::Count_: break;
  }
  return ok_status();
}

Result<Options> parse_options(const CommandSpec& cmd, int argc, char** argv) {
  std::string prog = std::string("cr-") + cmd.name;
  std::string see = "; see '" + prog + " --help'";
  std::vector<const OptionSpec*> acc;
  for (Opt id : cmd.accepted) acc.push_back(&option_spec(id));
  auto accepts = [&](Opt id) {
    for (auto* s : acc)
      if (s->id == id) return true;
    return false;
  };
  if (!accepts(Opt::Help)) acc.push_back(&option_spec(Opt::Help));

  std::string shorts = cmd.stop_at_positional ? "+:" : ":";
  std::vector<struct option> longs;
  for (auto* s : acc) {
    if (s->short_name) {
      shorts += s->short_name;
      if (s->arg != ArgKind::None) shorts += ':';
    }
    longs.push_back({s->long_name, s->arg == ArgKind::None ? no_argument : required_argument,
                     nullptr, 1000 + static_cast<int>(s->id)});
  }
  longs.push_back({nullptr, 0, nullptr, 0});

  Options o;
  optind = 0;  // full reset of getopt state
  opterr = 0;
  while (true) {
    int li = -1;
    int c = getopt_long(argc, argv, shorts.c_str(), longs.data(), &li);
    if (c == -1) break;
    if (c == '?' || c == ':') {
      // Work out what the user typed, to name it in the message.
      std::string what;
      if (optopt > 0 && optopt < 256) what = std::string("-") + (char)optopt;  // long options have val >= 1000
      else if (optind > 0 && optind <= argc) what = argv[optind - 1];
      std::string bare = what;
      size_t eq = bare.find('=');
      if (eq != std::string::npos) bare = bare.substr(0, eq);
      if (c == ':') return make_error("option '%s' needs an argument%s", what.c_str(), see.c_str());
      // Known to crtools but not to this command?
      for (const auto& s : kTable) {
        bool same = (optopt && s.short_name == optopt) ||
                    (!optopt && bare == std::string("--") + s.long_name);
        if (same)
          return make_error("option '%s' does not apply to %s%s", what.c_str(), cmd.name,
                            see.c_str());
      }
      return make_error("unknown option '%s'%s", what.c_str(), see.c_str());
    }
    const OptionSpec* spec = nullptr;
    if (c >= 1000) {
      spec = &option_spec(static_cast<Opt>(c - 1000));
    } else {
      for (auto* s : acc)
        if (s->short_name == c) spec = s;
    }
    if (!spec) return make_error("unknown option%s", see.c_str());
    auto st = set_value(o, *spec, optarg);
    if (!st) {
      Error e = std::move(st).error();
      e.message += see;
      return e;
    }
    o.given[static_cast<int>(spec->id)] = true;
  }
  for (int i = optind; i < argc; i++) o.positional.push_back(argv[i]);
  if (o.help || o.version) return o;
  int n = static_cast<int>(o.positional.size());
  if (n < cmd.min_positional)
    return make_error("missing arguments%s", see.c_str());
  if (cmd.max_positional >= 0 && n > cmd.max_positional)
    return make_error("unexpected argument '%s'%s", o.positional[cmd.max_positional].c_str(),
                      see.c_str());
  return o;
}

std::string usage_text(const CommandSpec& cmd) {
  std::string s = std::string("usage: cr-") + cmd.name + " " + cmd.synopsis + "\n\noptions:\n";
  std::vector<Opt> ids = cmd.accepted;
  bool has_help = false;
  for (Opt id : ids) has_help |= id == Opt::Help;
  if (!has_help) ids.push_back(Opt::Help);
  for (Opt id : ids) {
    const auto& sp = option_spec(id);
    std::string left = "  ";
    if (sp.short_name) left += std::string("-") + sp.short_name + ", ";
    else left += "    ";
    left += std::string("--") + sp.long_name;
    if (sp.metavar) left += std::string(" ") + sp.metavar;
    if (left.size() < 32) left.resize(32, ' ');
    else left += "  ";
    s += left + sp.help + "\n";
  }
  s += std::string("\nSee cr-") + cmd.name + "(8).\n";
  return s;
}

Options command_start_or_exit(const CommandSpec& cmd, int argc, char** argv) {
  std::string prog = std::string("cr-") + cmd.name;
  LogConfig lc;
  lc.command = prog;
  (void)log_init(lc);
  auto r = parse_options(cmd, argc, argv);
  if (!r) {
    fprintf(stderr, "%s: %s\n", prog.c_str(), r.error().message.c_str());
    exit(2);
  }
  Options o = std::move(r).value();
  fault_setup();
  if (o.help) {
    fputs(usage_text(cmd).c_str(), stdout);
    exit(0);
  }
  if (o.version) {
    printf("%s %s\n", prog.c_str(), CRTOOLS_VERSION);
    exit(0);
  }
  lc.verbosity = o.verbosity;
  lc.file = o.log_file;
  auto st = log_init(lc);
  if (!st) {
    fprintf(stderr, "%s: %s\n", prog.c_str(), st.error().str().c_str());
    exit(1);
  }
  return o;
}

}  // namespace cr
