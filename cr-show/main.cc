// cr-show: decode an image set for people (text) and programs (--json).
//
// Records are CBOR, so every record prints through one generic renderer:
// no code here knows what a core or an mm record holds. Page data (-c) is
// the one special case: it is bytes, shown as a hex dump by address.
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/image/image_set.h"
#include "common/image/pages.h"
#include "common/log.h"
#include "common/options.h"

using nlohmann::json;
using namespace cr;

namespace {

const CommandSpec kShow = {
    "show",
    "-D DIR|- [-f FILE] [-c] [--json]\n       cr-show -f FILE [-c] [--json]",
    {Opt::ImagesDir, Opt::File, Opt::Contents, Opt::Json, Opt::LogFile, Opt::Verbosity, Opt::Version},
    false, 0, 0};

// Keys whose integer values read better in octal (modes) or hex (addresses,
// masks, flags).
bool octal_key(const std::string& k) { return k == "umask" || k == "mode"; }
bool hex_key(const std::string& k) {
  static const char* suffixes[] = {"addr", "start", "end", "base", "ip", "sp", "mask", "flags", "crc", "brk",
                                   "_code", "_data", "_stack", "_tid", "_list", "_ptr", "handler", "restorer",
                                   "pgoff", "blocked"};
  for (const char* s : suffixes) {
    size_t n = strlen(s);
    if (k.size() >= n && k.compare(k.size() - n, n, s) == 0) return true;
  }
  return false;
}

std::string scalar(const std::string& key, const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_unsigned() && octal_key(key)) {
    char b[32];
    snprintf(b, sizeof b, "0%" PRIo64, v.get<uint64_t>());
    return b;
  }
  if (v.is_number_unsigned() && hex_key(key)) {
    char b[32];
    snprintf(b, sizeof b, "0x%" PRIx64, v.get<uint64_t>());
    return b;
  }
  if (v.is_binary()) return "<" + std::to_string(v.get_binary().size()) + " bytes>";
  return v.dump();
}

bool is_scalar(const json& v) { return !v.is_object() && !v.is_array(); }

// YAML-like rendering: one line per scalar, nesting by indentation; arrays of
// scalars on one line.
void render(const std::string& key, const json& v, int indent, std::string& out) {
  std::string pad(indent, ' ');
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      const json& c = it.value();
      if (is_scalar(c)) {
        out += pad + it.key() + ": " + scalar(it.key(), c) + "\n";
      } else if (c.is_array() && std::all_of(c.begin(), c.end(), is_scalar)) {
        std::string line = pad + it.key() + ": [";
        bool first = true;
        for (auto& e : c) {
          line += (first ? "" : ", ") + scalar(it.key(), e);
          first = false;
        }
        out += line + "]\n";
      } else {
        out += pad + it.key() + ":" + (c.is_array() ? " (" + std::to_string(c.size()) + ")" : "") + "\n";
        render(it.key(), c, indent + 2, out);
      }
    }
  } else if (v.is_array()) {
    for (auto& e : v) {
      if (is_scalar(e)) {
        out += pad + "- " + scalar(key, e) + "\n";
      } else {
        std::string sub;
        render(key, e, indent + 2, sub);
        // Put the first line after the dash.
        if (sub.size() > (size_t)indent + 2) sub.replace(indent, 2, "- ");
        out += sub;
      }
    }
  } else {
    out += pad + scalar(key, v) + "\n";
  }
}

// One line: scalar fields and the sizes of arrays.
std::string summary(const json& v) {
  std::string s;
  if (!v.is_object()) return s;
  for (auto it = v.begin(); it != v.end(); ++it) {
    std::string part;
    if (is_scalar(it.value())) part = it.key() + "=" + scalar(it.key(), it.value());
    else if (it.value().is_array()) part = it.key() + "[" + std::to_string(it.value().size()) + "]";
    else part = it.key() + "{" + std::to_string(it.value().size()) + "}";
    if (part.size() > 48) part = part.substr(0, 45) + "...";
    if (!s.empty()) s += " ";
    s += part;
    if (s.size() > 160) {
      s += " ...";
      break;
    }
  }
  return s;
}

json hexdump_json(PageReader& pr) {
  json pages = json::array();
  std::vector<unsigned char> page(kPageSize);
  static const char* hx = "0123456789abcdef";
  for (const auto& e : pr.pagemap().entries) {
    for (uint64_t i = 0; i < e.nr_pages; i++) {
      auto st = pr.read(e.off + i * kPageSize, page.data(), kPageSize);
      if (!st) throw st.error();
      std::string h(kPageSize * 2, '0');
      for (size_t b = 0; b < kPageSize; b++) {
        h[2 * b] = hx[page[b] >> 4];
        h[2 * b + 1] = hx[page[b] & 15];
      }
      pages.push_back({{"vaddr", e.vaddr + i * kPageSize}, {"hex", h}});
    }
  }
  return pages;
}

