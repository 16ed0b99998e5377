// gen-blob: turn a blob's relocatable object (ld -r -T parasite/blob.lds)
// into a C++ header the host embeds (common/blob/blobs.cc).
//
//   gen-blob --name NAME [--export SYMBOL]... [-o OUT.inc] [--bin OUT.bin]
//            [--describe] BLOB.o
//
// It lays the allocated sections out in section-header order (the linker
// script's order), starting the first writable one on a page so that the
// host can map text+rodata R-X and data+bss R/W, and then:
//   - resolves R_X86_64_PC32 and R_X86_64_PLT32 now (they do not depend on
//     where the blob is loaded);
//   - stores S+A for R_X86_64_64 and records its offset in a table; the
//     loader adds the load base there at run time;
//   - rejects (exit status 1, one message per problem, naming the blob, the
//     section, the relocation/symbol) everything else: other relocation
//     kinds (GOT, TLS, 32-bit absolute...), undefined symbols, COMMON
//     symbols, TLS sections, constructors/destructors (.init_array, .ctors,
//     .fini_array, .dtors), sections in an order the loader cannot map, and
//     a missing __blob_entry at offset 0.
// --describe prints the layout (sizes, relocation offsets, exports) to
// stdout; --bin writes the raw image (without bss). Both are for tests and
// for people.
#include <elf.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kPage = 4096;

std::string g_blob = "?";  // blob name, for messages
int g_errors = 0;

__attribute__((format(printf, 1, 2))) void reject(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "gen-blob: blob %s: ", g_blob.c_str());
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  g_errors++;
}

[[noreturn]] __attribute__((format(printf, 1, 2))) void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "gen-blob: blob %s: ", g_blob.c_str());
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

uint64_t align_up(uint64_t v, uint64_t a) { return a <= 1 ? v : (v + a - 1) / a * a; }

const char* reloc_name(uint32_t type) {
  switch (type) {
#define R(x) \
  case x:    \
    return #x;
    R(R_X86_64_NONE) R(R_X86_64_64) R(R_X86_64_PC32) R(R_X86_64_GOT32) R(R_X86_64_PLT32)
    R(R_X86_64_COPY) R(R_X86_64_GLOB_DAT) R(R_X86_64_JUMP_SLOT) R(R_X86_64_RELATIVE)
    R(R_X86_64_GOTPCREL) R(R_X86_64_32) R(R_X86_64_32S) R(R_X86_64_16) R(R_X86_64_PC16)
    R(R_X86_64_8) R(R_X86_64_PC8) R(R_X86_64_DTPMOD64) R(R_X86_64_DTPOFF64)
    R(R_X86_64_TPOFF64) R(R_X86_64_TLSGD) R(R_X86_64_TLSLD) R(R_X86_64_DTPOFF32)
    R(R_X86_64_GOTTPOFF) R(R_X86_64_TPOFF32) R(R_X86_64_PC64) R(R_X86_64_GOTOFF64)
    R(R_X86_64_GOTPC32) R(R_X86_64_GOT64) R(R_X86_64_GOTPCREL64) R(R_X86_64_GOTPC64)
    R(R_X86_64_GOTPLT64) R(R_X86_64_PLTOFF64) R(R_X86_64_SIZE32) R(R_X86_64_SIZE64)
    R(R_X86_64_GOTPC32_TLSDESC) R(R_X86_64_TLSDESC_CALL) R(R_X86_64_TLSDESC)
    R(R_X86_64_IRELATIVE) R(R_X86_64_RELATIVE64) R(R_X86_64_GOTPCRELX)
    R(R_X86_64_REX_GOTPCRELX)
#undef R
    default:
      return "unknown";
  }
}

struct Section {
  std::string name;
  const Elf64_Shdr* sh = nullptr;
  bool laid_out = false;
  uint64_t offset = 0;  // in the blob image
};

struct Export {
  std::string name;
  uint64_t offset = 0;
  uint64_t size = 0;
};

