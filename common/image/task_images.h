// Loading and validating everything a restore needs before any process is
// created (DESIGN.md 4.1): every record of every task is decoded, every
// number checked, every page frame read and checksummed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/image/core.h"
#include "common/image/files.h"
#include "common/image/image_set.h"
#include "common/image/memory.h"
#include "common/image/pages.h"
#include "common/image/pstree.h"
#include "common/image/records.h"

namespace cr {

// Highest user address on x86-64 with 4-level page tables.
constexpr uint64_t kTaskSizeMax = (1ull << 47) - 4096;

struct TaskImages {
  PstreeEntry entry;
  Core core;
  Mm mm;
  FdTable fds;
};

struct SetImages {
  Inventory inventory;
  Pstree pstree;
  Files files;
  std::vector<TaskImages> tasks;  // in pstree order
};

// Read and validate the whole set. verify_pages reads every page frame and
// checks its CRC (the restore does; cr-show does as it prints).
Result<SetImages> load_set_images(const ImageSet& set, bool verify_pages);

// Individual validators, exposed for unit tests.
Status validate_core(const Core& c, const std::string& file);
// The tree: unique pids and tids, parents before children, the root first,
// zombies without threads or children.
Status validate_pstree(const Pstree& t);
Status validate_mm(const Mm& mm, const std::string& file);
Status validate_files(const Files& f, const FdTable& t, const std::string& file);
// eventfd, signalfd, timerfd and epoll records: one per file of the type,
// clocks, times and targets in range.
Status validate_event_fds(const Files& files);
// SysV shared memory segments (part of validate_files): unique ids, unique
// keys but IPC_PRIVATE, known mode bits, SHM_DEST only with IPC_PRIVATE,
// real owners, a size of 1 byte to kMaxShmemSize, pages in
// sysv_pagemap_name(id).
Status validate_sysv_shm(const Files& f);
// Shared memory objects (part of validate_files): unique ids, a size up to
// kMaxShmemSize, pages in shmem_pagemap_name(id), an absolute path or none.
Status validate_shmem(const Files& f);
// The page image of every shared memory object and SysV segment: opened,
// checked against the object's size (validate_object_pagemap) and, with
// verify_pages, every frame read and checksummed.
Status validate_object_pages(const ImageSet& set, const Files& f, bool verify_pages);
// The objects VMAs map: a "shmem" VMA (shared or private) inside its
// ShmemRec, a "sysv" VMA one whole attach (offset 0, the size in pages) of
// its SysvShmRec.
Status validate_vma_objects(const Mm& mm, const Files& f, const std::string& file);

}  // namespace cr
