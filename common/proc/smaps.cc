#include "common/proc/smaps.h"

#include <sys/mman.h>

#include <array>

#include "common/proc/parse.h"

namespace cr::proc {

namespace {

constexpr VmFlagInfo kVmFlags[] = {
    {VmFlag::Rd, "rd", "readable"},
    {VmFlag::Wr, "wr", "writeable"},
    {VmFlag::Ex, "ex", "executable"},
    {VmFlag::Sh, "sh", "shared"},
    {VmFlag::Mr, "mr", "may read"},
    {VmFlag::Mw, "mw", "may write"},
    {VmFlag::Me, "me", "may execute"},
    {VmFlag::Ms, "ms", "may share"},
    {VmFlag::Gd, "gd", "stack segment grows down"},
    {VmFlag::Pf, "pf", "pure PFN range"},
    {VmFlag::Dw, "dw", "disabled write to the mapped file"},
    {VmFlag::Lo, "lo", "pages are locked in memory"},
    {VmFlag::Io, "io", "memory mapped I/O area"},
    {VmFlag::Sr, "sr", "sequential read advise provided"},
    {VmFlag::Rr, "rr", "random read advise provided"},
    {VmFlag::Dc, "dc", "do not copy area on fork"},
    {VmFlag::De, "de", "do not expand area on remapping"},
    {VmFlag::Ac, "ac", "area is accountable"},
    {VmFlag::Nr, "nr", "swap space is not reserved for the area"},
    {VmFlag::Ht, "ht", "area uses huge tlb pages"},
    {VmFlag::Sf, "sf", "synchronous page fault"},
    {VmFlag::Ar, "ar", "architecture specific flag"},
    {VmFlag::Wf, "wf", "wipe on fork"},
    {VmFlag::Dd, "dd", "do not include area into core dump"},
    {VmFlag::Sd, "sd", "soft dirty flag"},
    {VmFlag::Mm, "mm", "mixed map area"},
    {VmFlag::Hg, "hg", "huge page advise flag"},
    {VmFlag::Nh, "nh", "no huge page advise flag"},
    {VmFlag::Mg, "mg", "mergeable advise flag"},
    {VmFlag::Bt, "bt", "arm64 BTI guarded page"},
    {VmFlag::Mt, "mt", "arm64 MTE allocation tags are enabled"},
    {VmFlag::Um, "um", "userfaultfd missing tracking"},
    {VmFlag::Uw, "uw", "userfaultfd wr-protect tracking"},
    {VmFlag::Ui, "ui", "userfaultfd minor fault"},
    {VmFlag::Ss, "ss", "shadow stack page"},
    {VmFlag::Sl, "sl", "sealed"},
    {VmFlag::Lf, "lf", "lock on fault pages"},
    {VmFlag::Dp, "dp", "always lazily freeable mapping"},
};
static_assert(std::size(kVmFlags) == static_cast<size_t>(VmFlag::Count));

constexpr bool table_in_enum_order() {
  for (size_t i = 0; i < std::size(kVmFlags); i++)
    if (static_cast<size_t>(kVmFlags[i].flag) != i) return false;
  return true;
}
static_assert(table_in_enum_order());

enum class Unit { KB, Plain };
struct Field {
  std::string_view key;
  uint64_t SmapsEntry::*member;  // nullptr: handled specially
  Unit unit;
  unsigned required_bit;  // 0: optional
};
constexpr unsigned kReqSize = 1, kReqRss = 2, kReqAnon = 4, kReqSwap = 8, kReqFlags = 16;
constexpr unsigned kReqAll = kReqSize | kReqRss | kReqAnon | kReqSwap | kReqFlags;

const Field kFields[] = {
    {"Size", &SmapsEntry::size, Unit::KB, kReqSize},
    {"KernelPageSize", &SmapsEntry::kernel_page_size, Unit::KB, 0},
    {"MMUPageSize", &SmapsEntry::mmu_page_size, Unit::KB, 0},
    {"Rss", &SmapsEntry::rss, Unit::KB, kReqRss},
    {"Pss", &SmapsEntry::pss, Unit::KB, 0},
    {"Pss_Dirty", &SmapsEntry::pss_dirty, Unit::KB, 0},
    {"Shared_Clean", &SmapsEntry::shared_clean, Unit::KB, 0},
    {"Shared_Dirty", &SmapsEntry::shared_dirty, Unit::KB, 0},
    {"Private_Clean", &SmapsEntry::private_clean, Unit::KB, 0},
    {"Private_Dirty", &SmapsEntry::private_dirty, Unit::KB, 0},
    {"Referenced", &SmapsEntry::referenced, Unit::KB, 0},
    {"Anonymous", &SmapsEntry::anonymous, Unit::KB, kReqAnon},
    {"KSM", &SmapsEntry::ksm, Unit::KB, 0},
    {"LazyFree", &SmapsEntry::lazy_free, Unit::KB, 0},
    {"AnonHugePages", &SmapsEntry::anon_huge_pages, Unit::KB, 0},
    {"ShmemPmdMapped", &SmapsEntry::shmem_pmd_mapped, Unit::KB, 0},
    {"FilePmdMapped", &SmapsEntry::file_pmd_mapped, Unit::KB, 0},
    {"Shared_Hugetlb", &SmapsEntry::shared_hugetlb, Unit::KB, 0},
    {"Private_Hugetlb", &SmapsEntry::private_hugetlb, Unit::KB, 0},
    {"Swap", &SmapsEntry::swap, Unit::KB, kReqSwap},
    {"SwapPss", &SmapsEntry::swap_pss, Unit::KB, 0},
    {"Locked", &SmapsEntry::locked, Unit::KB, 0},
    {"THPeligible", nullptr, Unit::Plain, 0},
    {"ProtectionKey", nullptr, Unit::Plain, 0},
    {"VmFlags", nullptr, Unit::Plain, kReqFlags},
};

// A header line is a maps line: its first field has no ':' (field lines
// are "Key:" followed by blanks).
bool is_header(std::string_view line) {
  size_t sp = line.find(' ');
  std::string_view first = line.substr(0, sp);
  return first.find(':') == std::string_view::npos;
}

}  // namespace

std::span<const VmFlagInfo> vmflag_table() { return kVmFlags; }

const char* vmflag_code(VmFlag f) {
  auto i = static_cast<size_t>(f);
  return i < std::size(kVmFlags) ? kVmFlags[i].code : "??";
}

std::optional<VmFlag> vmflag_from_code(std::string_view code) {
  for (const auto& f : kVmFlags)
    if (code == f.code) return f.flag;
  return std::nullopt;
}

std::string VmFlags::str() const {
  std::string s;
  for (const auto& f : kVmFlags) {
    if (!has(f.flag)) continue;
    if (!s.empty()) s += ' ';
    s += f.code;
  }
  for (const auto& u : unknown_) {
    if (!s.empty()) s += ' ';
    s += u;
  }
  return s;
}

Result<VmFlags> parse_vmflags(std::string_view value, std::string_view source, int lineno) {
  VmFlags out;
  std::string_view rest = value;
  while (!rest.empty()) {
    size_t sp = rest.find(' ');
    std::string_view tok = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    bool ok = tok.size() == 2;
    for (char c : tok) ok = ok && ((c >= 'a' && c <= 'z') || c == '?');
    if (!ok) return parse_error(source, lineno, "bad VmFlags mnemonic %s", quote(tok).c_str());
    if (auto f = vmflag_from_code(tok)) {
      if (out.has(*f)) return parse_error(source, lineno, "VmFlags repeats %s", quote(tok).c_str());
      out.set(*f);
    } else {
      for (const auto& u : out.unknown())
        if (u == tok) return parse_error(source, lineno, "VmFlags repeats %s", quote(tok).c_str());
      out.add_unknown(std::string(tok));
    }
  }
  return out;
}

std::vector<int> madvise_advices(const VmFlags& f) {
  static const std::pair<VmFlag, int> kMap[] = {
      {VmFlag::Dc, MADV_DONTFORK},   {VmFlag::Dd, MADV_DONTDUMP},     {VmFlag::Wf, MADV_WIPEONFORK},
      {VmFlag::Hg, MADV_HUGEPAGE},   {VmFlag::Nh, MADV_NOHUGEPAGE},   {VmFlag::Mg, MADV_MERGEABLE},
      {VmFlag::Sr, MADV_SEQUENTIAL}, {VmFlag::Rr, MADV_RANDOM},
  };
  std::vector<int> out;
  for (const auto& [flag, advice] : kMap)
    if (f.has(flag)) out.push_back(advice);
  return out;
}

LockMode lock_mode(const VmFlags& f) {
  if (!f.has(VmFlag::Lo)) return LockMode::None;
  return f.has(VmFlag::Lf) ? LockMode::OnFault : LockMode::Locked;
}

Result<SmapsMap> parse_smaps(std::string_view text, std::string_view source) {
  LineReader lr(text, source);
  TRY_STATUS(lr.complete());
  SmapsMap out;
  SmapsEntry* cur = nullptr;
  unsigned have = 0;                               // required fields seen
  std::array<bool, std::size(kFields)> seen{};     // per VMA, for repeats
  int header_line = 0;
  uint64_t prev_end = 0;

  auto finish = [&]() -> Status {
    if (!cur) return ok_status();
    if ((have & kReqAll) != kReqAll) {
      for (const auto& f : kFields)
        if (f.required_bit && !(have & f.required_bit))
          return parse_error(source, header_line, "mapping %s has no %.*s line",
                             vma_str(cur->vma).c_str(), int(f.key.size()), f.key.data());
    }
    if (cur->size != cur->vma.size())
      return parse_error(source, header_line, "mapping %s: Size %llu kB does not match its range",
                         vma_str(cur->vma).c_str(), (unsigned long long)(cur->size / 1024));
    return ok_status();
  };

  std::string_view line;
  while (lr.next(line)) {
    if (is_header(line)) {
      TRY_STATUS(finish());
      VmaInfo v = TRY(parse_maps_line(line, source, lr.lineno()));
      if (v.start < prev_end)
        return lr.error("mapping %s overlaps or precedes the one before", vma_str(v).c_str());
      prev_end = v.end;
      uint64_t start = v.start;
      cur = &out[start];
      cur->vma = std::move(v);
      have = 0;
      seen.fill(false);
      header_line = lr.lineno();
      continue;
    }
    std::string_view key, value;
    if (!split_key_value(line, key, value)) return lr.error("bad line %s", quote(line).c_str());
    if (!cur) return lr.error("%s before the first mapping line", quote(line).c_str());
    size_t fi = 0;
    while (fi < std::size(kFields) && kFields[fi].key != key) fi++;
    if (fi == std::size(kFields)) continue;  // unknown key: ignored
    const Field& f = kFields[fi];
    if (seen[fi]) return lr.error("repeated %.*s line", int(key.size()), key.data());
    seen[fi] = true;
    have |= f.required_bit;
    if (key == "VmFlags") {
      cur->flags = TRY(parse_vmflags(value, source, lr.lineno()));
      continue;
    }
    if (f.unit == Unit::KB) {
      std::string_view num = value;
      if (!num.ends_with(" kB")) return lr.error("%.*s: expected 'N kB', got %s", int(key.size()),
                                                 key.data(), quote(value).c_str());
      num.remove_suffix(3);
      uint64_t kb = 0;
      if (!parse_int(num, kb) || kb > (UINT64_MAX >> 10))
        return lr.error("%.*s: bad size %s", int(key.size()), key.data(), quote(value).c_str());
      cur->*(f.member) = kb << 10;
    } else if (key == "THPeligible") {
      unsigned e = 0;
      if (!parse_int(value, e) || e > 1) return lr.error("THPeligible: bad value %s", quote(value).c_str());
      cur->thp_eligible = e;
    } else {  // ProtectionKey
      int k = 0;
      if (!parse_int(value, k) || k < 0) return lr.error("ProtectionKey: bad value %s", quote(value).c_str());
      cur->protection_key = k;
    }
  }
  TRY_STATUS(finish());
  return out;
}

Result<SmapsMap> read_smaps(pid_t pid) {
  std::string text = TRY(read_proc_file(pid, "smaps"));
  return with_pid(parse_smaps(text, proc_path(pid, "smaps")), pid);
}

}  // namespace cr::proc