Status hexdump_text(PageReader& pr, FILE* out) {
  std::vector<unsigned char> buf(64 * kPageSize);
  for (const auto& e : pr.pagemap().entries) {
    uint64_t total = e.nr_pages * kPageSize;
    unsigned char prev[16];
    bool have_prev = false, starred = false;
    for (uint64_t done = 0; done < total;) {
      size_t n = std::min<uint64_t>(buf.size(), total - done);
      TRY_STATUS(pr.read(e.off + done, buf.data(), n));
      for (size_t o = 0; o < n; o += 16) {
        const unsigned char* l = buf.data() + o;
        uint64_t addr = e.vaddr + done + o;
        bool last = done + o + 16 >= total;
        if (have_prev && !last && memcmp(prev, l, 16) == 0) {
          if (!starred) fputs("*\n", out);
          starred = true;
          continue;
        }
        starred = false;
        memcpy(prev, l, 16);
        have_prev = true;
        fprintf(out, "%012" PRIx64 ": ", addr);
        for (int i = 0; i < 16; i++) fprintf(out, "%02x%s", l[i], i == 7 ? "  " : " ");
        fputs(" |", out);
        for (int i = 0; i < 16; i++) fputc(l[i] >= 0x20 && l[i] < 0x7f ? l[i] : '.', out);
        fputs("|\n", out);
      }
      done += n;
    }
  }
  return ok_status();
}

// Describe one image: header facts plus the decoded record.
Result<json> describe(const ImageSet& set, const std::string& name, bool with_record) {
  auto f = TRY(set.open(name));
  json d = {{"file", name},
            {"kind", f.kind_info().name},
            {"version", f.header().kind_version},
            {"size", f.file_size()}};
  if (f.kind_info().cbor) {
    json rec = TRY(f.decode());
    if (with_record) d["record"] = rec;
    else d["summary"] = summary(rec);
  } else {
    TRY_STATUS(f.verify());
  }
  return d;
}

int fail(const Error& e) {
  log_error(e);
  return 1;
}

int show_file(const ImageSet& set, const std::string& name, const Options& o) {
  auto d = describe(set, name, true);
  if (!d) return fail(d.error());
  json out = *d;
  std::unique_ptr<PageReader> pr;
  if (o.contents) {
    if ((*d)["kind"] != "pagemap") {
      log_error(make_error("%s: -c shows page contents; give a pagemap image", name.c_str()));
      return 1;
    }
    auto r = PageReader::open_pagemap(set, name);
    if (!r) return fail(r.error());
    pr = std::move(*r);
  }
  if (o.json) {
    if (pr) {
      try {
        out["contents"] = hexdump_json(*pr);
      } catch (const Error& e) {
        return fail(e);
      }
    }
    printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  printf("%s: %s v%u, %" PRIu64 " bytes\n", name.c_str(), out["kind"].get<std::string>().c_str(),
         out["version"].get<unsigned>(), out["size"].get<uint64_t>());
  if (out.contains("record")) {
    std::string s;
    render("", out["record"], 2, s);
    fputs(s.c_str(), stdout);
  }
  if (pr) {
    auto st = hexdump_text(*pr, stdout);
    if (!st) return fail(st.error());
  }
  return 0;
}

int show_set(const ImageSet& set, const Options& o) {
  auto names = set.names();
  if (names.empty()) {
    log_error(make_error("%s: no images in this set", set.where().c_str()));
    return 1;
  }
  json all = json::array();
  for (const auto& n : names) {
    auto d = describe(set, n, o.json);
    if (!d) return fail(d.error());
    all.push_back(*d);
  }
  bool complete = set.has(image_name(ImageKind::Inventory));
  if (o.json) {
    json out = {{"images_dir", set.where()}, {"complete", complete}, {"images", all}};
    if (o.contents) {
      json contents = json::object();
      for (const auto& n : names) {
        if (n.rfind("pagemap", 0) != 0) continue;
        auto pr = PageReader::open_pagemap(set, n);
        if (!pr) return fail(pr.error());
        try {
          contents[n] = hexdump_json(**pr);
        } catch (const Error& e) {
          return fail(e);
        }
      }
      out["contents"] = contents;
    }
    printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  printf("image set %s: %zu images%s\n", set.where().c_str(), names.size(),
         complete ? "" : " (incomplete: no inventory.img)");
  uint64_t total = 0;
  for (auto& d : all) {
    total += d["size"].get<uint64_t>();
    printf("  %-22s %-9s v%-2u %10" PRIu64 "  %s\n", d["file"].get<std::string>().c_str(),
           d["kind"].get<std::string>().c_str(), d["version"].get<unsigned>(), d["size"].get<uint64_t>(),
           d.contains("summary") ? d["summary"].get<std::string>().c_str() : "");
  }
  printf("  total %" PRIu64 " bytes\n", total);
  if (o.contents) {
    for (const auto& n : names) {
      if (n.rfind("pagemap", 0) != 0) continue;
      auto pr = PageReader::open_pagemap(set, n);
      if (!pr) return fail(pr.error());
      printf("\n%s:\n", n.c_str());
      auto st = hexdump_text(**pr, stdout);
      if (!st) return fail(st.error());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = command_start_or_exit(kShow, argc, argv);
  if (!o.has(Opt::ImagesDir) && !o.has(Opt::File)) {
    fprintf(stderr, "cr-show: give -D DIR (a set) or -f FILE (one image); see 'cr-show --help'\n");
    return 2;
  }
  if (o.has(Opt::ImagesDir)) {
    auto set = ImageSet::open_read(o.images_dir);
    if (!set) return fail(set.error());
    if (o.has(Opt::File)) return show_file(**set, o.file, o);
    return show_set(**set, o);
  }
  // -f alone: a file path. A pagemap needs its pages file beside it, so open
  // the containing directory as the set.
  std::string path = o.file;
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (path != "-") {
    auto set = ImageSet::open_read(dir);
    if (!set) return fail(set.error());
    return show_file(**set, base, o);
  }
  auto set = ImageSet::open_single(path);
  if (!set) return fail(set.error());
  return show_file(**set, "stdin", o);
}
