#include "common/image/pages.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>

#include "common/crc32c.h"
#include "common/image/tar.h"

namespace cr {

namespace {
unsigned long long ull(uint64_t v) { return v; }
}  // namespace

Status validate_pagemap(const Pagemap& pm, const std::string& name, uint64_t pages_payload_len) {
  const char* n = name.c_str();
  if (pm.page_size != kPageSize)
    return make_error("%s: page size %llu is not supported (only 4096)", n, ull(pm.page_size));
  if (pm.compression != "none" && pm.compression != "zstd")
    return make_error("%s: unknown compression '%s'", n, pm.compression.c_str());
  uint64_t off = 0, prev_end = 0;
  for (size_t i = 0; i < pm.entries.size(); i++) {
    const auto& e = pm.entries[i];
    if (e.vaddr % kPageSize || e.nr_pages == 0 || e.nr_pages > (1ull << 36) ||
        e.vaddr > (1ull << 57) || e.nr_pages * kPageSize > (1ull << 57) - e.vaddr)
      return make_error("%s: entry %zu: bad page run %#llx + %llu pages", n, i, ull(e.vaddr), ull(e.nr_pages));
    if (i && e.vaddr < prev_end)
      return make_error("%s: entry %zu: page run %#llx overlaps or is out of order", n, i, ull(e.vaddr));
    if (e.off != off) return make_error("%s: entry %zu: page offset %llu, expected %llu", n, i, ull(e.off), ull(off));
    off += e.nr_pages * kPageSize;
    prev_end = e.vaddr + e.nr_pages * kPageSize;
  }
  if (off != pm.raw_len)
    return make_error("%s: entries hold %llu bytes but raw_len says %llu", n, ull(off), ull(pm.raw_len));
  // The parent's pages: in order, apart from each other and from the stored ones.
  size_t ei = 0;
  prev_end = 0;
  for (size_t i = 0; i < pm.in_parent.size(); i++) {
    const auto& r = pm.in_parent[i];
    if (r.vaddr % kPageSize || r.nr_pages == 0 || r.nr_pages > (1ull << 36) || r.vaddr > (1ull << 57) ||
        r.nr_pages * kPageSize > (1ull << 57) - r.vaddr)
      return make_error("%s: parent's run %zu: bad page run %#llx + %llu pages", n, i, ull(r.vaddr), ull(r.nr_pages));
    uint64_t end = r.vaddr + r.nr_pages * kPageSize;
    if (i && r.vaddr < prev_end)
      return make_error("%s: parent's run %zu: %#llx overlaps or is out of order", n, i, ull(r.vaddr));
    while (ei < pm.entries.size() && pm.entries[ei].vaddr + pm.entries[ei].nr_pages * kPageSize <= r.vaddr) ei++;
    if (ei < pm.entries.size() && pm.entries[ei].vaddr < end)
      return make_error("%s: parent's run %zu: %#llx overlaps stored pages", n, i, ull(r.vaddr));
    prev_end = end;
  }
  uint64_t roff = 0, foff = 0;
  for (size_t i = 0; i < pm.frames.size(); i++) {
    const auto& f = pm.frames[i];
    if (f.raw_off != roff || f.file_off != foff)
      return make_error("%s: frame %zu: offsets %llu/%llu, expected %llu/%llu", n, i, ull(f.raw_off),
                        ull(f.file_off), ull(roff), ull(foff));
    if (f.raw_len == 0 || f.raw_len > kMaxFrameRaw)
      return make_error("%s: frame %zu: bad length %llu", n, i, ull(f.raw_len));
    if (f.zstd ? (pm.compression != "zstd" || f.stored_len == 0 || f.stored_len > ZSTD_compressBound(f.raw_len))
               : f.stored_len != f.raw_len)
      return make_error("%s: frame %zu: bad stored length %llu", n, i, ull(f.stored_len));
    roff += f.raw_len;
    foff += f.stored_len;
  }
  if (roff != pm.raw_len)
    return make_error("%s: frames hold %llu bytes of pages, entries %llu", n, ull(roff), ull(pm.raw_len));
  if (foff != pages_payload_len)
    return make_error("%s: frames take %llu bytes but %s holds %llu", n, ull(foff), pm.pages_file.c_str(),
                      ull(pages_payload_len));
  return ok_status();
}

Status validate_object_pagemap(const Pagemap& pm, const std::string& name, uint64_t size) {
  if (!pm.in_parent.empty()) return make_error("%s: a shared object's pages cannot be the parent's", name.c_str());
  uint64_t limit = (size + kPageSize - 1) / kPageSize * kPageSize;
  if (!pm.entries.empty()) {
    const auto& e = pm.entries.back();  // validated: sorted, apart, no overflow
    if (e.vaddr > limit || e.nr_pages > (limit - e.vaddr) / kPageSize)
      return make_error("%s: pages at offset %#llx + %llu pages lie past the object's %llu bytes", name.c_str(),
                        ull(e.vaddr), ull(e.nr_pages), ull(size));
  }
  return ok_status();
}

// ---------------------------------------------------------------- writer

PageWriter::~PageWriter() {
  if (cctx_) ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_));
}

