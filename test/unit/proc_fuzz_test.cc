// Every /proc parser on damaged real input: flipped bytes, inserted and
// deleted bytes, cuts. None may crash, hang or read out of bounds (the
// sanitizer build checks that); each either parses or returns an Error that
// names the file.
#include <doctest/doctest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/proc/fdinfo.h"
#include "common/proc/limits.h"
#include "common/proc/maps.h"
#include "common/proc/misc.h"
#include "common/proc/smaps.h"
#include "common/proc/stat.h"
#include "common/proc/status.h"

using namespace cr;
using namespace cr::proc;

namespace {

const char kMaps[] = R"PROC(564e4d359000-564e4d35a000 r--p 00000000 fe:00 10953084                   /tmp/procfx/gen
564e4d35a000-564e4d35b000 r-xp 00001000 fe:00 10953084                   /tmp/procfx/gen
564e4d35b000-564e4d35c000 r--p 00002000 fe:00 10953084                   /tmp/procfx/gen
564e4d35c000-564e4d35d000 r--p 00002000 fe:00 10953084                   /tmp/procfx/gen
564e4d35d000-564e4d35e000 rw-p 00003000 fe:00 10953084                   /tmp/procfx/gen
564e4e5e5000-564e4e606000 rw-p 00000000 00:00 0                          [heap]
7f18e61f6000-7f18e61f7000 rw-p 00000000 00:00 0 
7f18e61f7000-7f18e61f8000 rw-p 00000000 00:00 0 
7f18e61f8000-7f18e61f9000 rw-p 00000000 00:00 0 
7f18e61f9000-7f18e61fa000 rw-p 00000000 00:00 0 
7f18e61fa000-7f18e61fb000 rw-p 00000000 00:00 0 
7f18e61fb000-7f18e61fc000 rw-p 00000000 00:00 0 
7f18e61fc000-7f18e61fd000 rw-p 00000000 00:00 0 
7f18e61fd000-7f18e61fe000 rw-p 00000000 00:00 0 
7f18e61fe000-7f18e61ff000 rw-p 00000000 00:00 0 
7f18e61ff000-7f18e6200000 rw-p 00000000 00:00 0 
7f18e6200000-7f18e6201000 rw-p 00000000 00:00 0 
7f18e6201000-7f18e6202000 rw-p 00000000 00:00 0 
7f18e6202000-7f18e6203000 rw-p 00000000 00:00 0 
7f18e6203000-7f18e6204000 rw-p 00000000 00:00 0 
7f18e6204000-7f18e6205000 rw-p 00000000 00:00 0 
7f18e6205000-7f18e6206000 rw-p 00000000 00:00 0 
7f18e6206000-7f18e6207000 rw-p 00000000 00:00 0 
7f18e6207000-7f18e6208000 rw-p 00000000 00:00 0 
7f18e6208000-7f18e6209000 rw-p 00000000 00:00 0 
7f18e6209000-7f18e620a000 rw-p 00000000 00:00 0 
7f18e620a000-7f18e620b000 ---p 00000000 00:00 0 
7f18e620b000-7f18e620c000 rw-p 00000000 00:00 0 
7f18e620c000-7f18e620d000 r-xp 00000000 00:00 0 
7f18e620d000-7f18e6224000 rw-p 00000000 00:00 0 
7f18e6224000-7f18e624a000 r--p 00000000 fe:00 332835                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f18e624a000-7f18e63a0000 r-xp 00026000 fe:00 332835                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f18e63a0000-7f18e63f3000 r--p 0017c000 fe:00 332835                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f18e63f3000-7f18e63f7000 r--p 001cf000 fe:00 332835                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f18e63f7000-7f18e63f9000 rw-p 001d3000 fe:00 332835                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f18e63f9000-7f18e6406000 rw-p 00000000 00:00 0 
7f18e6408000-7f18e640a000 rw-s 00000000 00:01 117356                     /dev/zero (deleted)
7f18e640a000-7f18e640b000 rw-s 00000000 00:01 117355                     /memfd:my memfd (deleted)
7f18e640b000-7f18e640d000 r--s 00000000 fe:00 10953080                   /tmp/procfx/gone (deleted)
7f18e640d000-7f18e6411000 rw-p 00000000 fe:00 10953079                   /tmp/procfx/file with spaces
7f18e6411000-7f18e6413000 rw-p 00000000 00:00 0 
7f18e6413000-7f18e6417000 r--p 00000000 00:00 0                          [vvar]
7f18e6417000-7f18e6419000 r--p 00000000 00:00 0                          [vvar_vclock]
7f18e6419000-7f18e641b000 r-xp 00000000 00:00 0                          [vdso]
7f18e641b000-7f18e641c000 r--p 00000000 fe:00 332383                     /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f18e641c000-7f18e6442000 r-xp 00001000 fe:00 332383                     /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f18e6442000-7f18e644c000 r--p 00027000 fe:00 332383                     /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f18e644c000-7f18e644e000 r--p 00031000 fe:00 332383                     /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f18e644e000-7f18e6450000 rw-p 00033000 fe:00 332383                     /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7ffdb56c9000-7ffdb56ea000 rw-p 00000000 00:00 0                          [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
)PROC";
const char kSmaps[] = R"PROC(7f18e61f6000-7f18e61f7000 rw-p 00000000 00:00 0 
Size:                  4 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   0 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:            0 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: rd wr mr mw me dc ac 
7f18e6208000-7f18e6209000 rw-p 00000000 00:00 0 
Size:                  4 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   0 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:            0 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: rd wr mr mw me lo lf ac 
7f18e620a000-7f18e620b000 ---p 00000000 00:00 0 
Size:                  4 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   0 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:            0 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: mr mw me ac 
7f18e640d000-7f18e6411000 rw-p 00000000 fe:00 10953079                   /tmp/procfx/file with spaces
Size:                 16 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   8 kB
Pss:                   8 kB
Pss_Dirty:             8 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         8 kB
Referenced:            8 kB
Anonymous:             8 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: rd wr mr mw me ac 
7f18e6413000-7f18e6417000 r--p 00000000 00:00 0                          [vvar]
Size:                 16 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   0 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:            0 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: rd mr pf io de dd 
7f18e6417000-7f18e6419000 r--p 00000000 00:00 0                          [vvar_vclock]
Size:                  8 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   0 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:            0 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: rd mr pf io de dd 
7f18e6419000-7f18e641b000 r-xp 00000000 00:00 0                          [vdso]
Size:                  8 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   4 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          4 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:            4 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: rd ex mr mw me de 
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
Size:                  4 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   0 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:            0 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: ex 
)PROC";
const char kStatus[] = R"PROC(Name:	a) (b c)
Umask:	0027
State:	S (sleeping)
Tgid:	8302
Ngid:	0
Pid:	8302
PPid:	8293
TracerPid:	0
Uid:	0	0	0	0
Gid:	0	0	0	0
FDSize:	256
Groups:	 
NStgid:	8302
NSpid:	8302
NSpgid:	8293
NSsid:	6666
Kthread:	0
VmPeak:	    2588 kB
VmSize:	    2552 kB
VmLck:	       8 kB
VmPin:	       0 kB
VmHWM:	    1524 kB
VmRSS:	    1524 kB
RssAnon:	     112 kB
RssFile:	    1408 kB
RssShmem:	       4 kB
VmData:	     272 kB
VmStk:	     132 kB
VmExe:	       4 kB
VmLib:	    1532 kB
VmPTE:	      44 kB
VmSwap:	       0 kB
HugetlbPages:	       0 kB
CoreDumping:	0
THP_enabled:	1
untag_mask:	0xffffffffffffffff
Threads:	1
SigQ:	5/96368
SigPnd:	0000000000000200
ShdPnd:	0000000000000000
SigBlk:	0000001000010200
SigIgn:	0000000000004007
SigCgt:	0000000000000000
CapInh:	0000000000000000
CapPrm:	000001fffeffffff
CapEff:	000001fffeffffff
CapBnd:	000001fffeffffff
CapAmb:	0000000000000000
NoNewPrivs:	0
Seccomp:	0
Seccomp_filters:	0
Speculation_Store_Bypass:	vulnerable
SpeculationIndirectBranch:	always enabled
Cpus_allowed:	3
Cpus_allowed_list:	0-1
Mems_allowed:	00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000001
Mems_allowed_list:	0
voluntary_ctxt_switches:	6
nonvoluntary_ctxt_switches:	1
)PROC";
const char kStat[] = R"PROC(8302 (a) (b c)) S 8293 8293 6666 0 -1 4194304 87 429 1 0 0 0 0 0 20 0 1 0 121809 2613248 336 18446744073709551615 94894302797824 94894302800817 140727647371040 0 0 512 66048 16391 0 1 0 0 17 0 0 0 0 0 0 94894302809552 94894302810376 94895119114240 140727647378077 140727647378083 140727647378083 140727647379442 0
)PROC";
const char kLimits[] = R"PROC(Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max data size             unlimited            unlimited            bytes     
Max stack size            8388608              unlimited            bytes     
Max core file size        0                    unlimited            bytes     
Max resident set          unlimited            unlimited            bytes     
Max processes             96368                96368                processes 
Max open files            20000                20000                files     
Max locked memory         8388608              8388608              bytes     
Max address space         unlimited            unlimited            bytes     
Max file locks            unlimited            unlimited            locks     
Max pending signals       96368                96368                signals   
Max msgqueue size         819200               819200               bytes     
Max nice priority         0                    0                    
Max realtime priority     0                    0                    
Max realtime timeout      unlimited            unlimited            us        
)PROC";
const char kTimers[] = R"PROC(ID: 2
signal: 34/00000000deadbeef
notify: signal/tid.8302
ClockID: 7
ID: 1
signal: 14/00000000deadbeef
notify: none/pid.8302
ClockID: 0
ID: 0
signal: 14/00000000deadbeef
notify: signal/pid.8302
ClockID: 1
)PROC";
const char kFdinfo[] =
    "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1036\n"
    "tfd:        6 events:       19 data:               2a  pos:0 ino:40c sdev:10\n";