struct Blob {
  std::vector<uint8_t> image;  // text, rodata, data (no bss)
  uint64_t image_size = 0;
  uint64_t total_size = 0;  // with bss
  uint64_t exec_size = 0;   // page-aligned end of the R-X part
  std::vector<uint32_t> relocs;
  std::vector<Export> exports;
};

class Elf {
 public:
  explicit Elf(std::vector<uint8_t> data) : d_(std::move(data)) {}

  void parse() {
    if (d_.size() < sizeof(Elf64_Ehdr)) die("not an ELF file (too short)");
    eh_ = reinterpret_cast<const Elf64_Ehdr*>(d_.data());
    if (memcmp(eh_->e_ident, ELFMAG, SELFMAG) != 0) die("not an ELF file");
    if (eh_->e_ident[EI_CLASS] != ELFCLASS64 || eh_->e_ident[EI_DATA] != ELFDATA2LSB)
      die("not a 64-bit little-endian ELF object");
    if (eh_->e_machine != EM_X86_64) die("not an x86-64 object (e_machine %u)", eh_->e_machine);
    if (eh_->e_type != ET_REL)
      die("not a relocatable object (e_type %u): link blobs with ld -r", eh_->e_type);
    if (eh_->e_shentsize != sizeof(Elf64_Shdr)) die("unexpected section header size");
    if (eh_->e_shnum == 0 || eh_->e_shstrndx == SHN_UNDEF || eh_->e_shstrndx >= eh_->e_shnum)
      die("no section headers / section name table (extended numbering is not supported)");
    check_range(eh_->e_shoff, uint64_t(eh_->e_shnum) * sizeof(Elf64_Shdr), "section headers");
    auto shdrs = reinterpret_cast<const Elf64_Shdr*>(d_.data() + eh_->e_shoff);
    const Elf64_Shdr& strsh = shdrs[eh_->e_shstrndx];
    check_range(strsh.sh_offset, strsh.sh_size, "section name table");
    sections_.resize(eh_->e_shnum);
    for (unsigned i = 0; i < eh_->e_shnum; i++) {
      sections_[i].sh = &shdrs[i];
      sections_[i].name = str(strsh, shdrs[i].sh_name);
      if (shdrs[i].sh_type != SHT_NOBITS && shdrs[i].sh_type != SHT_NULL)
        check_range(shdrs[i].sh_offset, shdrs[i].sh_size, sections_[i].name.c_str());
    }
  }

  Blob build(const std::vector<std::string>& export_names) {
    Blob b;
    check_sections();
    layout(b);
    read_symbols();
    check_symbols();
    b.image.assign(b.image_size, 0);
    for (const Section& s : sections_)
      if (s.laid_out && s.sh->sh_type == SHT_PROGBITS && s.sh->sh_size)
        memcpy(b.image.data() + s.offset, d_.data() + s.sh->sh_offset, s.sh->sh_size);
    relocate(b);
    exports(b, export_names);
    return b;
  }

 private:
  void check_range(uint64_t off, uint64_t len, const char* what) const {
    if (off > d_.size() || len > d_.size() - off)
      die("%s lies outside the file (offset %" PRIu64 ", size %" PRIu64 ")", what, off, len);
  }

  std::string str(const Elf64_Shdr& strtab, uint64_t off) const {
    if (off >= strtab.sh_size) die("string offset %" PRIu64 " outside its table", off);
    const char* p = reinterpret_cast<const char*>(d_.data() + strtab.sh_offset + off);
    size_t n = strnlen(p, strtab.sh_size - off);
    if (n == strtab.sh_size - off) die("unterminated string in a string table");
    return std::string(p, n);
  }

  static bool starts_with(const std::string& s, const char* p) {
    return s.compare(0, strlen(p), p) == 0;
  }