Result<std::unique_ptr<PageWriter>> PageWriter::create(ImageSet& set, uint64_t id, bool compress) {
  return create(set, std::to_string(id), compress);
}

Result<std::unique_ptr<PageWriter>> PageWriter::create(ImageSet& set, const std::string& id, bool compress) {
  std::unique_ptr<PageWriter> w(new PageWriter());
  w->set_ = &set;
  w->pagemap_name_ = image_name(ImageKind::Pagemap, id);
  w->pm_.pages_file = image_name(ImageKind::Pages, id);
  w->pm_.compression = compress ? "zstd" : "none";
  w->compress_ = compress;
  w->out_ = TRY(set.create(w->pm_.pages_file, ImageKind::Pages));
  if (compress) {
    w->cctx_ = ZSTD_createCCtx();
    if (!w->cctx_) return make_error("cannot create a zstd context");
    w->zbuf_.reserve(kZstdFrameSize);
    w->zout_.resize(ZSTD_compressBound(kZstdFrameSize));
  }
  return w;
}

uint64_t PageWriter::stored_bytes() const {
  uint64_t s = 0;
  for (auto& f : pm_.frames) s += f.stored_len;
  return s + zbuf_.size();
}

Status PageWriter::add(uint64_t vaddr, const void* data, size_t len) {
  if (finished_) return make_error("%s: add after finish", pagemap_name_.c_str());
  if (len == 0) return ok_status();
  if (vaddr % kPageSize || len % kPageSize)
    return make_error("%s: unaligned page run %#llx + %zu", pagemap_name_.c_str(), ull(vaddr), len);
  if (!pm_.entries.empty()) {
    auto& last = pm_.entries.back();
    uint64_t end = last.vaddr + last.nr_pages * kPageSize;
    if (vaddr < end)
      return make_error("%s: page run %#llx is out of order", pagemap_name_.c_str(), ull(vaddr));
    if (vaddr == end) {
      last.nr_pages += len / kPageSize;
    } else {
      pm_.entries.push_back({vaddr, len / kPageSize, pm_.raw_len});
    }
  } else {
    pm_.entries.push_back({vaddr, len / kPageSize, pm_.raw_len});
  }
  TRY_STATUS(append_stream(data, len));
  pm_.raw_len += len;
  return ok_status();
}

Status PageWriter::add_in_parent(uint64_t vaddr, size_t len) {
  if (finished_) return make_error("%s: add after finish", pagemap_name_.c_str());
  if (len == 0) return ok_status();
  if (vaddr % kPageSize || len % kPageSize)
    return make_error("%s: unaligned page run %#llx + %zu", pagemap_name_.c_str(), ull(vaddr), len);
  if (!pm_.in_parent.empty()) {
    auto& last = pm_.in_parent.back();
    uint64_t end = last.vaddr + last.nr_pages * kPageSize;
    if (vaddr < end) return make_error("%s: page run %#llx is out of order", pagemap_name_.c_str(), ull(vaddr));
    if (vaddr == end) {
      last.nr_pages += len / kPageSize;
      return ok_status();
    }
  }
  pm_.in_parent.push_back({vaddr, len / kPageSize});
  return ok_status();
}

