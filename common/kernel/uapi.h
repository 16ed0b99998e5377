// Kernel interfaces newer than the headers we build with.
//
// Debian 12 ships linux-libc-dev 6.1 and glibc 2.36; the kernels we run on
// (6.18) have more. Every definition crtools needs beyond those headers lives
// here and nowhere else, each guarded by #ifndef so that newer system headers
// win, each with the kernel version it first appeared in. Values are copied
// from the kernel's include/uapi tree and must stay exact.
//
// Include this header instead of (or after) <linux/fs.h>,
// <linux/userfaultfd.h> and <linux/sched.h>: it includes them first.
// Do not include <linux/ptrace.h> for struct ptrace_rseq_configuration:
// glibc's <sys/ptrace.h> (2.35+) declares the same layout as
// struct __ptrace_rseq_configuration, and <linux/ptrace.h> breaks
// <sys/ptrace.h> when included before it.
#pragma once

#include <asm/prctl.h>
#include <linux/fs.h>
#include <linux/sched.h>
#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#include <cstddef>
#include <cstdint>

// ---------------------------------------------------------------- pagemap
// PAGEMAP_SCAN ioctl on /proc/PID/pagemap: Linux 6.7, include/uapi/linux/fs.h.
#ifndef PAGEMAP_SCAN

// Categories: bits in pm_scan_arg's masks and in page_region.categories.
#define PAGE_IS_WPALLOWED (1 << 0)   // 6.7: async userfaultfd write-protect is on
#define PAGE_IS_WRITTEN (1 << 1)     // 6.7: written since it was write-protected
#define PAGE_IS_FILE (1 << 2)        // 6.7
#define PAGE_IS_PRESENT (1 << 3)     // 6.7
#define PAGE_IS_SWAPPED (1 << 4)     // 6.7
#define PAGE_IS_PFNZERO (1 << 5)     // 6.7
#define PAGE_IS_HUGE (1 << 6)        // 6.7
#define PAGE_IS_SOFT_DIRTY (1 << 7)  // 6.7

// One run of pages with the same categories [start, end).
struct page_region {
  __u64 start;
  __u64 end;
  __u64 categories;
};

// pm_scan_arg.flags (6.7).
#define PM_SCAN_WP_MATCHING (1 << 0)    // write-protect the pages matched
#define PM_SCAN_CHECK_WPASYNC (1 << 1)  // fail on a page without async uffd-wp

struct pm_scan_arg {
  __u64 size;  // sizeof(struct pm_scan_arg)
  __u64 flags;
  __u64 start;
  __u64 end;
  __u64 walk_end;  // out: where the walk stopped
  __u64 vec;       // struct page_region array
  __u64 vec_len;   // its length in entries
  __u64 max_pages;
  __u64 category_inverted;
  __u64 category_mask;
  __u64 category_anyof_mask;
  __u64 return_mask;
};

#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)

#endif  // PAGEMAP_SCAN

#ifndef PAGE_IS_GUARD
#define PAGE_IS_GUARD (1 << 8)  // 6.15: a MADV_GUARD_INSTALL guard region
#endif

// ---------------------------------------------------------------- userfaultfd
// Feature bits of struct uffdio_api, include/uapi/linux/userfaultfd.h.
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)  // 6.4: write-protect none ptes of anon memory too
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)  // 6.6
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)  // 6.7: the kernel resolves wp faults itself
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)  // 6.8
#endif

// ---------------------------------------------------------------- x86 CET
// Shadow stack control, arch/x86/include/uapi/asm/prctl.h: Linux 6.6
// (ARCH_SHSTK_STATUS from 6.6 as well).
#ifndef ARCH_SHSTK_ENABLE
// prctl: timer_create() takes the timer id to create from *created_timer_id
// while this is on (a recent addition, present on the 6.18 development
// kernel; CRIU's reason for it).
#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#define PR_TIMER_CREATE_RESTORE_IDS_GET 2
#endif

