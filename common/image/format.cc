#include "common/image/format.h"

#include <cstring>

#include "common/crc32c.h"

namespace cr {

namespace {
const std::vector<ImageKindInfo> kKinds = {
    {ImageKind::Inventory, "inventory", "inventory", 1, true,
     "what the set holds: format, tool version, root pid, host, options used"},
    {ImageKind::Stats, "stats", "stats", 1, true, "timings and counters of a dump or restore"},
    {ImageKind::Pstree, "pstree", "pstree", 2, true, "the process tree: pids, parents, groups, sessions, threads"},
    {ImageKind::Core, "core", "core", 4, true, "one task: registers, xsave, signals, credentials, limits"},
    {ImageKind::Mm, "mm", "mm", 2, true, "one address space: VMAs and mm fields"},
    {ImageKind::Pagemap, "pagemap", "pagemap", 2, true, "index of dumped pages and of their frames"},
    {ImageKind::Pages, "pages", "pages", 1, false, "page data, raw or zstd frames"},
    {ImageKind::Files, "files", "files", 9, true,
     "open file descriptions, pipes, shared memory, SysV shared memory segments, unix sockets, fanotify groups, "
     "inet sockets, terminals"},
    {ImageKind::Fdinfo, "fdinfo", "fdinfo", 2, true, "one task's fd table and its POSIX locks"},
    {ImageKind::Test, "test", "test", 1, true, "test records (unit tests)"},
};
}  // namespace

const std::vector<ImageKindInfo>& image_kind_table() { return kKinds; }

const ImageKindInfo* image_kind_info(uint16_t code) {
  for (const auto& k : kKinds)
    if (static_cast<uint16_t>(k.kind) == code) return &k;
  return nullptr;
}

const ImageKindInfo& image_kind_info(ImageKind kind) {
  return *image_kind_info(static_cast<uint16_t>(kind));
}

std::string image_name(ImageKind kind) {
  return std::string(image_kind_info(kind).file_prefix) + ".img";
}

std::string image_name(ImageKind kind, uint64_t id) { return image_name(kind, std::to_string(id)); }

std::string image_name(ImageKind kind, const std::string& id) {
  return std::string(image_kind_info(kind).file_prefix) + "-" + id + ".img";
}

ImageHeader make_header(ImageKind kind, uint64_t payload_len, uint32_t payload_crc) {
  const auto& info = image_kind_info(kind);
  ImageHeader h{};
  memcpy(h.magic, kImageMagic, 4);
  h.format = kImageFormatVersion;
  h.kind = static_cast<uint16_t>(kind);
  h.kind_version = info.version;
  h.flags = info.cbor ? kFlagCbor : 0;
  h.payload_crc = payload_crc;
  h.payload_len = payload_len;
  h.reserved = 0;
  h.header_crc = crc32c(0, &h, offsetof(ImageHeader, header_crc));
  return h;
}

Status validate_header(const ImageHeader& h, const std::string& file, uint64_t file_size) {
  const char* f = file.c_str();
  if (file_size < sizeof(ImageHeader))
    return make_error("%s: offset %llu: truncated image header (file has %llu bytes, need 32)", f,
                      (unsigned long long)file_size, (unsigned long long)file_size);
  if (memcmp(h.magic, kImageMagic, 4) != 0)
    return make_error("%s: offset 0: not a crtools image (bad magic)", f);
  if (!checksum_matches(crc32c(0, &h, offsetof(ImageHeader, header_crc)), h.header_crc))
    return make_error("%s: offset 28: header checksum mismatch", f);
  if (h.format != kImageFormatVersion)
    return make_error("%s: offset 4: image format version %u is not supported (this crtools reads %u)",
                      f, h.format, kImageFormatVersion);
  const ImageKindInfo* info = image_kind_info(h.kind);
  if (!info) return make_error("%s: offset 6: unknown image kind %u", f, h.kind);
  if (h.kind_version == 0 || h.kind_version > info->version)
    return make_error("%s: offset 8: %s record version %u is newer than this crtools (%u)", f,
                      info->name, h.kind_version, info->version);
  if ((h.flags & ~kFlagCbor) != 0 || ((h.flags & kFlagCbor) != 0) != info->cbor)
    return make_error("%s: offset 10: bad flags 0x%x for a %s image", f, h.flags, info->name);
  if (h.reserved != 0) return make_error("%s: offset 24: reserved field is not zero", f);
  if (h.payload_len != file_size - sizeof(ImageHeader))
    return make_error("%s: offset 16: payload length %llu does not match the file (%llu bytes after the header)",
                      f, (unsigned long long)h.payload_len,
                      (unsigned long long)(file_size - sizeof(ImageHeader)));
  if (info->cbor && h.payload_len > kMaxCborPayload)
    return make_error("%s: offset 16: record payload of %llu bytes is larger than the %llu allowed", f,
                      (unsigned long long)h.payload_len, (unsigned long long)kMaxCborPayload);
  return ok_status();
}

}  // namespace cr
