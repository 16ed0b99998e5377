// Embedded position-independent blobs (parasite/, built by parasite/gen-blob)
// and how the host loads them.
//
// A blob is an image (text | rodata | page-aligned data), followed by bss,
// with a table of absolute relocations: 8-byte slots holding an offset into
// the blob, to which the load address is added. Everything PC-relative was
// resolved at build time, so the image runs at any address once those slots
// are fixed. Named symbols (entries, the args area, the stack top) are
// exported as offsets.
//
//   const BlobDesc& p = parasite_blob();
//   uint64_t B = ...;                          // where it will run
//   std::vector<uint8_t> buf(p.map_size());
//   TRY_STATUS(blob_relocate_into(p, buf.data(), buf.size(), B));
//   // copy buf to B (in another task: remote mmap + process_vm_writev),
//   // [0, exec_size) R-X, [exec_size, map_size()) R/W.
//   uint64_t entry = B + TRY(p.symbol("parasite_trap_entry")).offset;
//
// LocalBlob maps a blob into this process at its own address (tests, and the
// restorer's home before it is moved with mremap).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "parasite/blob_abi.h"

namespace cr {

struct BlobSymbol {
  const char* name;
  uint64_t offset;  // from the blob's start
  uint64_t size;    // st_size: the object's size (0 for labels)
  uint64_t end() const { return offset + size; }
};

struct BlobDesc {
  const char* name;              // "parasite", "restorer"
  const unsigned char* image;    // image_size bytes: text, rodata, data
  uint64_t image_size;
  uint64_t total_size;           // image + bss
  uint64_t exec_size;            // [0, exec_size) is text+rodata (page-aligned)
  const uint32_t* relocs;        // offsets of 8-byte slots to add the base to
  uint64_t nr_relocs;
  const BlobSymbol* symbols;     // exported symbols, __blob_entry first
  uint64_t nr_symbols;

  // Bytes to map for the blob: total_size rounded up to a page.
  uint64_t map_size() const;
  // An exported symbol; an error naming the blob if it was not exported.
  Result<BlobSymbol> symbol(std::string_view sym) const;
  // An exported object that must be exactly `size` bytes (an args struct):
  // catches a host and blob built from different ABI headers.
  Result<BlobSymbol> object(std::string_view sym, uint64_t size) const;
};

// Fill dst[0, dst_size) with the blob as it must look when mapped at address
// `base`: the image, zeroed bss (and zeroed rest of dst), and the absolute
// relocations rebased. dst_size must be at least d.total_size; base must be
// page-aligned.
Status blob_relocate_into(const BlobDesc& d, void* dst, size_t dst_size, uint64_t base);

// A blob's failure report as an Error: "parasite: rt_sigaction 33: ..." with
// the errno ("parasite get-itimers: getitimer 0: ..." with a context).
Error blob_error(const BlobDesc& d, const BlobResult& r, pid_t pid = 0,
                 const char* context = nullptr);

// A blob mapped into this process at its own address, relocated, with
// [0, exec_size) R-X and the rest (plus `extra` bytes after map_size()) R/W.
class LocalBlob {
 public:
  static Result<LocalBlob> map(const BlobDesc& d, size_t extra = 0);

  LocalBlob() = default;
  LocalBlob(const LocalBlob&) = delete;
  LocalBlob& operator=(const LocalBlob&) = delete;
  LocalBlob(LocalBlob&& o) noexcept;
  LocalBlob& operator=(LocalBlob&& o) noexcept;
  ~LocalBlob();

  const BlobDesc& desc() const { return *desc_; }
  uint64_t base() const { return reinterpret_cast<uint64_t>(addr_); }
  size_t size() const { return size_; }
  // base + offset
  template <class T = void>
  T* at(uint64_t offset) const {
    return reinterpret_cast<T*>(static_cast<char*>(addr_) + offset);
  }
  // The exported object `sym`, checked to be sizeof(T) bytes.
  template <class T>
  Result<T*> object(std::string_view sym) const {
    auto s = desc_->object(sym, sizeof(T));
    if (!s) return std::move(s).error();
    return at<T>(s->offset);
  }
  // The exported function `sym` as a function pointer of type F.
  template <class F>
  Result<F> function(std::string_view sym) const {
    auto s = desc_->symbol(sym);
    if (!s) return std::move(s).error();
    return reinterpret_cast<F>(at<void>(s->offset));
  }

 private:
  void reset();
  const BlobDesc* desc_ = nullptr;
  void* addr_ = nullptr;
  size_t size_ = 0;
};

// The blobs embedded in this program (common/blob/blobs.cc).
const BlobDesc& parasite_blob();
const BlobDesc& restorer_blob();

}  // namespace cr