  // Sections the loader can never honour, whatever the linker script did.
  void check_sections() {
    for (const Section& s : sections_) {
      const Elf64_Shdr& sh = *s.sh;
      bool ctor = sh.sh_type == SHT_INIT_ARRAY || sh.sh_type == SHT_PREINIT_ARRAY ||
                  starts_with(s.name, ".init_array") || starts_with(s.name, ".ctors") ||
                  starts_with(s.name, ".preinit_array");
      bool dtor = sh.sh_type == SHT_FINI_ARRAY || starts_with(s.name, ".fini_array") ||
                  starts_with(s.name, ".dtors");
      if ((ctor || dtor) && sh.sh_size)
        reject("section %s: %" PRIu64 " bytes of global %s that nothing would run "
               "(make the global constinit/constexpr, or give it a trivial %s)",
               s.name.c_str(), uint64_t(sh.sh_size), ctor ? "constructors" : "destructors",
               ctor ? "constructor" : "destructor");
      if (sh.sh_type == SHT_REL)
        reject("section %s: SHT_REL relocations are not supported on x86-64 (expected RELA)",
               s.name.c_str());
      if (sh.sh_type == SHT_GROUP)
        reject("section %s: a section group survived the link (link with "
               "--force-group-allocation)", s.name.c_str());
      if (!(sh.sh_flags & SHF_ALLOC)) continue;
      if (sh.sh_flags & SHF_TLS)
        reject("section %s: thread-local storage is not supported in a blob", s.name.c_str());
      else if (sh.sh_type != SHT_PROGBITS && sh.sh_type != SHT_NOBITS && !ctor && !dtor)
        reject("section %s: allocated section of type %u is not supported (only "
               "PROGBITS and NOBITS; see parasite/blob.lds)", s.name.c_str(), sh.sh_type);
    }
  }

  // Read-only sections (text, rodata) first, then writable PROGBITS starting
  // on a fresh page, then NOBITS.
  void layout(Blob& b) {
    enum { kRo, kRw, kBss } phase = kRo;
    const char* phase_section = "";
    uint64_t off = 0;
    bool any_rw = false;
    for (Section& s : sections_) {
      const Elf64_Shdr& sh = *s.sh;
      if (!(sh.sh_flags & SHF_ALLOC) || (sh.sh_flags & SHF_TLS)) continue;
      if (sh.sh_type != SHT_PROGBITS && sh.sh_type != SHT_NOBITS) continue;
      bool w = sh.sh_flags & SHF_WRITE;
      bool nobits = sh.sh_type == SHT_NOBITS;
      if (nobits && !w)
        reject("section %s: read-only NOBITS section is not supported", s.name.c_str());
      if (sh.sh_size != 0) {
        auto want = nobits ? kBss : w ? kRw : kRo;
        if (want < phase)
          reject("section %s (%s) comes after %s: the loader needs read-only sections, "
                 "then writable ones, then bss (link with parasite/blob.lds)",
                 s.name.c_str(), nobits ? "bss" : w ? "writable" : "read-only", phase_section);
        if (want > phase) {
          phase = want;
          phase_section = s.name.c_str();
        }
        if (want != kRo && !any_rw) {
          any_rw = true;
          b.exec_size = align_up(off, kPage);
          off = b.exec_size;
        }
      }
      if (sh.sh_addralign > kPage)
        reject("section %s: alignment %" PRIu64 " is larger than a page", s.name.c_str(),
               uint64_t(sh.sh_addralign));
      off = align_up(off, sh.sh_addralign);
      s.offset = off;
      s.laid_out = true;
      off += sh.sh_size;
      if (!nobits) b.image_size = off;
    }
    if (!any_rw) b.exec_size = align_up(off, kPage);
    b.total_size = off;
    if (b.total_size == 0) reject("no allocated sections: the blob is empty");
    if (b.total_size > UINT32_MAX) reject("blob is larger than 4 GiB");
  }

