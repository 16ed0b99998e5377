// The boundary between host code and a blob (parasite, restorer): types that
// both sides compile. Rules for everything in parasite/*_abi.h:
//
// - Plain standard-layout, trivially copyable types with fixed-width fields
//   only: no pointers that the host dereferences (addresses are uint64_t),
//   no virtual functions, no constructors, no enums without a fixed
//   underlying type.
// - Every struct's size and every field the other side reads has its offset
//   static_assert'ed, so a change on one side that the other does not see
//   breaks the build instead of the dumpee.
// - Only <stddef.h> and <stdint.h>: this header is compiled freestanding.
//
// Errors never cross the boundary as exceptions: a blob reports failure in a
// BlobResult inside its args struct (and as the -errno return value of its
// entry); the host turns it into a cr::Error with blob_error()
// (common/blob/blob.h).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace cr {

// Where a blob command failed. ret is 0 or -errno. `what` names the step
// ("rt_sigaction", "args: bad magic"), NUL-terminated; `arg` is a number that
// goes with it (a signal number, an address) when has_arg is set.
struct BlobResult {
  int32_t ret;
  uint32_t has_arg;
  uint64_t arg;
  char what[48];
};
static_assert(sizeof(BlobResult) == 64);
static_assert(offsetof(BlobResult, ret) == 0);
static_assert(offsetof(BlobResult, has_arg) == 4);
static_assert(offsetof(BlobResult, arg) == 8);
static_assert(offsetof(BlobResult, what) == 16);

// BlobResult.arg is shown in decimal below this, in hex from it (addresses).
inline constexpr uint64_t kBlobHexFrom = 0x10000;

// Checks every *_abi.h type goes through.
#define CR_BLOB_ABI_TYPE(T)                                                      \
  static_assert(__is_standard_layout(T), #T " must be standard-layout");        \
  static_assert(__is_trivially_copyable(T), #T " must be trivially copyable"); \
  static_assert(alignof(T) <= 8, #T " must not need more than 8-byte alignment")

CR_BLOB_ABI_TYPE(BlobResult);

// Number of signals the kernel knows on x86-64 (_NSIG), and the size of its
// sigset_t in bytes (the sigsetsize argument of rt_sigaction and friends).
inline constexpr int kBlobNSig = 64;
inline constexpr int kBlobSigsetSize = 8;

}  // namespace cr