// Returns "" if it parsed, else the error message.
using Parser = std::function<std::string(std::string_view)>;

template <class R>
std::string msg(const R& r) {
  return r.ok() ? std::string() : r.error().message;
}

void damage(const char* what, std::string_view good, const Parser& parse, unsigned seed) {
  INFO(what);
  REQUIRE(parse(good).empty());
  std::mt19937 rng(seed);
  const char alphabet[] = "0123456789abcdefx-:() \t\n/[]kB\\\xff";
  for (int iter = 0; iter < 3000; iter++) {
    std::string s(good);
    int edits = 1 + rng() % 3;
    for (int e = 0; e < edits && !s.empty(); e++) {
      size_t pos = rng() % s.size();
      switch (rng() % 4) {
        case 0: s[pos] = alphabet[rng() % (sizeof alphabet - 1)]; break;
        case 1: s.insert(pos, 1, alphabet[rng() % (sizeof alphabet - 1)]); break;
        case 2: s.erase(pos, 1 + rng() % 8); break;
        case 3: s.resize(pos); break;
      }
    }
    std::string m = parse(s);
    if (!m.empty()) CHECK(m.rfind("/proc/9/", 0) == 0);
  }
}

}  // namespace

TEST_CASE("proc parsers: damaged input never crashes and always names the file") {
  damage("maps", kMaps, [](std::string_view t) { return msg(parse_maps(t, "/proc/9/maps")); }, 1);
  damage("smaps", kSmaps, [](std::string_view t) { return msg(parse_smaps(t, "/proc/9/smaps")); }, 2);
  damage("status", kStatus, [](std::string_view t) { return msg(parse_status(t, "/proc/9/status")); }, 3);
  damage("stat", kStat, [](std::string_view t) { return msg(parse_stat(t, "/proc/9/stat")); }, 4);
  damage("limits", kLimits, [](std::string_view t) { return msg(parse_limits(t, "/proc/9/limits")); }, 5);
  damage("timers", kTimers, [](std::string_view t) { return msg(parse_timers(t, "/proc/9/timers")); }, 6);
  damage("fdinfo", kFdinfo, [](std::string_view t) { return msg(parse_fdinfo(t, "/proc/9/fdinfo/3")); }, 7);
  damage("children", "12 345 6789 ", [](std::string_view t) { return msg(parse_children(t, "/proc/9/task/9/children")); }, 8);
  damage("personality", "00040000\n", [](std::string_view t) { return msg(parse_personality(t, "/proc/9/personality")); }, 9);
  std::string auxv;
  for (uint64_t v : {6ull, 4096ull, 25ull, 0x7ffd0000ull, 0ull, 0ull}) auxv.append(reinterpret_cast<const char*>(&v), 8);
  damage("auxv", auxv, [](std::string_view t) { return msg(parse_auxv(t, "/proc/9/auxv")); }, 10);
}