  void read_symbols() {
    for (unsigned i = 0; i < sections_.size(); i++) {
      const Elf64_Shdr& sh = *sections_[i].sh;
      if (sh.sh_type != SHT_SYMTAB) continue;
      if (symtab_) die("more than one symbol table");
      if (sh.sh_entsize != sizeof(Elf64_Sym)) die("unexpected symbol entry size");
      if (sh.sh_link >= sections_.size()) die("symbol table has a bad string table index");
      symtab_ = &sh;
      strtab_ = sections_[sh.sh_link].sh;
      nsyms_ = sh.sh_size / sizeof(Elf64_Sym);
      syms_ = reinterpret_cast<const Elf64_Sym*>(d_.data() + sh.sh_offset);
    }
    if (!symtab_) die("no symbol table");
  }

  std::string sym_name(const Elf64_Sym& s) const {
    if (ELF64_ST_TYPE(s.st_info) == STT_SECTION && s.st_shndx < sections_.size())
      return sections_[s.st_shndx].name;
    return str(*strtab_, s.st_name);
  }

  void check_symbols() {
    for (uint64_t i = 1; i < nsyms_; i++) {
      const Elf64_Sym& s = syms_[i];
      std::string name = sym_name(s);
      if (s.st_shndx == SHN_COMMON)
        reject("COMMON symbol %s (%" PRIu64 " bytes): give it an initializer or compile "
               "with -fno-common, so that it lands in .bss", name.c_str(), uint64_t(s.st_size));
      else if (s.st_shndx == SHN_UNDEF)
        reject("undefined symbol %s%s: a blob must define everything it uses (no libc; "
               "the runtime is parasite/blob_rt.cc)",
               name.c_str(), ELF64_ST_BIND(s.st_info) == STB_WEAK ? " (weak)" : "");
      else if (ELF64_ST_TYPE(s.st_info) == STT_TLS)
        reject("thread-local symbol %s is not supported", name.c_str());
      else if (s.st_shndx == SHN_XINDEX)
        reject("symbol %s: extended section indices are not supported", name.c_str());
    }
  }

  // The blob offset of symbol i, or false (with a rejection) if the loader
  // cannot know it.
  bool sym_offset(uint64_t i, const Section& target, uint64_t where, uint32_t type,
                  uint64_t* out) {
    if (i == 0 || i >= nsyms_) {
      reject("section %s: %s at offset 0x%" PRIx64 " has symbol index %" PRIu64
             " (none or out of range)", target.name.c_str(), reloc_name(type), where, i);
      return false;
    }
    const Elf64_Sym& s = syms_[i];
    std::string name = sym_name(s);
    if (s.st_shndx == SHN_UNDEF || s.st_shndx == SHN_COMMON) {
      reject("section %s: %s at offset 0x%" PRIx64 " refers to %s symbol %s",
             target.name.c_str(), reloc_name(type), where,
             s.st_shndx == SHN_UNDEF ? "undefined" : "COMMON", name.c_str());
      return false;
    }
    if (s.st_shndx >= SHN_LORESERVE || s.st_shndx >= sections_.size()) {
      reject("section %s: %s at offset 0x%" PRIx64 " refers to symbol %s with special "
             "section index 0x%x (absolute symbols cannot be rebased)",
             target.name.c_str(), reloc_name(type), where, name.c_str(), s.st_shndx);
      return false;
    }
    const Section& sec = sections_[s.st_shndx];
    if (!sec.laid_out) {
      reject("section %s: %s at offset 0x%" PRIx64 " refers to symbol %s in section %s, "
             "which is not part of the blob", target.name.c_str(), reloc_name(type), where,
             name.c_str(), sec.name.c_str());
      return false;
    }
    *out = sec.offset + s.st_value;
    return true;
  }

