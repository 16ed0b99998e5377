// Restore side of BPF maps (dump side: cr-dump/bpf_maps.cc, record
// BpfMapRec): the map created again with its type, name, sizes and flags,
// every entry written back, then frozen if it was.
#include <bpf/bpf.h>
#include <unistd.h>

#include "common/fd.h"
#include "cr-restore/restore.h"

namespace cr {

Result<int> open_bpf_map(const Files& files, const FileRec& f, const std::string& what) {
  const BpfMapRec* r = nullptr;
  for (auto& m : files.bpf_maps)
    if (m.file_id == f.id) r = &m;
  if (!r) return make_error("%s: BPF map %llu has no record", what.c_str(), (unsigned long long)f.id);
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = r->map_flags);
  UniqueFd fd(bpf_map_create(static_cast<enum bpf_map_type>(r->map_type), r->name.empty() ? nullptr : r->name.c_str(),
                             r->key_size, r->value_size, r->max_entries, &opts));
  if (!fd.valid()) return make_errno(errno, "%s: cannot create BPF map '%s'", what.c_str(), r->name.c_str());
  for (auto& e : r->entries)
    if (bpf_map_update_elem(fd.get(), e.key.data.data(), e.value.data.data(), BPF_ANY))
      return make_errno(errno, "%s: BPF map '%s': cannot write an entry back", what.c_str(), r->name.c_str());
  if (r->frozen && bpf_map_freeze(fd.get()))
    return make_errno(errno, "%s: BPF map '%s': cannot freeze it again", what.c_str(), r->name.c_str());
  // bpf_map_create gives O_RDWR | O_CLOEXEC, as the dumped fd's description had.
  return fd.release();
}

}  // namespace cr
