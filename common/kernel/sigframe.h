// The XSAVE area of an x86-64 signal frame (rt_sigreturn), shared by the two
// places that return a task through a frame of our making: cr-restore's
// restorer (the restored registers) and a remote session (the task's own
// registers, should cr-dump or cr-exec be killed mid-session:
// common/remote/remote_session.h). The frame itself: KRtSigframe in
// parasite/restorer_task_abi.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/error.h"
#include "parasite/restorer_task_abi.h"

namespace cr {

// XCR0: the XSAVE features the OS enabled (xgetbv 0), read once.
uint64_t xcr0_features();

// The size of the XSAVE area (standard format) holding `features`: the end
// of the highest component (CPUID leaf 0xd, sub-leaf i: size in EAX, offset
// in EBX), at least the legacy area and the header.
uint32_t xstate_size_of(uint64_t features);

// The features a frame can give back to a task whose kernel FPU buffer has
// the default size: `features` without AMX tile data. That buffer grows
// only at the task's first tile instruction, and the kernel takes an area
// larger than the buffer as legacy state only, silently dropping AVX and
// AVX-512 (fpu/signal.c check_xstate_in_sigframe, seen on 6.18 with AMX,
// where NT_X86_XSTATE has the maximum size).
uint64_t sigframe_features(uint64_t features);

// Copy `xsave` (an NT_X86_XSTATE area) to `out` as a signal frame's fpstate
// holding `features` (from sigframe_features): the area trimmed to their
// size (or to its own, if smaller), with the software bytes the kernel checks before it trusts an
// extended state (fpu__restore_sig: magic1, sizes and features in the
// legacy area's reserved bytes, magic2 just after the area). `out` must hold
// the area and 4 bytes (sigframe_xstate_room(features) always do) and sit 64-byte aligned in the task.
// An Error if the state holds a feature outside `features` (live AMX tiles).
Status put_sigframe_xstate(std::span<uint8_t> out, std::span<const uint8_t> xsave, uint64_t features);
size_t sigframe_xstate_room(uint64_t features);

// The general registers of a signal frame, from user_regs_struct or the
// images' GpRegs (the same names).
template <class Regs>
void put_sigframe_regs(KSigcontext& sc, const Regs& g) {
  sc.r8 = g.r8, sc.r9 = g.r9, sc.r10 = g.r10, sc.r11 = g.r11, sc.r12 = g.r12, sc.r13 = g.r13;
  sc.r14 = g.r14, sc.r15 = g.r15, sc.rdi = g.rdi, sc.rsi = g.rsi, sc.rbp = g.rbp, sc.rbx = g.rbx;
  sc.rdx = g.rdx, sc.rax = g.rax, sc.rcx = g.rcx, sc.rsp = g.rsp, sc.rip = g.rip, sc.eflags = g.eflags;
  sc.cs = static_cast<uint16_t>(g.cs);
  sc.ss = static_cast<uint16_t>(g.ss);
  sc.fs = static_cast<uint16_t>(g.fs);
  sc.gs = static_cast<uint16_t>(g.gs);
}

}  // namespace cr