  void relocate(Blob& b) {
    for (const Section& rs : sections_) {
      const Elf64_Shdr& sh = *rs.sh;
      if (sh.sh_type != SHT_RELA) continue;
      if (sh.sh_link >= sections_.size() || sections_[sh.sh_link].sh != symtab_)
        die("section %s: relocations against another symbol table", rs.name.c_str());
      if (sh.sh_info == 0 || sh.sh_info >= sections_.size())
        die("section %s: bad target section index", rs.name.c_str());
      const Section& t = sections_[sh.sh_info];
      if (!(t.sh->sh_flags & SHF_ALLOC)) continue;  // debug info and the like
      if (!t.laid_out) {
        if (sh.sh_size) reject("section %s: relocations for a section that is not in the "
                               "blob (%s)", rs.name.c_str(), t.name.c_str());
        continue;
      }
      if (t.sh->sh_type == SHT_NOBITS) {
        if (sh.sh_size) reject("section %s: relocations in bss section %s", rs.name.c_str(),
                               t.name.c_str());
        continue;
      }
      if (sh.sh_entsize != sizeof(Elf64_Rela)) die("section %s: bad entry size", rs.name.c_str());
      auto relas = reinterpret_cast<const Elf64_Rela*>(d_.data() + sh.sh_offset);
      for (uint64_t k = 0; k < sh.sh_size / sizeof(Elf64_Rela); k++) apply(b, t, relas[k]);
    }
    std::sort(b.relocs.begin(), b.relocs.end());
  }

  void apply(Blob& b, const Section& t, const Elf64_Rela& r) {
    uint32_t type = ELF64_R_TYPE(r.r_info);
    uint64_t symi = ELF64_R_SYM(r.r_info);
    uint64_t where = r.r_offset;
    if (type == R_X86_64_NONE) return;
    unsigned width = type == R_X86_64_64 ? 8 : 4;
    if (type != R_X86_64_64 && type != R_X86_64_PC32 && type != R_X86_64_PLT32) {
      std::string sym = symi && symi < nsyms_ ? sym_name(syms_[symi]) : "?";
      const char* hint = "";
      if (type == R_X86_64_GOTPCREL || type == R_X86_64_GOTPCRELX ||
          type == R_X86_64_REX_GOTPCRELX || type == R_X86_64_GOTPC32 || type == R_X86_64_PLTOFF64)
        hint = " (a GOT/PLT access: declare every symbol hidden with "
               "#pragma GCC visibility push(hidden), and do not use -fno-plt)";
      else if (type == R_X86_64_32 || type == R_X86_64_32S)
        hint = " (a 32-bit absolute address: compile with -fpie)";
      else if (type == R_X86_64_TPOFF32 || type == R_X86_64_GOTTPOFF || type == R_X86_64_TLSGD ||
               type == R_X86_64_TLSLD || type == R_X86_64_DTPOFF32)
        hint = " (thread-local storage)";
      reject("section %s: relocation %s (type %u) at offset 0x%" PRIx64 " against %s is not "
             "supported: the loader honours only R_X86_64_PC32, R_X86_64_PLT32 and "
             "R_X86_64_64%s", t.name.c_str(), reloc_name(type), type, where, sym.c_str(), hint);
      return;
    }
    if (where > t.sh->sh_size || width > t.sh->sh_size - where) {
      reject("section %s: %s at offset 0x%" PRIx64 " lies outside the section",
             t.name.c_str(), reloc_name(type), where);
      return;
    }
    uint64_t s;
    if (!sym_offset(symi, t, where, type, &s)) return;
    uint64_t p = t.offset + where;
    uint8_t* slot = b.image.data() + p;
    if (type == R_X86_64_64) {
      uint64_t v = s + static_cast<uint64_t>(r.r_addend);
      memcpy(slot, &v, 8);
      b.relocs.push_back(static_cast<uint32_t>(p));
    } else {
      int64_t v = static_cast<int64_t>(s) + r.r_addend - static_cast<int64_t>(p);
      if (v < INT32_MIN || v > INT32_MAX) {
        reject("section %s: %s at offset 0x%" PRIx64 " against %s overflows 32 bits",
               t.name.c_str(), reloc_name(type), where, sym_name(syms_[symi]).c_str());
        return;
      }
      int32_t v32 = static_cast<int32_t>(v);
      memcpy(slot, &v32, 4);
    }
  }

