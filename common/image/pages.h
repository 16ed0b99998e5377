// Page images: page data apart from its index.
//
// pages-<id>.img holds the bytes of dumped pages in frames; each frame is
// either raw or one independent zstd frame, so a reader seeks to any page
// by its frame. pagemap-<id>.img is a CBOR record: the runs of virtual
// addresses whose pages are stored, in order, and the frame table.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/image/image_set.h"

namespace cr {

constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kRawFrameSize = 4 << 20;   // raw frames close at 4 MiB
constexpr uint64_t kZstdFrameSize = 1 << 20;  // compressed frames hold 1 MiB
constexpr uint64_t kMaxFrameRaw = 64 << 20;   // reader's limit for one frame

struct PagemapEntry {
  uint64_t vaddr = 0;     // page aligned
  uint64_t nr_pages = 0;  // > 0
  uint64_t off = 0;       // byte offset of the first page in the page stream
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PagemapEntry, vaddr, nr_pages, off)

// Pages of a private mapping that were the very pages of the parent's
// identical mapping at dump (shared copy-on-write since a fork): not stored;
// the restored task inherits them from its restored parent, still shared.
struct PageRunRec {
  uint64_t vaddr = 0;     // page aligned
  uint64_t nr_pages = 0;  // > 0
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PageRunRec, vaddr, nr_pages)

struct PageFrame {
  uint64_t raw_off = 0;     // offset in the page stream
  uint64_t raw_len = 0;     // bytes of pages in this frame
  uint64_t file_off = 0;    // offset in the pages image's payload
  uint64_t stored_len = 0;  // bytes stored (== raw_len unless zstd)
  uint32_t crc = 0;         // CRC-32C of the stored bytes
  bool zstd = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PageFrame, raw_off, raw_len, file_off, stored_len, crc, zstd)

struct Pagemap {
  static constexpr ImageKind kKind = ImageKind::Pagemap;
  std::string pages_file;
  uint64_t page_size = kPageSize;
  std::string compression = "none";  // "none" or "zstd"
  uint64_t raw_len = 0;              // total bytes of pages
  std::vector<PagemapEntry> entries;
  std::vector<PageFrame> frames;
  std::vector<PageRunRec> in_parent;  // in address order, apart from `entries`
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Pagemap, pages_file, page_size, compression, raw_len, entries, frames, in_parent)

// Check a pagemap's internal consistency and that it fits the pages image
// (payload_len bytes). Errors name `name` (the pagemap file).
Status validate_pagemap(const Pagemap& pm, const std::string& name, uint64_t pages_payload_len);
// The pagemap of a shared memory object or SysV segment of `size` bytes:
// its "addresses" are offsets in the object; every page lies within the
// size rounded up to pages, and none is the parent's.
Status validate_object_pagemap(const Pagemap& pm, const std::string& name, uint64_t size);

class PageWriter {
 public:
  ~PageWriter();
  // Writes pagemap-<id>.img and pages-<id>.img.
  static Result<std::unique_ptr<PageWriter>> create(ImageSet& set, uint64_t id, bool compress);
  static Result<std::unique_ptr<PageWriter>> create(ImageSet& set, const std::string& id, bool compress);
  // Append pages at vaddr; len is a multiple of the page size. Adjacent runs
  // merge into one entry.
  Status add(uint64_t vaddr, const void* data, size_t len);
  // Record pages as the parent's (Pagemap::in_parent); adjacent runs merge.
  Status add_in_parent(uint64_t vaddr, size_t len);
  // Flush the last frame, close the pages image, write the pagemap.
  Status finish();
  uint64_t raw_bytes() const { return pm_.raw_len; }
  uint64_t stored_bytes() const;

 private:
  PageWriter() = default;
  Status append_stream(const void* data, size_t len);
  Status flush_zstd();
  ImageSet* set_ = nullptr;
  std::string pagemap_name_;
  std::unique_ptr<ImageWriter> out_;
  Pagemap pm_;
  bool compress_ = false;
  std::vector<char> zbuf_;  // raw bytes waiting to be compressed
  std::vector<char> zout_;
  void* cctx_ = nullptr;
  bool finished_ = false;
};

class PageReader {
 public:
  ~PageReader();
  static Result<std::unique_ptr<PageReader>> open(const ImageSet& set, uint64_t id);
  static Result<std::unique_ptr<PageReader>> open_pagemap(const ImageSet& set, const std::string& pagemap_name);
  const Pagemap& pagemap() const { return pm_; }
  // Read page-stream bytes [off, off+len), checking frame checksums.
  Status read(uint64_t off, void* buf, size_t len);
  // Read pages by virtual address; the range must lie inside one entry.
  Status read_vaddr(uint64_t vaddr, void* buf, size_t len);
  // Read and check every frame.
  Status verify();

 private:
  PageReader() = default;
  Status load_frame(size_t idx);  // into cache_
  std::string pagemap_name_;
  Pagemap pm_;
  ImageFile pages_;
  std::vector<char> cache_;
  std::vector<char> stored_;
  long cached_ = -1;
  void* dctx_ = nullptr;
};

}  // namespace cr
