// The on-disk format of one image file (see man/crtools-images.5).
//
// Every image file starts with a 32-byte header, little-endian:
//
//   0  magic        "CRTI"
//   4  u16 format   kImageFormatVersion
//   6  u16 kind     code from the image kind table
//   8  u16 kind_version  schema version of that kind's records
//  10  u16 flags    kFlagCbor: the payload is one CBOR value
//  12  u32 payload_crc   CRC-32C of the payload
//  16  u64 payload_len   bytes after the header (== file size - 32)
//  24  u32 reserved      0
//  28  u32 header_crc    CRC-32C of bytes 0..27
//
// followed by payload_len bytes of payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace cr {

constexpr char kImageMagic[4] = {'C', 'R', 'T', 'I'};
constexpr uint16_t kImageFormatVersion = 1;
constexpr uint16_t kFlagCbor = 1;
// Largest metadata (CBOR) payload a reader accepts.
constexpr uint64_t kMaxCborPayload = 256ull << 20;

struct ImageHeader {
  char magic[4];
  uint16_t format;
  uint16_t kind;
  uint16_t kind_version;
  uint16_t flags;
  uint32_t payload_crc;
  uint64_t payload_len;
  uint32_t reserved;
  uint32_t header_crc;
};
static_assert(sizeof(ImageHeader) == 32, "image header is 32 bytes");
static_assert(offsetof(ImageHeader, payload_len) == 16);
static_assert(offsetof(ImageHeader, header_crc) == 28);

// The image kinds: one row each. A new kind of state adds a row here, its
// record struct in common/image/records.h, and nothing in cr-show.
enum class ImageKind : uint16_t {
  Inventory = 1,
  Stats = 2,
  Pstree = 3,
  Core = 4,
  Mm = 5,
  Pagemap = 6,
  Pages = 7,
  Files = 8,
  Fdinfo = 9,
  Test = 100,  // used by unit tests only
};

struct ImageKindInfo {
  ImageKind kind;
  const char* name;         // short name, used in JSON and messages
  const char* file_prefix;  // "core" -> core.img or core-<id>.img
  uint16_t version;         // current schema version written
  bool cbor;                // payload is a CBOR record (false: raw data)
  const char* description;
};

const std::vector<ImageKindInfo>& image_kind_table();
const ImageKindInfo* image_kind_info(uint16_t code);
const ImageKindInfo& image_kind_info(ImageKind kind);

// Image file names: "<prefix>.img" or "<prefix>-<id>.img". A task's id is
// its pid; other owners use ids that are not all digits ("shmem-3").
std::string image_name(ImageKind kind);
std::string image_name(ImageKind kind, uint64_t id);
std::string image_name(ImageKind kind, const std::string& id);

// Header encode/validate. validate_header checks magic, versions, flags,
// header CRC and, if file_size is given, the payload length.
ImageHeader make_header(ImageKind kind, uint64_t payload_len, uint32_t payload_crc);
Status validate_header(const ImageHeader& h, const std::string& file, uint64_t file_size);

}  // namespace cr