Status PageWriter::append_stream(const void* data, size_t len) {
  auto* p = static_cast<const char*>(data);
  if (!compress_) {
    // Raw frames: extend the open frame up to kRawFrameSize, writing through.
    while (len) {
      if (pm_.frames.empty() || pm_.frames.back().raw_len >= kRawFrameSize) {
        PageFrame f;
        f.raw_off = pm_.raw_len + (p - static_cast<const char*>(data));
        f.file_off = f.raw_off;
        pm_.frames.push_back(f);
      }
      auto& f = pm_.frames.back();
      size_t n = std::min<uint64_t>(len, kRawFrameSize - f.raw_len);
      uint32_t c = crc32c(0, p, n);
      TRY_STATUS(out_->write(p, n, &c));
      f.crc = crc32c_combine(f.crc, c, n);
      f.raw_len += n;
      f.stored_len += n;
      p += n;
      len -= n;
    }
    return ok_status();
  }
  while (len) {
    size_t n = std::min<uint64_t>(len, kZstdFrameSize - zbuf_.size());
    zbuf_.insert(zbuf_.end(), p, p + n);
    p += n;
    len -= n;
    if (zbuf_.size() == kZstdFrameSize) TRY_STATUS(flush_zstd());
  }
  return ok_status();
}

Status PageWriter::flush_zstd() {
  if (zbuf_.empty()) return ok_status();
  PageFrame f;
  f.raw_off = pm_.frames.empty() ? 0 : pm_.frames.back().raw_off + pm_.frames.back().raw_len;
  f.file_off = pm_.frames.empty() ? 0 : pm_.frames.back().file_off + pm_.frames.back().stored_len;
  f.raw_len = zbuf_.size();
  size_t z = ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(cctx_), zout_.data(), zout_.size(), zbuf_.data(),
                               zbuf_.size(), 1);
  if (ZSTD_isError(z)) return make_error("zstd: %s", ZSTD_getErrorName(z));
  const char* src;
  if (z < zbuf_.size()) {
    f.zstd = true;
    f.stored_len = z;
    src = zout_.data();
  } else {
    f.stored_len = zbuf_.size();  // incompressible: store raw
    src = zbuf_.data();
  }
  f.crc = crc32c(0, src, f.stored_len);
  TRY_STATUS(out_->write(src, f.stored_len, &f.crc));
  pm_.frames.push_back(f);
  zbuf_.clear();
  return ok_status();
}

Status PageWriter::finish() {
  if (finished_) return ok_status();
  if (compress_) TRY_STATUS(flush_zstd());
  finished_ = true;
  TRY_STATUS(out_->close());
  return write_record(*set_, pagemap_name_, pm_);
}

// ---------------------------------------------------------------- reader

PageReader::~PageReader() {
  if (dctx_) ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(dctx_));
}

Result<std::unique_ptr<PageReader>> PageReader::open(const ImageSet& set, uint64_t id) {
  return open_pagemap(set, image_name(ImageKind::Pagemap, id));
}

Result<std::unique_ptr<PageReader>> PageReader::open_pagemap(const ImageSet& set, const std::string& name) {
  std::unique_ptr<PageReader> r(new PageReader());
  r->pagemap_name_ = name;
  r->pm_ = TRY(read_record<Pagemap>(set, name));
  TRY_STATUS(check_image_file_name(r->pm_.pages_file));
  r->pages_ = TRY(set.open(r->pm_.pages_file));
  if (r->pages_.kind() != ImageKind::Pages)
    return make_error("%s: offset 6: not a pages image", r->pm_.pages_file.c_str());
  TRY_STATUS(validate_pagemap(r->pm_, name, r->pages_.payload_len()));
  r->dctx_ = ZSTD_createDCtx();
  if (!r->dctx_) return make_error("cannot create a zstd context");
  return r;
}

