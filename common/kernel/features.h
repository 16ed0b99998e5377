// The kernel feature table: what dump and restore need from this kernel.
//
// One row per feature: a stable name, required or optional, what dump or
// restore use it for, what breaks without it, and a probe that exercises the
// feature the way dump or restore will (forking throwaway children where it
// must; every child is reaped, every probe has a time limit).
//
// cr-check prints the table; cr-dump and cr-restore ask it before they rely
// on a feature:
//
//   TRY_STATUS(require_feature(Feature::Clone3SetTid));      // error if absent
//   if (feature_available(Feature::PagemapScan)) ... else ... // pick a path
//
// Each feature is probed at most once per process and the answer cached.
// The environment variable CRTOOLS_FEATURES_ABSENT=name1,name2 declares
// features absent without probing them, so tests can take the paths used on
// kernels that lack them; a feature whose dependency is absent is absent too.
// Call features_init() at the start of a command: it parses that variable and
// reports unknown names.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace cr {

enum class Feature : uint8_t {
  // Required: a single-process dump and restore need every one of these.
  PtraceSeize,
  PtraceGetsigmask,
  PtracePeeksiginfo,
  PtraceRegsets,
  PtraceRseqConfig,
  MapFiles,
  ProcPagemap,
  ProcPidMem,
  Clone3SetTid,
  PrctlMmMap,
  Kcmp,
  PidfdOpen,
  PidfdGetfd,
  MemfdCreate,
  Vdso,
  CpuXsave,
  // Optional: some kinds of state, or faster paths, need these.
  PtraceSeccompFilter,
  Userfaultfd,
  UffdWp,
  UffdWpUnpopulated,
  UffdWpAsync,
  PagemapScan,
  SoftDirty,
  TcpRepair,
  NsUts,
  NsIpc,
  NsNet,
  NsMnt,
  NsPid,
  NsUser,
  NsCgroup,
  NsTime,
  CpuAvx,
  CpuAvx512,
  CpuPkru,
  CpuAmx,
  CpuCetShstk,
  BpfMaps,
  Btf,
  CgroupFreezer,
  PosixTimerIds,
  SysvShmNextId,
  TimerfdSetTicks,
  NftNetLock,
  Count_
};

constexpr size_t kFeatureCount = static_cast<size_t>(Feature::Count_);

// A probe returns what it saw when the feature works ("detail"), or an
// Error saying why it does not.
using ProbeFn = Result<std::string> (*)();

struct FeatureInfo {
  Feature id;
  const char* name;      // stable: used by --feature, --json and CRTOOLS_FEATURES_ABSENT
  bool required;         // a basic dump/restore cannot work without it
  const char* purpose;   // what dump/restore use it for
  const char* breaks;    // what fails without it
  ProbeFn probe;
  std::vector<Feature> depends;  // absent if any of these is absent
};

// The table, in enum order (feature_table()[i].id == Feature(i)).
const std::vector<FeatureInfo>& feature_table();
const FeatureInfo& feature_info(Feature f);
const char* feature_name(Feature f);
// Look a name up; '_' and '-' are interchangeable ("soft_dirty").
std::optional<Feature> feature_by_name(std::string_view name);
// All names, joined by sep.
std::string feature_names(const char* sep = ", ");
// Parse a comma-separated list of names (empty items are ignored); an
// unknown name is an error that lists the valid names.
Result<std::vector<Feature>> parse_feature_list(std::string_view list);

constexpr const char* kFeaturesAbsentEnv = "CRTOOLS_FEATURES_ABSENT";

// Read CRTOOLS_FEATURES_ABSENT and forget any cached probe results. Returns
// an error for an unknown name; until a later call succeeds, every feature
// then reads as absent and require_feature() returns that error.
Status features_init();
// The same from a given value instead of the environment (tests).
Status features_init(std::string_view absent_list);

struct FeatureStatus {
  bool available = false;
  bool forced_absent = false;  // declared absent by CRTOOLS_FEATURES_ABSENT
  std::string detail;          // what the probe saw, or why the feature is absent
  uint64_t probe_usec = 0;     // time the probe took (0 if not probed)
};

// Probe f (and what it depends on) once; later calls return the cached
// result. The reference stays valid until the next features_init().
// Thread-safe; probes fork, so call early in a multi-threaded program.
const FeatureStatus& feature_status(Feature f);
bool feature_available(Feature f);
// ok if f is available; otherwise an Error naming the feature, why it is
// absent and what breaks, with a pointer to cr-check.
Status require_feature(Feature f);
// Probe every feature (cr-check --all / --json; or before starting threads).
void probe_all_features();

}  // namespace cr
