// An image set: the files of one checkpoint, in a directory (-D DIR) or as a
// tar stream (-D -). Writers create files 0600 (directories 0700) without
// following symlinks, under a temporary name renamed at close; readers check
// every header, length and checksum before handing out data.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/image/format.h"

namespace cr {

class ImageSet;

// One image file being written. Payload bytes are appended with write();
// close() fills in the header and makes the file visible. Destroying an
// unclosed writer discards the file.
class ImageWriter {
 public:
  ~ImageWriter();
  // Append payload. If the caller already has the CRC-32C of these bytes it
  // may pass it to save a pass over the data.
  Status write(const void* data, size_t len, const uint32_t* known_crc = nullptr);
  Status close();
  uint64_t payload_len() const { return len_; }
  const std::string& name() const { return name_; }

 private:
  friend class ImageSet;
  ImageWriter(ImageSet* set, std::string name, ImageKind kind, UniqueFd fd)
      : set_(set), name_(std::move(name)), kind_(kind), fd_(std::move(fd)) {}
  ImageSet* set_;
  std::string name_;
  ImageKind kind_;
  UniqueFd fd_;
  uint32_t crc_ = 0;
  uint64_t len_ = 0;
  bool closed_ = false;
};

// One image file opened for reading, with its header validated.
class ImageFile {
 public:
  const std::string& name() const { return name_; }
  const ImageHeader& header() const { return hdr_; }
  ImageKind kind() const { return static_cast<ImageKind>(hdr_.kind); }
  const ImageKindInfo& kind_info() const { return *image_kind_info(hdr_.kind); }
  uint64_t payload_len() const { return hdr_.payload_len; }
  uint64_t file_size() const { return hdr_.payload_len + sizeof(ImageHeader); }
  int fd() const { return fd_->get(); }

  // Read payload bytes [off, off+len); fails if the range is outside.
  Status read_at(uint64_t off, void* buf, size_t len) const;
  // Read the whole payload and check its CRC.
  Status verify() const;
  // For CBOR images: read, verify and decode the payload.
  Result<nlohmann::json> decode() const;

 private:
  friend class ImageSet;
  std::string name_;
  ImageHeader hdr_{};
  std::shared_ptr<UniqueFd> fd_;
};

class ImageSet {
 public:
  ~ImageSet();
  // where: a directory path, or "-" for a tar stream on stream_fd (stdout).
  static Result<std::unique_ptr<ImageSet>> open_write(const std::string& where, bool overwrite,
                                                      int stream_fd = 1);
  // where: a directory path, or "-" for a tar stream on stream_fd (stdin).
  static Result<std::unique_ptr<ImageSet>> open_read(const std::string& where, int stream_fd = 0);
  // Add files to an existing directory set (cr-restore's stats): no
  // overwrite check, nothing removed. Not for streams.
  static Result<std::unique_ptr<ImageSet>> open_append(const std::string& dir);
  // Open a single file as a one-file set (cr-show -f); "-" reads stdin.
  static Result<std::unique_ptr<ImageSet>> open_single(const std::string& path);

  bool is_stream() const { return stream_; }
  const std::string& where() const { return where_; }

  // ---- writing ----
  Result<std::unique_ptr<ImageWriter>> create(const std::string& name, ImageKind kind);
  Status write_object(const std::string& name, ImageKind kind, const nlohmann::json& data);
  // Complete the set (stream: the end-of-archive blocks). Call once, last.
  // A directory set destroyed before finish() removes the files it wrote.
  Status finish();

  // ---- reading ----
  std::vector<std::string> names() const;  // sorted
  bool has(const std::string& name) const;
  Result<ImageFile> open(const std::string& name) const;
  // Open, verify and decode a CBOR image of the expected kind.
  Result<nlohmann::json> read_object(const std::string& name, ImageKind expected) const;

 private:
  friend class ImageWriter;
  ImageSet() = default;
  Status commit_file(ImageWriter& w);  // called by ImageWriter::close
  Status emit_tar_member(const std::string& name, int fd, uint64_t size);
  Status emit_tar_bytes(const std::string& name, const void* data, uint64_t size);

  std::string where_;
  bool stream_ = false;
  bool writing_ = false;
  bool finished_ = false;
  bool created_dir_ = false;
  UniqueFd dir_;    // directory mode
  int out_fd_ = 1;  // stream writing
  uint64_t out_off_ = 0;
  std::string tmpdir_;
  std::map<std::string, std::shared_ptr<UniqueFd>> members_;  // stream reading: spooled files
  std::vector<std::string> written_;
};

// Typed records: a record struct declares `static constexpr ImageKind kKind`
// and nlohmann to_json/from_json.
template <class T>
Status write_record(ImageSet& set, const std::string& name, const T& rec) {
  nlohmann::json j = rec;
  return set.write_object(name, T::kKind, j);
}

template <class T>
Result<T> read_record(const ImageSet& set, const std::string& name) {
  auto j = TRY(set.read_object(name, T::kKind));
  try {
    return j.template get<T>();
  } catch (const nlohmann::json::exception& e) {
    return make_error("%s: offset 32: %s record does not match its schema: %s", name.c_str(),
                      image_kind_info(T::kKind).name, e.what());
  }
}

// Temporary directory for spooled stream members ($TMPDIR or /var/tmp).
std::string spool_dir();

}  // namespace cr