  void exports(Blob& b, const std::vector<std::string>& names) {
    std::vector<std::string> all = {"__blob_entry"};
    all.insert(all.end(), names.begin(), names.end());
    for (const std::string& want : all) {
      const Elf64_Sym* found = nullptr;
      int n = 0;
      for (uint64_t i = 1; i < nsyms_; i++) {
        const Elf64_Sym& s = syms_[i];
        if (ELF64_ST_TYPE(s.st_info) == STT_SECTION || ELF64_ST_TYPE(s.st_info) == STT_FILE)
          continue;
        if (s.st_shndx == SHN_UNDEF || s.st_shndx >= sections_.size()) continue;
        if (str(*strtab_, s.st_name) != want) continue;
        found = &s;
        n++;
      }
      if (!found) {
        reject("exported symbol %s is not defined%s", want.c_str(),
               want == "__blob_entry" ? " (the entry section .blob.entry must define it)"
                                      : " (is it extern \"C\"?)");
        continue;
      }
      if (n > 1) {
        reject("exported symbol %s is defined %d times", want.c_str(), n);
        continue;
      }
      const Section& sec = sections_[found->st_shndx];
      if (!sec.laid_out) {
        reject("exported symbol %s is in section %s, which is not part of the blob",
               want.c_str(), sec.name.c_str());
        continue;
      }
      Export e{want, sec.offset + found->st_value, found->st_size};
      if (want == "__blob_entry" && e.offset != 0)
        reject("__blob_entry is at offset 0x%" PRIx64 ", not 0: the entry section must come "
               "first (parasite/blob.lds)", e.offset);
      b.exports.push_back(e);
    }
  }

  std::vector<uint8_t> d_;
  const Elf64_Ehdr* eh_ = nullptr;
  std::vector<Section> sections_;
  const Elf64_Shdr* symtab_ = nullptr;
  const Elf64_Shdr* strtab_ = nullptr;
  const Elf64_Sym* syms_ = nullptr;
  uint64_t nsyms_ = 0;
};

