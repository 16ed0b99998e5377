// Dump side of BPF maps (record BpfMapRec in common/image/event_fds.h;
// restore side: cr-restore/bpf_maps.cc): array and hash maps, described
// and read entry by entry through libbpf on a copy of the task's fd
// (pidfd_getfd). Other map types, maps with BTF type information, and
// maps user space may only read or only write are refused.
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "common/fd.h"
#include "common/kernel/features.h"
#include "cr-dump/dump.h"

namespace cr {

Status dump_bpf_map(pid_t pid, int fd, const FileRec& f, Files& files) {
  TRY_STATUS(require_feature(Feature::BpfMaps));
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return make_pid_error(pid, errno, "pidfd_open");
  UniqueFd map(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
  if (!map.valid()) return make_pid_error(pid, errno, "fd %d: pidfd_getfd", fd);
  struct bpf_map_info info;
  memset(&info, 0, sizeof info);
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(map.get(), &info, &len)) return make_pid_error(pid, errno, "fd %d: BPF map info", fd);
  if (info.type != BPF_MAP_TYPE_ARRAY && info.type != BPF_MAP_TYPE_HASH)
    return make_pid_error(pid, 0, "fd %d: BPF map '%s' of type %u is not supported (only array and hash)", fd,
                          info.name, info.type);
  if (info.btf_id || info.btf_key_type_id || info.btf_value_type_id)
    return make_pid_error(pid, 0, "fd %d: BPF map '%s' carries BTF type information; not supported", fd, info.name);
  if (info.map_flags & (BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_MMAPABLE))
    return make_pid_error(pid, 0, "fd %d: BPF map '%s' with flags %#x (read-only, write-only or mmapable from user "
                          "space); not supported", fd, info.name, info.map_flags);
  uint64_t bytes = uint64_t(info.max_entries) * (info.key_size + info.value_size);
  if (bytes > (64ull << 20))
    return make_pid_error(pid, 0, "fd %d: BPF map '%s' may hold %llu MiB, more than 64 MiB; not supported", fd,
                          info.name, (unsigned long long)(bytes >> 20));
  BpfMapRec r;
  r.file_id = f.id;
  r.map_type = info.type;
  r.name = info.name;
  r.key_size = info.key_size;
  r.value_size = info.value_size;
  r.max_entries = info.max_entries;
  r.map_flags = info.map_flags;
  // fdinfo's "frozen: 1" (bpf_map_freeze); not in bpf_map_info.
  auto fi = TRY(proc::read_fdinfo(pid, fd));
  const std::string* frozen = fi.find("frozen");
  r.frozen = frozen && *frozen == "1";
  std::vector<uint8_t> key(info.key_size), next(info.key_size), value(info.value_size);
  bool first = true;
  for (;;) {
    int rc = bpf_map_get_next_key(map.get(), first ? nullptr : key.data(), next.data());
    if (rc) {
      if (errno == ENOENT) break;
      return make_pid_error(pid, errno, "fd %d: BPF map '%s': next key", fd, info.name);
    }
    first = false;
    key = next;
    if (bpf_map_lookup_elem(map.get(), key.data(), value.data())) {
      if (errno == ENOENT) continue;  // deleted meanwhile by a BPF program
      return make_pid_error(pid, errno, "fd %d: BPF map '%s': lookup", fd, info.name);
    }
    BpfMapEntryRec e;
    e.key.data.assign(key.begin(), key.end());
    e.value.data.assign(value.begin(), value.end());
    r.entries.push_back(std::move(e));
    if (r.entries.size() > info.max_entries)
      return make_pid_error(pid, 0, "fd %d: BPF map '%s' keeps changing while it is read", fd, info.name);
  }
  files.bpf_maps.push_back(std::move(r));
  return ok_status();
}

}  // namespace cr
