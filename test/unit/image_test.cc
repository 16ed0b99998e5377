// The image library: record codecs, page frames, the tar stream, and
// robustness against every flipped byte and every truncation.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/crc32c.h"
#include "common/fd.h"
#include "common/image/image_set.h"
#include "common/image/pages.h"
#include "common/image/records.h"
#include "common/image/tar.h"

using namespace cr;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct TmpDir {
  std::string path;
  TmpDir() {
    char t[] = "/tmp/crtools-unit-XXXXXX";
    REQUIRE(mkdtemp(t));
    path = t;
  }
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

struct TestRecord {
  static constexpr ImageKind kKind = ImageKind::Test;
  int64_t number = 0;
  std::string text;
  std::vector<uint64_t> list;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TestRecord, number, text, list)

bool operator==(const TestRecord& a, const TestRecord& b) {
  return a.number == b.number && a.text == b.text && a.list == b.list;
}

std::vector<char> pattern(size_t pages, unsigned seed, bool compressible) {
  std::vector<char> v(pages * kPageSize);
  std::mt19937 rng(seed);
  for (size_t i = 0; i < v.size(); i++) v[i] = compressible ? char((i / 64) % 7) : char(rng());
  return v;
}

// What a small set holds, to compare a read against.
struct Expected {
  Inventory inv = make_inventory(4242);
  Stats stats{"dump", {{"freeze_us", 1234}, {"pages_written", 3}}};
  TestRecord test{-7, "hello", {1, 2, 0xffffffffffffffffull}};
  std::vector<char> a = pattern(3, 1, false), b = pattern(2, 2, true), c = pattern(300, 3, true);
};

Status write_small_set(ImageSet& set, const Expected& e) {
  TRY_STATUS(write_record(set, "test.img", e.test));
  TRY_STATUS(write_record(set, "stats-dump.img", e.stats));
  {
    auto pw = TRY(PageWriter::create(set, 1, false));
    TRY_STATUS(pw->add(0x10000, e.a.data(), e.a.size()));
    TRY_STATUS(pw->add(0x13000, e.b.data(), e.b.size()));  // merges with the first run
    TRY_STATUS(pw->add(0x7f0000000000, e.c.data(), e.c.size()));
    TRY_STATUS(pw->finish());
  }
  {
    auto pw = TRY(PageWriter::create(set, 2, true));
    TRY_STATUS(pw->add(0x20000, e.a.data(), e.a.size()));
    TRY_STATUS(pw->add(0x400000, e.c.data(), e.c.size()));
    TRY_STATUS(pw->finish());
  }
  TRY_STATUS(write_record(set, "inventory.img", e.inv));
  return set.finish();
}

// Read everything the set holds; compare with what was written.
Status read_and_compare(const ImageSet& set, const Expected& e) {
  auto inv = TRY(read_record<Inventory>(set, "inventory.img"));
  if (json(inv) != json(e.inv)) return make_error("inventory differs");
  auto st = TRY(read_record<Stats>(set, "stats-dump.img"));
  if (json(st) != json(e.stats)) return make_error("stats differ");
  auto t = TRY(read_record<TestRecord>(set, "test.img"));
  if (!(t == e.test)) return make_error("test record differs");
  for (int id = 1; id <= 2; id++) {
    auto pr = TRY(PageReader::open(set, id));
    TRY_STATUS(pr->verify());
    std::vector<char> buf(std::max({e.a.size(), e.b.size(), e.c.size()}));
    uint64_t a_at = id == 1 ? 0x10000 : 0x20000, c_at = id == 1 ? 0x7f0000000000 : 0x400000;
    TRY_STATUS(pr->read_vaddr(a_at, buf.data(), e.a.size()));
    if (memcmp(buf.data(), e.a.data(), e.a.size())) return make_error("pages a differ");
    TRY_STATUS(pr->read_vaddr(c_at, buf.data(), e.c.size()));
    if (memcmp(buf.data(), e.c.data(), e.c.size())) return make_error("pages c differ");
    // A read in the middle of a frame.
    TRY_STATUS(pr->read_vaddr(c_at + kPageSize, buf.data(), kPageSize));
    if (memcmp(buf.data(), e.c.data() + kPageSize, kPageSize)) return make_error("page c+1 differs");
    if (id == 1) {
      TRY_STATUS(pr->read_vaddr(0x13000, buf.data(), e.b.size()));
      if (memcmp(buf.data(), e.b.data(), e.b.size())) return make_error("pages b differ");
      if (pr->pagemap().entries.size() != 2) return make_error("runs did not merge");
    }
  }
  return ok_status();
}

std::vector<char> slurp(const std::string& p) {
  auto s = read_file(p.c_str(), 1 << 30);
  REQUIRE(s.ok());
  return std::vector<char>(s->begin(), s->end());
}

void spit(const std::string& p, const std::vector<char>& d, size_t len) {
  UniqueFd fd(open(p.c_str(), O_WRONLY | O_TRUNC | O_CREAT, 0600));
  REQUIRE(fd.valid());
  REQUIRE(write_full(fd.get(), d.data(), len).ok());
}

int memfd_with(const std::vector<char>& d, size_t len) {
  int fd = memfd_create("stream", MFD_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(write_full(fd, d.data(), len).ok());
  lseek(fd, 0, SEEK_SET);
  return fd;
}

}  // namespace

TEST_CASE("crc32c: known value, incremental, combine") {
  const char* s = "123456789";
  CHECK(crc32c(0, s, 9) == 0xe3069283u);  // the standard check value
  uint32_t a = crc32c(0, s, 4);
  CHECK(crc32c(a, s + 4, 5) == 0xe3069283u);
  CHECK(crc32c_combine(a, crc32c(0, s + 4, 5), 5) == 0xe3069283u);
  std::vector<char> big = pattern(100, 9, false);
  uint32_t whole = crc32c(0, big.data(), big.size());
  uint32_t p1 = crc32c(0, big.data(), 12345), p2 = crc32c(0, big.data() + 12345, big.size() - 12345);
  CHECK(crc32c_combine(p1, p2, big.size() - 12345) == whole);
}

TEST_CASE("every record kind round-trips through CBOR") {
  TmpDir d;
  auto set = ImageSet::open_write(d.path, false);
  REQUIRE(set.ok());
  Expected e;
  Pagemap pm;
  pm.pages_file = "pages-9.img";
  pm.compression = "zstd";
  pm.raw_len = 8192;
  pm.entries = {{0x1000, 2, 0}};
  pm.frames = {{0, 8192, 0, 100, 0xdeadbeef, true}};
  REQUIRE(write_record(**set, "inventory.img", e.inv).ok());
  REQUIRE(write_record(**set, "stats.img", e.stats).ok());
  REQUIRE(write_record(**set, "test.img", e.test).ok());
  REQUIRE(write_record(**set, "pagemap-9.img", pm).ok());
  REQUIRE((*set)->finish().ok());
  auto rs = ImageSet::open_read(d.path);
  REQUIRE(rs.ok());
  CHECK(json(*read_record<Inventory>(**rs, "inventory.img")) == json(e.inv));
  CHECK(json(*read_record<Stats>(**rs, "stats.img")) == json(e.stats));
  CHECK(*read_record<TestRecord>(**rs, "test.img") == e.test);
  CHECK(json(*read_record<Pagemap>(**rs, "pagemap-9.img")) == json(pm));
  // Reading as the wrong kind names the file and the offset of the kind.
  auto wrong = read_record<Stats>(**rs, "test.img");
  REQUIRE(!wrong.ok());
  CHECK(wrong.error().message == "test.img: offset 6: a test image where a stats image was expected");
  // Files are 0600.
  struct stat st;
  REQUIRE(stat((d.path + "/inventory.img").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("the kind table is consistent") {
  std::set<uint16_t> codes;
  std::set<std::string> names;
  for (auto& k : image_kind_table()) {
    CHECK(codes.insert(static_cast<uint16_t>(k.kind)).second);
    CHECK(names.insert(k.name).second);
    CHECK(k.version >= 1);
    CHECK(image_kind_info(static_cast<uint16_t>(k.kind)) == &k);
  }
}

TEST_CASE("a directory set round-trips, raw and zstd pages") {
  TmpDir d;
  Expected e;
  {
    auto set = ImageSet::open_write(d.path + "/set", false);
    REQUIRE(set.ok());
    REQUIRE(write_small_set(**set, e).ok());
  }
  struct stat st;
  REQUIRE(stat((d.path + "/set").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  auto rs = ImageSet::open_read(d.path + "/set");
  REQUIRE(rs.ok());
  auto cmp = read_and_compare(**rs, e);
  INFO((cmp.ok() ? std::string() : cmp.error().str()));
  CHECK(cmp.ok());
  // The compressible zstd set is smaller than the raw one.
  CHECK(fs::file_size(d.path + "/set/pages-2.img") < fs::file_size(d.path + "/set/pages-1.img") / 4);
  // No temporary files are left.
  for (auto& ent : fs::directory_iterator(d.path + "/set")) CHECK(ent.path().filename().string()[0] != '.');
}

TEST_CASE("an existing set is replaced only with overwrite") {
  TmpDir d;
  Expected e;
  {
    auto set = ImageSet::open_write(d.path, false);
    REQUIRE(set.ok());
    REQUIRE(write_small_set(**set, e).ok());
  }
  auto again = ImageSet::open_write(d.path, false);
  REQUIRE(!again.ok());
  CHECK(again.error().message.find("already holds an image set; use --overwrite") != std::string::npos);
  auto ow = ImageSet::open_write(d.path, true);
  REQUIRE(ow.ok());
  CHECK(!fs::exists(d.path + "/inventory.img"));
}

TEST_CASE("symlinks inside the image directory are not followed") {
  TmpDir d;
  Expected e;
  {
    auto set = ImageSet::open_write(d.path, false);
    REQUIRE(set.ok());
    REQUIRE(write_small_set(**set, e).ok());
  }
  fs::remove(d.path + "/test.img");
  fs::create_symlink("/etc/passwd", d.path + "/test.img");
  auto rs = ImageSet::open_read(d.path);
  REQUIRE(rs.ok());
  auto r = (*rs)->open("test.img");
  REQUIRE(!r.ok());
  CHECK(r.error().message == "test.img: is a symlink; refusing to follow it");
  // Names that leave the directory are refused.
  CHECK(!(*rs)->open("../x.img").ok());
}

TEST_CASE("a stream round-trips and is a tar archive") {
  TmpDir d;
  Expected e;
  int fd = memfd_create("stream", MFD_CLOEXEC);
  REQUIRE(fd >= 0);
  {
    auto set = ImageSet::open_write("-", false, fd);
    REQUIRE(set.ok());
    REQUIRE(write_small_set(**set, e).ok());
  }
  lseek(fd, 0, SEEK_SET);
  auto rs = ImageSet::open_read("-", fd);
  REQUIRE(rs.ok());
  auto cmp = read_and_compare(**rs, e);
  INFO((cmp.ok() ? std::string() : cmp.error().str()));
  CHECK(cmp.ok());
  CHECK((*rs)->names().size() == 7);
  // tar(1) lists the same files.
  std::string path = d.path + "/set.tar";
  {
    lseek(fd, 0, SEEK_SET);
    std::vector<char> all(lseek(fd, 0, SEEK_END));
    REQUIRE(pread_full(fd, all.data(), all.size(), 0).ok());
    spit(path, all, all.size());
  }
  close(fd);
  FILE* p = popen(("tar tf " + path + " | sort").c_str(), "r");
  REQUIRE(p);
  char line[256];
  std::string listed;
  while (fgets(line, sizeof line, p)) listed += line;
  CHECK(pclose(p) == 0);
  CHECK(listed ==
        "inventory.img\npagemap-1.img\npagemap-2.img\npages-1.img\npages-2.img\nstats-dump.img\ntest.img\n");
}

TEST_CASE("tar headers: sizes past the octal limit use base-256") {
  char blk[512];
  tar_encode_header("pages-1.img", 9ull << 30, blk);
  auto e = tar_decode_header(blk, 0);
  REQUIRE(e.ok());
  CHECK(e->size == 9ull << 30);
  CHECK(e->name == "pages-1.img");
  tar_encode_header("x.img", 12345, blk);
  e = tar_decode_header(blk, 0);
  REQUIRE(e.ok());
  CHECK(e->size == 12345);
}

// Flip every byte and truncate at every offset of every file of a small set:
// each read gives a clean error or the correct data.
TEST_CASE("robustness: every flipped byte and every truncation of a directory set") {
  TmpDir d;
  Expected e;
  e.c = pattern(2, 3, true);  // keep the set small: every byte is tried
  {
    auto set = ImageSet::open_write(d.path, false);
    REQUIRE(set.ok());
    REQUIRE(write_small_set(**set, e).ok());
  }
  size_t tried = 0, errors = 0;
  for (auto& ent : fs::directory_iterator(d.path)) {
    std::string p = ent.path().string();
    std::vector<char> orig = slurp(p);
    // Every byte of small files; of large page files, every byte of the
    // header and every 97th byte beyond.
    for (size_t i = 0; i < orig.size(); i += (i < 64 || orig.size() < 4096) ? 1 : 97) {
      std::vector<char> bad = orig;
      bad[i] ^= 0xff;
      spit(p, bad, bad.size());
      auto rs = ImageSet::open_read(d.path);
      REQUIRE(rs.ok());
      auto r = read_and_compare(**rs, e);
      tried++;
      if (!r.ok()) {
        errors++;
        INFO(r.error().message);
        CHECK(r.error().message.find(ent.path().filename().string()) != std::string::npos);
      }
    }
    for (size_t len = 0; len < orig.size(); len += (len < 64 || orig.size() < 4096) ? 1 : 97) {
      spit(p, orig, len);
      auto rs = ImageSet::open_read(d.path);
      REQUIRE(rs.ok());
      auto r = read_and_compare(**rs, e);
      tried++;
      CHECK(!r.ok());  // a truncated file is never the correct data
      if (!r.ok()) errors++;
    }
    spit(p, orig, orig.size());
  }
  MESSAGE("tried " << tried << " corruptions, " << errors << " detected");
  CHECK(tried > 1000);
  // CRC-32C catches every single-byte error: all were detected.
  CHECK(errors == tried);
}

TEST_CASE("robustness: every flipped byte and every truncation of a stream") {
  Expected e;
  e.c = pattern(2, 3, true);
  int fd = memfd_create("stream", MFD_CLOEXEC);
  REQUIRE(fd >= 0);
  {
    auto set = ImageSet::open_write("-", false, fd);
    REQUIRE(set.ok());
    REQUIRE(write_small_set(**set, e).ok());
  }
  std::vector<char> orig(lseek(fd, 0, SEEK_END));
  REQUIRE(pread_full(fd, orig.data(), orig.size(), 0).ok());
  close(fd);
  size_t tried = 0, ok = 0;
  for (size_t i = 0; i < orig.size(); i += 3) {
    std::vector<char> bad = orig;
    bad[i] ^= 0x5a;
    int m = memfd_with(bad, bad.size());
    auto rs = ImageSet::open_read("-", m);
    if (rs.ok() && read_and_compare(**rs, e).ok()) ok++;  // padding, mtime: harmless
    close(m);
    tried++;
  }
  for (size_t len = 0; len < orig.size() - 1024; len += 7) {
    int m = memfd_with(orig, len);
    auto rs = ImageSet::open_read("-", m);
    // Cut before the end-of-archive marker: always refused.
    CHECK(!rs.ok());
    if (!rs.ok()) CHECK(rs.error().message.rfind("stream:", 0) == 0);
    close(m);
    tried++;
  }
  MESSAGE("tried " << tried << " stream corruptions; " << ok << " were harmless (padding)");
  CHECK(tried > 1000);
}

TEST_CASE("validate_pagemap rejects inconsistent indexes") {
  Pagemap pm;
  pm.pages_file = "pages-1.img";
  pm.raw_len = 8192;
  pm.entries = {{0x1000, 2, 0}};
  pm.frames = {{0, 8192, 0, 8192, 0, false}};
  CHECK(validate_pagemap(pm, "pm", 8192).ok());
  CHECK(!validate_pagemap(pm, "pm", 8191).ok());
  auto bad = pm;
  bad.entries[0].vaddr = 0x1001;
  CHECK(!validate_pagemap(bad, "pm", 8192).ok());
  bad = pm;
  bad.entries.push_back({0x1000, 1, 8192});
  bad.raw_len = 12288;
  CHECK(!validate_pagemap(bad, "pm", 8192).ok());
  bad = pm;
  bad.frames[0].raw_len = 1ull << 40;
  CHECK(!validate_pagemap(bad, "pm", 8192).ok());
  bad = pm;
  bad.entries[0].nr_pages = 1ull << 62;
  CHECK(!validate_pagemap(bad, "pm", 8192).ok());
  bad = pm;
  bad.frames[0].zstd = true;
  CHECK(!validate_pagemap(bad, "pm", 8192).ok());
  // The parent's pages: apart from the stored ones and from each other.
  auto cow = pm;
  cow.in_parent = {{0x3000, 2}, {0x6000, 1}};
  CHECK(validate_pagemap(cow, "pm", 8192).ok());
  bad = cow;
  bad.in_parent[0].vaddr = 0x2000;  // overlaps the stored 0x1000-0x3000
  CHECK(validate_pagemap(bad, "pm", 8192).error().message.find("overlaps stored pages") != std::string::npos);
  bad = cow;
  bad.in_parent[1].vaddr = 0x4000;  // overlaps the run before it
  CHECK(validate_pagemap(bad, "pm", 8192).error().message.find("out of order") != std::string::npos);
  bad = cow;
  bad.in_parent[0].nr_pages = 0;
  CHECK(!validate_pagemap(bad, "pm", 8192).ok());
  bad = cow;
  bad.in_parent[1].vaddr = 0x6800;
  CHECK(!validate_pagemap(bad, "pm", 8192).ok());
}
