// The network lock (common/net_lock.h): an nftables table per dumped tree.
#include "common/net_lock.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "common/fault.h"
#include "common/fd.h"

namespace cr {

namespace {

// An address as nft matches it: "ip" or "ip6", and the address text (an
// IPv4-mapped IPv6 address as the IPv4 one).
std::pair<std::string, std::string> nft_addr(int family, const std::string& a) {
  if (family == AF_INET6 && a.rfind("::ffff:", 0) == 0 && a.find('.') != std::string::npos)
    return {"ip", a.substr(7)};
  return {family == AF_INET6 ? "ip6" : "ip", a};
}

int64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

std::string net_lock_table(pid_t root) { return "crtools-" + std::to_string(root); }

std::string net_lock_script(pid_t root, const std::vector<TcpTuple>& tuples) {
  std::string t = net_lock_table(root);
  // Priority -300: before conntrack (-200) and any filter of the host, so
  // that nothing answers or tracks a packet of a locked connection.
  std::string s = "table inet " + t + " {\n" +
                  "  chain input { type filter hook input priority -300; policy accept; }\n" +
                  "  chain output { type filter hook output priority -300; policy accept; }\n}\n";
  for (auto& c : tuples) {
    auto [proto, l] = nft_addr(c.family, c.local_addr);
    auto r = nft_addr(c.family, c.peer_addr).second;
    std::string lp = std::to_string(c.local_port), rp = std::to_string(c.peer_port);
    std::string out = proto + " saddr " + l + " tcp sport " + lp + " " + proto + " daddr " + r + " tcp dport " + rp;
    std::string in = proto + " saddr " + r + " tcp sport " + rp + " " + proto + " daddr " + l + " tcp dport " + lp;
    for (const char* chain : {"input", "output"})
      for (auto* m : {&out, &in}) s += "add rule inet " + t + " " + chain + " " + *m + " drop\n";
  }
  return s;
}

Status run_nft(const std::vector<std::string>& args, const std::string& input, std::string* out) {
  int in[2], res[2];
  if (pipe2(in, O_CLOEXEC) < 0) return make_errno(errno, "nft: pipe");
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (pipe2(res, O_CLOEXEC) < 0) return make_errno(errno, "nft: pipe");
  UniqueFd res_r(res[0]), res_w(res[1]);
  std::vector<char*> argv;
  std::string nft = "nft";
  argv.push_back(nft.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t c = fork();
  if (c < 0) return make_errno(errno, "nft: fork");
  if (c == 0) {
    dup2(in_r.get(), 0);
    dup2(res_w.get(), 1);
    dup2(res_w.get(), 2);
    execvp("nft", argv.data());
    const char* m = "cannot run nft: not installed (or not in PATH)\n";
    if (write(2, m, strlen(m)) < 0) _exit(127);
    _exit(127);
  }
  in_r.reset();
  res_w.reset();
  // The script is small (a few lines per connection): it fits the pipe.
  size_t off = 0;
  while (off < input.size()) {
    ssize_t n = write(in_w.get(), input.data() + off, input.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  in_w.reset();
  std::string text;
  int64_t deadline = now_ms() + 10000;
  bool timed_out = false;
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    struct pollfd p = {res_r.get(), POLLIN, 0};
    int k = poll(&p, 1, static_cast<int>(left));
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      timed_out = k == 0;
      break;
    }
    char b[4096];
    ssize_t n = read(res_r.get(), b, sizeof b);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(b, static_cast<size_t>(n));
  }
  if (timed_out) kill(c, SIGKILL);
  int st = 0;
  while (waitpid(c, &st, 0) < 0 && errno == EINTR) {
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  for (char& ch : text)
    if (ch == '\n') ch = ' ';
  if (out) *out = text;
  std::string cmd = "nft";
  for (auto& a : args) cmd += " " + a;
  if (timed_out) return make_error("%s did not finish within 10 s", cmd.c_str());
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    Error e = make_error("%s failed: %s", cmd.c_str(), text.empty() ? "(no message)" : text.c_str());
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) e.remedy = "install nftables (the nft command)";
    return e;
  }
  return ok_status();
}

Status net_lock(pid_t root, const std::vector<TcpTuple>& tuples) {
  TRY_STATUS(fault_point("nft"));
  return run_nft({"-f", "-"}, net_lock_script(root, tuples));
}

bool net_lock_present(pid_t root) {
  return static_cast<bool>(run_nft({"list", "table", "inet", net_lock_table(root)}, ""));
}

Status net_unlock(pid_t root) {
  if (!net_lock_present(root)) return ok_status();
  return run_nft({"delete", "table", "inet", net_lock_table(root)}, "");
}

}  // namespace cr