#define ARCH_SHSTK_ENABLE 0x5001
#define ARCH_SHSTK_DISABLE 0x5002
#define ARCH_SHSTK_LOCK 0x5003
#define ARCH_SHSTK_UNLOCK 0x5004
#endif
#ifndef ARCH_SHSTK_STATUS
#define ARCH_SHSTK_STATUS 0x5005
#endif
#ifndef ARCH_SHSTK_SHSTK
#define ARCH_SHSTK_SHSTK (1ULL << 0)
#define ARCH_SHSTK_WRSS (1ULL << 1)
#endif
// The shadow stack pointer regset, include/uapi/linux/elf.h: Linux 6.6.
#ifndef NT_X86_SHSTK
#define NT_X86_SHSTK 0x204
#endif

// ---------------------------------------------------------------- clone3
// struct clone_args with set_tid/set_tid_size (Linux 5.5) and cgroup (5.7)
// comes from <linux/sched.h>; 6.1 headers have both. Older headers fail here
// rather than at run time.
static_assert(offsetof(struct clone_args, set_tid) == 64 && offsetof(struct clone_args, cgroup) == 80,
              "<linux/sched.h> predates Linux 5.7: struct clone_args lacks set_tid/cgroup");

namespace cr::uapi {

// /proc/PID/pagemap entry bits. Not in any uapi header: documented in the
// kernel's Documentation/admin-guide/mm/pagemap.rst (fs/proc/task_mmu.c).
constexpr uint64_t PM_PFRAME_MASK = (1ULL << 55) - 1;  // bits 0-54: PFN (0 without CAP_SYS_ADMIN)
constexpr uint64_t PM_SOFT_DIRTY = 1ULL << 55;         // 3.11; always 0 without CONFIG_MEM_SOFT_DIRTY
constexpr uint64_t PM_MMAP_EXCLUSIVE = 1ULL << 56;     // 4.2
constexpr uint64_t PM_UFFD_WP = 1ULL << 57;            // 5.13: pte is userfaultfd write-protected
constexpr uint64_t PM_GUARD_REGION = 1ULL << 58;       // 6.15
constexpr uint64_t PM_FILE = 1ULL << 61;               // file page or shared anon
constexpr uint64_t PM_SWAP = 1ULL << 62;
constexpr uint64_t PM_PRESENT = 1ULL << 63;

// Value written to /proc/PID/clear_refs to clear soft-dirty bits (3.11).
constexpr const char* kClearRefsSoftDirty = "4";

// <linux/timerfd.h> (its TFD_* clash with glibc's <sys/timerfd.h>):
// set a timerfd's unread expirations (CONFIG_CHECKPOINT_RESTORE, 3.17).
constexpr unsigned long TFD_IOC_SET_TICKS = _IOW('T', 0, uint64_t);

// XSAVE state components (bit numbers in XCR0 / XSTATE_BV), as in the
// kernel's arch/x86/include/asm/fpu/types.h.
enum XFeature : unsigned {
  XFEATURE_FP = 0,
  XFEATURE_SSE = 1,
  XFEATURE_YMM = 2,
  XFEATURE_BNDREGS = 3,
  XFEATURE_BNDCSR = 4,
  XFEATURE_OPMASK = 5,
  XFEATURE_ZMM_Hi256 = 6,
  XFEATURE_Hi16_ZMM = 7,
  XFEATURE_PT = 8,
  XFEATURE_PKRU = 9,
  XFEATURE_PASID = 10,
  XFEATURE_CET_USER = 11,
  XFEATURE_CET_KERNEL = 12,
  XFEATURE_LBR = 15,
  XFEATURE_XTILE_CFG = 17,
  XFEATURE_XTILE_DATA = 18,
  XFEATURE_APX = 19,
};

// Offset in an NT_X86_XSTATE regset (the first word of the legacy area's
// software-reserved bytes) where the kernel stores the XCR0 it lets user
// space use (arch/x86/include/asm/user.h: USER_XSTATE_XCR0_WORD).
constexpr size_t kXstateXcr0Offset = 464;
// Offset of the XSAVE header's XSTATE_BV.
constexpr size_t kXstateHeaderOffset = 512;

// arch_prctl codes for dynamically enabled XSAVE features (AMX tile data),
// Linux 5.16 (asm/prctl.h; glibc 2.36's <asm/prctl.h> has them, older ones
// do not).
constexpr int kArchGetXcompPerm = 0x1022;
constexpr int kArchReqXcompPerm = 0x1023;

}  // namespace cr::uapi