bool valid_ident(const std::string& s) {
  if (s.empty() || isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

__attribute__((format(printf, 2, 3))) void appendf(std::string& o, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  if (n <= 0) return;
  size_t at = o.size();
  o.resize(at + n + 1);
  va_start(ap, fmt);
  vsnprintf(o.data() + at, n + 1, fmt, ap);
  va_end(ap);
  o.resize(at + n);
}

std::string render(const Blob& b, const std::string& name, const std::string& input) {
  std::string o;
#define add(...) appendf(o, __VA_ARGS__)
  o += "// Generated by parasite/gen-blob from " + input + ". Do not edit.\n";
  o += "// The blob \"" + name + "\": see common/blob/blob.h.\n";
  o += "#pragma once\n\n#include <cstdint>\n\n#include \"common/blob/blob.h\"\n\n";
  o += "namespace cr::gen_blob::" + name + " {\n\n";
  add("inline constexpr uint64_t image_size = %" PRIu64 ";\n", b.image_size);
  add("inline constexpr uint64_t total_size = %" PRIu64 ";  // with bss\n", b.total_size);
  add("inline constexpr uint64_t exec_size = %" PRIu64 ";   // [0, exec_size): R-X\n",
      b.exec_size);
  add("inline constexpr uint64_t nr_relocs = %zu;\n\n", b.relocs.size());
  o += "// Offsets (and sizes) of the exported symbols.\nnamespace sym {\n";
  for (const Export& e : b.exports)
    add("inline constexpr ::cr::BlobSymbol %s = {\"%s\", 0x%" PRIx64 ", %" PRIu64 "};\n",
        e.name.c_str(), e.name.c_str(), e.offset, e.size);
  o += "}  // namespace sym\n\n";
  o += "inline constexpr ::cr::BlobSymbol symbols[] = {\n";
  for (const Export& e : b.exports) o += "    sym::" + e.name + ",\n";
  o += "};\n\n";
  o += "// Offsets of 8-byte slots to add the load address to.\n";
  add("inline constexpr uint32_t relocs[%zu] = {", b.relocs.empty() ? size_t(1) : b.relocs.size());
  for (size_t i = 0; i < b.relocs.size(); i++)
    add("%s0x%x,", i % 8 ? " " : "\n    ", b.relocs[i]);
  o += b.relocs.empty() ? "0};\n\n" : "\n};\n\n";
  add("inline constexpr unsigned char image[%zu] = {",
      b.image.empty() ? size_t(1) : b.image.size());
  for (size_t i = 0; i < b.image.size(); i++) add("%s%u,", i % 16 ? "" : "\n    ", b.image[i]);
  o += b.image.empty() ? "0};\n\n" : "\n};\n\n";
  o += "inline constexpr ::cr::BlobDesc desc = {\n";
  o += "    \"" + name + "\",\n    image,\n    image_size,\n    total_size,\n    exec_size,\n";
  o += "    relocs,\n    nr_relocs,\n    symbols,\n    sizeof symbols / sizeof symbols[0],\n};\n\n";
  o += "}  // namespace cr::gen_blob::" + name + "\n";
#undef add
  return o;
}

bool write_file(const std::string& path, const void* data, size_t len) {
  std::string tmp = path + ".tmp";
  FILE* f = fopen(tmp.c_str(), "wb");
  if (!f) return false;
  bool ok = fwrite(data, 1, len, f) == len;
  ok = (fclose(f) == 0) && ok;
  if (ok) ok = rename(tmp.c_str(), path.c_str()) == 0;
  if (!ok) remove(tmp.c_str());
  return ok;
}

void usage() {
  fprintf(stderr,
          "usage: gen-blob --name NAME [--export SYMBOL]... [-o OUT.inc] [--bin OUT.bin] "
          "[--describe] BLOB.o\n");
  exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string name, out, bin, input;
  std::vector<std::string> export_names;
  bool describe = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--name") name = next();
    else if (a == "--export") export_names.push_back(next());
    else if (a == "-o") out = next();
    else if (a == "--bin") bin = next();
    else if (a == "--describe") describe = true;
    else if (!a.empty() && a[0] == '-') usage();
    else if (input.empty()) input = a;
    else usage();
  }
  if (name.empty() || input.empty()) usage();
  g_blob = name;
  if (!valid_ident(name)) die("the name must be a C++ identifier");
  for (const std::string& e : export_names)
    if (!valid_ident(e)) die("exported symbol %s is not a C++ identifier", e.c_str());

  FILE* in = fopen(input.c_str(), "rb");
  if (!in) die("cannot open %s: %s", input.c_str(), strerror(errno));
  std::vector<uint8_t> data;
  uint8_t chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, in)) > 0) data.insert(data.end(), chunk, chunk + n);
  bool read_error = ferror(in);
  fclose(in);
  if (read_error) die("cannot read %s", input.c_str());
  Elf elf(std::move(data));
  elf.parse();
  Blob b = elf.build(export_names);
  if (g_errors) {
    fprintf(stderr, "gen-blob: blob %s: %d problem(s) in %s; the loader cannot run it\n",
            name.c_str(), g_errors, input.c_str());
    return 1;
  }
  if (describe) {
    printf("blob %s\nimage_size %" PRIu64 "\ntotal_size %" PRIu64 "\nexec_size %" PRIu64 "\n",
           name.c_str(), b.image_size, b.total_size, b.exec_size);
    for (uint32_t r : b.relocs) printf("reloc 0x%x\n", r);
    for (const Export& e : b.exports)
      printf("symbol %s 0x%" PRIx64 " %" PRIu64 "\n", e.name.c_str(), e.offset, e.size);
  }
  if (!bin.empty() && !write_file(bin, b.image.data(), b.image.size()))
    die("cannot write %s: %s", bin.c_str(), strerror(errno));
  if (!out.empty()) {
    std::string text = render(b, name, input);
    if (!write_file(out, text.data(), text.size()))
      die("cannot write %s: %s", out.c_str(), strerror(errno));
  }
  return 0;
}
