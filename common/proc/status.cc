#include "common/proc/status.h"

#include <functional>

#include "common/proc/parse.h"

namespace cr::proc {

namespace {

// Undo proc_task_name(..., escape=true): seq_escape_str with "\n\\" only.
bool unescape_name(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); i++) {
    if (in[i] != '\\') {
      out += in[i];
      continue;
    }
    if (i + 1 >= in.size()) return false;
    char c = in[++i];
    if (c == 'n')
      out += '\n';
    else if (c == '\\')
      out += '\\';
    else
      return false;
  }
  return true;
}

template <class T>
bool parse_list(std::string_view v, std::vector<T>& out) {
  out.clear();
  for (auto t : split_blank(v)) {
    T x{};
    if (!parse_int(t, x)) return false;
    out.push_back(x);
  }
  return true;
}

bool parse_ids(std::string_view v, std::array<uint32_t, 4>& out) {
  auto t = split_blank(v);
  if (t.size() != 4) return false;
  for (size_t i = 0; i < 4; i++)
    if (!parse_int(t[i], out[i])) return false;
  return true;
}

bool parse_mask(std::string_view v, uint64_t& out) {
  return v.size() >= 1 && v.size() <= 16 && parse_int(v, out, 16);
}

}  // namespace

Result<ProcStatus> parse_status(std::string_view text, std::string_view source) {
  LineReader lr(text, source);
  TRY_STATUS(lr.complete());
  ProcStatus st;

  // Each handler returns false if the value is malformed.
  using Handler = std::function<bool(std::string_view)>;
  auto num = [](auto& field) {
    return [&field](std::string_view v) { return parse_int(v, field); };
  };
  auto mask = [](uint64_t& field) {
    return [&field](std::string_view v) { return parse_mask(v, field); };
  };
  struct Key {
    std::string_view key;
    bool required;
    Handler h;
    bool seen = false;
  };
  Key keys[] = {
      {"Name", true, nullptr},  // special: raw value
      {"Umask", false,
       [&](std::string_view v) {
         uint32_t m = 0;
         if (!parse_int(v, m, 8) || m > 0777) return false;
         st.umask = m;
         return true;
       }},
      {"State", true,
       [&](std::string_view v) {
         // "S (sleeping)"
         if (v.empty() || is_blank(v[0])) return false;
         if (v.size() > 1 && (v[1] != ' ' || v.size() < 4 || v[2] != '(' || v.back() != ')')) return false;
         st.state = v[0];
         return true;
       }},
      {"Tgid", true, num(st.tgid)},
      {"Ngid", false, num(st.ngid)},
      {"Pid", true, num(st.pid)},
      {"PPid", true, num(st.ppid)},
      {"TracerPid", true, num(st.tracer_pid)},
      {"Uid", true, [&](std::string_view v) { return parse_ids(v, st.uid); }},
      {"Gid", true, [&](std::string_view v) { return parse_ids(v, st.gid); }},
      {"FDSize", false, num(st.fd_size)},
      {"Groups", false, [&](std::string_view v) { return parse_list(v, st.groups); }},
      {"NStgid", false, [&](std::string_view v) { return parse_list(v, st.ns_tgid) && !st.ns_tgid.empty(); }},
      {"NSpid", false, [&](std::string_view v) { return parse_list(v, st.ns_pid) && !st.ns_pid.empty(); }},
      {"NSpgid", false, [&](std::string_view v) { return parse_list(v, st.ns_pgid) && !st.ns_pgid.empty(); }},
      {"NSsid", false, [&](std::string_view v) { return parse_list(v, st.ns_sid) && !st.ns_sid.empty(); }},
      {"Kthread", false,
       [&](std::string_view v) {
         unsigned k = 0;
         if (!parse_int(v, k) || k > 1) return false;
         st.kthread = k;
         return true;
       }},
      {"Threads", true, [&](std::string_view v) { return parse_int(v, st.threads) && st.threads >= 0; }},
      {"SigQ", true,
       [&](std::string_view v) {
         size_t slash = v.find('/');
         return slash != std::string_view::npos && parse_int(v.substr(0, slash), st.sigq_queued) &&
                parse_int(v.substr(slash + 1), st.sigq_limit);
       }},
      {"SigPnd", true, mask(st.sig_pnd)},
      {"ShdPnd", true, mask(st.shd_pnd)},
      {"SigBlk", true, mask(st.sig_blk)},
      {"SigIgn", true, mask(st.sig_ign)},
      {"SigCgt", true, mask(st.sig_cgt)},
      {"CapInh", true, mask(st.cap_inh)},
      {"CapPrm", true, mask(st.cap_prm)},
      {"CapEff", true, mask(st.cap_eff)},
      {"CapBnd", true, mask(st.cap_bnd)},
      {"CapAmb", true, mask(st.cap_amb)},
      {"NoNewPrivs", true,
       [&](std::string_view v) {
         unsigned k = 0;
         if (!parse_int(v, k) || k > 1) return false;
         st.no_new_privs = k;
         return true;
       }},
      {"Seccomp", true, [&](std::string_view v) { return parse_int(v, st.seccomp) && st.seccomp >= 0 && st.seccomp <= 2; }},
      {"Seccomp_filters", false, [&](std::string_view v) { return parse_int(v, st.seccomp_filters) && st.seccomp_filters >= 0; }},
      {"Speculation_Store_Bypass", false,
       [&](std::string_view v) {
         st.speculation_store_bypass = v;
         return !v.empty();
       }},
      {"SpeculationIndirectBranch", false,
       [&](std::string_view v) {
         st.speculation_indirect_branch = v;
         return !v.empty();
       }},
  };

  std::string_view line;
  while (lr.next(line)) {
    std::string_view key, value;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return lr.error("bad line %s (expected 'Key:\\tvalue')", quote(line).c_str());
    key = line.substr(0, colon);
    Key* k = nullptr;
    for (auto& c : keys)
      if (c.key == key) k = &c;
    if (!k) continue;  // a key we do not keep
    if (k->seen) return lr.error("repeated %.*s line", int(key.size()), key.data());
    k->seen = true;
    if (key == "Name") {
      // The name may hold blanks (even leading ones): drop exactly the tab.
      std::string_view raw = line.substr(colon + 1);
      if (raw.empty() || raw[0] != '\t') return lr.error("Name: expected a tab after ':'");
      if (!unescape_name(raw.substr(1), st.name))
        return lr.error("Name: bad escape in %s", quote(raw.substr(1)).c_str());
      continue;
    }
    value = trim(line.substr(colon + 1));
    if (!k->h(value))
      return lr.error("%.*s: bad value %s", int(key.size()), key.data(), quote(value).c_str());
  }
  for (const auto& k : keys)
    if (k.required && !k.seen) return parse_error(source, 0, "no %.*s line", int(k.key.size()), k.key.data());
  if (!st.ns_pid.empty() && st.ns_pid.front() != st.pid)
    return parse_error(source, 0, "NSpid does not contain Pid %d", st.pid);
  return st;
}

Result<ProcStatus> read_status(pid_t pid) {
  std::string text = TRY(read_proc_file(pid, "status"));
  return with_pid(parse_status(text, proc_path(pid, "status")), pid);
}

}  // namespace cr::proc
