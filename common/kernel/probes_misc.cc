// TCP_REPAIR and BPF probes.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "common/fd.h"
#include "common/kernel/probe_child.h"
#include "common/kernel/probes.h"
#include "common/kernel/uapi.h"
#include "common/strings.h"
#include "common/log.h"
#include "common/net_lock.h"

namespace cr::probe {

namespace {


Status set_int(int fd, int opt, int v, const char* what) {
  if (setsockopt(fd, SOL_TCP, opt, &v, sizeof v)) return make_errno(errno, "setsockopt(%s)", what);
  return ok_status();
}

// libbpf prints its warnings to stderr; route them to our debug log.
int libbpf_log(enum libbpf_print_level level, const char* f, va_list ap) {
  if (level == LIBBPF_DEBUG || !log_enabled(LogLevel::Debug)) return 0;
  char b[512];
  vsnprintf(b, sizeof b, f, ap);
  size_t n = strlen(b);
  if (n && b[n - 1] == '\n') b[n - 1] = 0;
  pr_debug(0, "libbpf: %s", b);
  return 0;
}

void quiet_libbpf() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(libbpf_log); });
}

}  // namespace

Result<std::string> tcp_repair() {
  return run_in_child("tcp-repair", []() -> Result<std::string> {
    UniqueFd srv(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!srv.valid()) return make_errno(errno, "socket");
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(srv.get(), (sockaddr*)&a, sizeof a) || listen(srv.get(), 1) ||
        getsockname(srv.get(), (sockaddr*)&a, &len))
      return make_errno(errno, "listening on 127.0.0.1");
    UniqueFd cli(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!cli.valid()) return make_errno(errno, "socket");
    struct timeval tv = {2, 0};
    setsockopt(cli.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(cli.get(), (sockaddr*)&a, sizeof a)) {
      // No loopback here: at least switch repair mode on a fresh socket.
      int e = errno;
      UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      TRY_STATUS(set_int(s.get(), TCP_REPAIR, TCP_REPAIR_ON, "TCP_REPAIR"));
      return strprintf("TCP_REPAIR on an unconnected socket only (connecting over loopback failed: %s)", strerror(e));
    }
    UniqueFd acc(accept4(srv.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!acc.valid()) return make_errno(errno, "accept");
    if (write(cli.get(), "crtools", 7) != 7) return make_errno(errno, "write");

    TRY_STATUS(set_int(cli.get(), TCP_REPAIR, TCP_REPAIR_ON, "TCP_REPAIR"));
    uint32_t seq[2];
    int queues[2] = {TCP_SEND_QUEUE, TCP_RECV_QUEUE};
    for (int i = 0; i < 2; i++) {
      TRY_STATUS(set_int(cli.get(), TCP_REPAIR_QUEUE, queues[i], "TCP_REPAIR_QUEUE"));
      socklen_t l = sizeof seq[i];
      if (getsockopt(cli.get(), SOL_TCP, TCP_QUEUE_SEQ, &seq[i], &l)) return make_errno(errno, "getsockopt(TCP_QUEUE_SEQ)");
    }
    struct tcp_repair_window w;
    socklen_t wl = sizeof w;
    if (getsockopt(cli.get(), SOL_TCP, TCP_REPAIR_WINDOW, &w, &wl))
      return make_errno(errno, "getsockopt(TCP_REPAIR_WINDOW)");
    TRY_STATUS(set_int(cli.get(), TCP_REPAIR, TCP_REPAIR_OFF, "TCP_REPAIR off"));
    return strprintf("TCP_REPAIR on a connected loopback socket: send seq %u, receive seq %u, window %u", seq[0], seq[1],
               w.snd_wnd);
  });
}

Result<std::string> bpf_maps() {
  quiet_libbpf();
  int arr = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_ARRAY, nullptr);
  int hash = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_HASH, nullptr);
  if (arr < 0) return make_errno(-arr, "libbpf_probe_bpf_map_type(BPF_MAP_TYPE_ARRAY)");
  if (hash < 0) return make_errno(-hash, "libbpf_probe_bpf_map_type(BPF_MAP_TYPE_HASH)");
  if (arr != 1 || hash != 1)
    return make_error("the kernel lacks BPF %s maps", arr != 1 ? (hash != 1 ? "array and hash" : "array") : "hash");
  // Create, fill, read back and describe a map as dump and restore would.
  UniqueFd fd(bpf_map_create(BPF_MAP_TYPE_HASH, "crtools_probe", 4, 8, 4, nullptr));
  if (!fd.valid()) return make_errno(errno, "bpf_map_create(BPF_MAP_TYPE_HASH)");
  uint32_t key = 7;
  uint64_t val = 0x1122334455667788ULL, back = 0;
  if (bpf_map_update_elem(fd.get(), &key, &val, BPF_ANY)) return make_errno(errno, "bpf_map_update_elem");
  if (bpf_map_lookup_elem(fd.get(), &key, &back) || back != val)
    return make_errno(errno, "bpf_map_lookup_elem did not return the value stored");
  struct bpf_map_info info;
  memset(&info, 0, sizeof info);
  uint32_t ilen = sizeof info;
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &ilen)) return make_errno(errno, "bpf_obj_get_info_by_fd");
  if (info.type != BPF_MAP_TYPE_HASH || info.key_size != 4 || info.value_size != 8 || info.max_entries != 4)
    return make_error("BPF map info does not describe the map created");
  return std::string("array and hash map types (libbpf_probe_bpf_map_type); a hash map created, written, read "
                     "back and described");
}

Result<std::string> btf() {
  quiet_libbpf();
  struct btf* b = btf__load_vmlinux_btf();
  if (!b) return make_errno(errno, "cannot load the kernel's BTF (/sys/kernel/btf/vmlinux)");
  unsigned n = btf__type_cnt(b);
  int id = btf__find_by_name_kind(b, "task_struct", BTF_KIND_STRUCT);
  btf__free(b);
  if (id <= 0) return make_error("the kernel's BTF has no struct task_struct");
  return strprintf("/sys/kernel/btf/vmlinux loaded through libbpf: %u types", n);
}

// TFD_IOC_SET_TICKS exists only with CONFIG_CHECKPOINT_RESTORE: set 3
// expirations on a disarmed timerfd and read them back.
Result<std::string> timerfd_set_ticks() {
  UniqueFd fd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!fd.valid()) return make_errno(errno, "timerfd_create");
  uint64_t ticks = 3;
  if (ioctl(fd.get(), uapi::TFD_IOC_SET_TICKS, &ticks) < 0) return make_errno(errno, "ioctl TFD_IOC_SET_TICKS");
  uint64_t got = 0;
  if (read(fd.get(), &got, sizeof got) != sizeof got) return make_errno(errno, "read timerfd");
  if (got != 3) return make_error("the timerfd read %" PRIu64 " expirations after TFD_IOC_SET_TICKS 3", got);
  return std::string("a timerfd given 3 expirations with TFD_IOC_SET_TICKS reads 3");
}

// Make and delete an empty table as the network lock does (nft -f, then
// nft delete table): the nft command runs and nf_tables answers.
Result<std::string> nft_net_lock() {
  std::string t = "crtools-probe-" + std::to_string(getpid());
  TRY_STATUS(run_nft({"-f", "-"}, "table inet " + t + " { }\n"));
  TRY_STATUS(run_nft({"delete", "table", "inet", t}, ""));
  std::string v;
  TRY_STATUS(run_nft({"--version"}, "", &v));
  return "nft makes and deletes a table (" + v + ")";
}

}  // namespace cr::probe
