// Validation of the terminal records of files.img (common/image/ttys.h).
#include "common/image/ttys.h"

#include <map>
#include <set>

#include "common/image/files.h"
#include "common/image/pstree.h"

namespace cr {

namespace {
unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }
}  // namespace

bool is_tty_type(const std::string& type) {
  return type == "pty-master" || type == "pty-slave" || type == "tty-external" || type == "dev-tty";
}

std::string tty_name(const TtyRec& t) {
  if (t.kind == "pty") return "/dev/pts/" + std::to_string(t.index);
  return t.path.empty() ? "the terminal outside the tree" : t.path;
}

Status validate_ttys(const Files& files, const Pstree& tree, uint64_t* bad_id) {
  std::map<uint64_t, const TtyRec*> by_id;
  auto bad = [&](const TtyRec& t, const char* what) {
    if (bad_id) *bad_id = t.id;
    return make_error("files.img: terminal %llu (%s): %s", ull(t.id), tty_name(t).c_str(), what);
  };
  int external = 0;
  std::set<int64_t> sessions;
  for (auto& t : files.ttys) {
    if (!t.id || !by_id.emplace(t.id, &t).second) return bad(t, "no id or a duplicate id");
    if (t.kind == "pty") {
      if (t.index < 0 || t.index >= (1 << 20)) return bad(t, "bad pty index");
      if (!t.path.empty()) return bad(t, "a path for a pty");
    } else if (t.kind == "external") {
      if (++external > 1) return bad(t, "a second terminal outside the tree");
      if (t.index != -1 || t.locked || t.packet || t.sid) return bad(t, "pty settings for the external terminal");
    } else {
      return bad(t, "unknown kind");
    }
    if (t.termios.cc.size() != kTermiosNcc) return bad(t, "termios c_cc is not 19 bytes");
    if (t.sid) {
      bool leads = false;
      for (auto& e : tree.tasks) leads |= e.pid == t.sid && e.sid == t.sid && !e.zombie;
      if (!leads) return bad(t, "the controlling terminal of a session that no process of the tree leads");
      if (!sessions.insert(t.sid).second) return bad(t, "a second controlling terminal of one session");
    }
    if (t.fg_pgrp) {
      if (t.kind == "pty" && !t.sid) return bad(t, "a foreground group without a session");
      bool found = false;
      for (auto& e : tree.tasks)
        found |= e.pgid == t.fg_pgrp && !e.zombie && (t.kind != "pty" || e.sid == t.sid);
      if (!found) return bad(t, "its foreground group is no group of the tree (in its session)");
    }
  }
  std::map<uint64_t, int> masters;
  for (auto& f : files.files) {
    if (!is_tty_type(f.type)) {
      if (f.tty_id) return make_error("files.img: file %llu: a terminal id for a %s", ull(f.id), f.type.c_str());
      continue;
    }
    if (f.type == "dev-tty") {
      if (f.tty_id) return make_error("files.img: file %llu: /dev/tty with a terminal id", ull(f.id));
      continue;
    }
    auto it = by_id.find(f.tty_id);
    const char* want = f.type == "tty-external" ? "external" : "pty";
    if (it == by_id.end() || it->second->kind != want)
      return make_error("files.img: file %llu (%s): no %s terminal %llu", ull(f.id), f.type.c_str(), want,
                        ull(f.tty_id));
    if (f.type == "pty-master") masters[f.tty_id]++;
  }
  for (auto& t : files.ttys)
    if (t.kind == "pty" && masters[t.id] != 1)
      return bad(t, masters[t.id] ? "more than one master (a master is made by one open of /dev/ptmx)"
                                  : "no master in the tree");
  return ok_status();
}

}  // namespace cr