Status PageReader::load_frame(size_t idx) {
  if (cached_ == static_cast<long>(idx)) return ok_status();
  const auto& f = pm_.frames[idx];
  const std::string& pf = pm_.pages_file;
  stored_.resize(f.stored_len);
  TRY_STATUS(pages_.read_at(f.file_off, stored_.data(), f.stored_len));
  if (!checksum_matches(crc32c(0, stored_.data(), f.stored_len), f.crc))
    return make_error("%s: offset %llu: page frame %zu checksum mismatch", pf.c_str(),
                      ull(f.file_off + sizeof(ImageHeader)), idx);
  cached_ = -1;
  if (!f.zstd) {
    cache_.swap(stored_);
  } else {
    cache_.resize(f.raw_len);
    size_t n = ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(dctx_), cache_.data(), cache_.size(),
                                   stored_.data(), stored_.size());
    if (ZSTD_isError(n) || n != f.raw_len)
      return make_error("%s: offset %llu: page frame %zu does not decompress to %llu bytes", pf.c_str(),
                        ull(f.file_off + sizeof(ImageHeader)), idx, ull(f.raw_len));
  }
  cached_ = static_cast<long>(idx);
  return ok_status();
}

Status PageReader::read(uint64_t off, void* buf, size_t len) {
  if (off > pm_.raw_len || len > pm_.raw_len - off)
    return make_error("%s: read of %zu bytes at page offset %llu is past the end", pagemap_name_.c_str(), len,
                      ull(off));
  auto* out = static_cast<char*>(buf);
  // Frames are sorted by raw_off: binary search the first one.
  size_t i = std::upper_bound(pm_.frames.begin(), pm_.frames.end(), off,
                              [](uint64_t o, const PageFrame& f) { return o < f.raw_off; }) -
             pm_.frames.begin();
  if (i) i--;
  while (len) {
    const auto& f = pm_.frames[i];
    uint64_t in = off - f.raw_off;
    size_t n = std::min<uint64_t>(len, f.raw_len - in);
    if (!f.zstd && in == 0 && n == f.raw_len) {
      // A whole raw frame: read straight into the caller's buffer.
      TRY_STATUS(pages_.read_at(f.file_off, out, n));
      if (crc32c(0, out, n) != f.crc)
        return make_error("%s: offset %llu: page frame %zu checksum mismatch", pm_.pages_file.c_str(),
                          ull(f.file_off + sizeof(ImageHeader)), i);
    } else {
      TRY_STATUS(load_frame(i));
      memcpy(out, cache_.data() + in, n);
    }
    out += n;
    off += n;
    len -= n;
    i++;
  }
  return ok_status();
}

Status PageReader::read_vaddr(uint64_t vaddr, void* buf, size_t len) {
  auto it = std::upper_bound(pm_.entries.begin(), pm_.entries.end(), vaddr,
                             [](uint64_t v, const PagemapEntry& e) { return v < e.vaddr; });
  if (it == pm_.entries.begin()) return make_error("%s: no pages at %#llx", pagemap_name_.c_str(), ull(vaddr));
  --it;
  uint64_t end = it->vaddr + it->nr_pages * kPageSize;
  if (vaddr >= end || len > end - vaddr)
    return make_error("%s: no pages at %#llx + %zu", pagemap_name_.c_str(), ull(vaddr), len);
  return read(it->off + (vaddr - it->vaddr), buf, len);
}

Status PageReader::verify() {
  TRY_STATUS(pages_.verify());
  for (size_t i = 0; i < pm_.frames.size(); i++) {
    cached_ = -1;
    TRY_STATUS(load_frame(i));
  }
  return ok_status();
}

}  // namespace cr
