// Record structs of the metadata images. Each has `kKind` and nlohmann
// (de)serialisers; write_record/read_record (image_set.h) do the rest.
// Later kinds (pstree, core, mm, files, ...) live beside the code that dumps
// and restores them, named after the state they hold.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>

#include "common/image/format.h"

namespace cr {

// inventory.img: written last, so a set without it is incomplete.
struct Inventory {
  static constexpr ImageKind kKind = ImageKind::Inventory;
  uint32_t format = kImageFormatVersion;
  std::string tool;       // "crtools 0.1.0"
  std::string created;    // ISO 8601 UTC
  std::string hostname;
  std::string kernel;     // uname release
  int64_t root_pid = 0;
  std::vector<std::string> namespaces;
  std::vector<std::string> images;  // every other file of the set
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Inventory, format, tool, created, hostname, kernel, root_pid, namespaces,
                                   images)

// stats-dump.img / stats-restore.img: what a run measured.
struct Stats {
  static constexpr ImageKind kKind = ImageKind::Stats;
  std::string command;                    // "dump" or "restore"
  std::map<std::string, double> values;   // name -> value, units in the name (_us, _bytes)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Stats, command, values)

// Fill tool/created/hostname/kernel.
Inventory make_inventory(int64_t root_pid);

}  // namespace cr
