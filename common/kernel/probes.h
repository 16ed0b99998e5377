// The probes behind the feature table (common/kernel/features.cc). Each
// returns a short description of what it saw, or an Error saying why the
// feature is absent. They are internal: callers use feature_status().
#pragma once

#include <string>

#include "common/error.h"

namespace cr::probe {

// probes_ptrace.cc
Result<std::string> ptrace_seize();
Result<std::string> ptrace_getsigmask();
Result<std::string> ptrace_peeksiginfo();
Result<std::string> ptrace_regsets();
Result<std::string> ptrace_rseq_config();
Result<std::string> ptrace_seccomp_filter();

// probes_memory.cc
Result<std::string> map_files();
Result<std::string> proc_pagemap();
Result<std::string> proc_pid_mem();
Result<std::string> prctl_mm_map();
Result<std::string> memfd_create();
Result<std::string> vdso();
Result<std::string> soft_dirty();

// probes_uffd.cc
Result<std::string> userfaultfd();
Result<std::string> uffd_wp();
Result<std::string> uffd_wp_unpopulated();
Result<std::string> uffd_wp_async();
Result<std::string> pagemap_scan();

// probes_process.cc
Result<std::string> clone3_set_tid();
Result<std::string> kcmp();
Result<std::string> pidfd_open();
Result<std::string> pidfd_getfd();
Result<std::string> ns_uts();
Result<std::string> ns_ipc();
Result<std::string> ns_net();
Result<std::string> ns_mnt();
Result<std::string> ns_pid();
Result<std::string> ns_user();
Result<std::string> ns_cgroup();
Result<std::string> ns_time();
Result<std::string> cgroup_freezer();
Result<std::string> posix_timer_ids();
Result<std::string> sysv_shm_next_id();

// probes_cpu.cc
Result<std::string> cpu_xsave();
Result<std::string> cpu_avx();
Result<std::string> cpu_avx512();
Result<std::string> cpu_pkru();
Result<std::string> cpu_amx();
Result<std::string> cpu_cet_shstk();

// probes_misc.cc
Result<std::string> tcp_repair();
Result<std::string> bpf_maps();
Result<std::string> btf();
Result<std::string> timerfd_set_ticks();
Result<std::string> nft_net_lock();

}  // namespace cr::probe
