// The network lock of established TCP connections (cr-dump
// --tcp-established): between the dump and the restore nothing of a dumped
// connection may reach either end, or the peer would get a RST from a
// socket that no longer exists (or a restored one would see packets it
// does not expect). cr-dump puts the sockets in repair mode (a close then
// sends nothing) and adds an nftables table of its own,
// "inet crtools-ROOTPID", whose chains drop every packet of the dumped
// connections' 4-tuples in both directions (and nothing else: a client
// and a server on 127.0.0.1 share `lo`, so the rule matches ports and
// addresses exactly). cr-restore deletes the table once the sockets are
// back, and on a failed restore; a failed dump, a dump -s and a dump
// --leave-running delete it before they end. A cr-dump that is SIGKILLed
// (or dies otherwise) in between cannot: from its first lock on, a guard
// process (cr-dump/dump.h NetLockGuard) holds a copy of each repaired
// socket and, when cr-dump's end of their socketpair closes without word
// of how the lock ended, takes the sockets out of repair mode and deletes
// the table (net_unlock) itself -- unless cr-dump was killing the tree,
// whose lock then stays for the restore.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace cr {

// One direction-independent connection: local and remote ends as
// inet_ntop writes them (an IPv4-mapped IPv6 address "::ffff:a.b.c.d" is
// matched as IPv4, which is what travels on the wire).
struct TcpTuple {
  int family = 0;  // AF_INET or AF_INET6
  std::string local_addr, peer_addr;
  uint32_t local_port = 0, peer_port = 0;
};

// "crtools-PID": the table of the tree whose root is `root`.
std::string net_lock_table(pid_t root);

// The nft(8) script that makes the table and drops the tuples' packets
// (exposed for the unit tests).
std::string net_lock_script(pid_t root, const std::vector<TcpTuple>& tuples);

// Add the table with rules for `tuples` (atomically: nft -f). An Error
// naming nft's own message when nft is missing or fails.
Status net_lock(pid_t root, const std::vector<TcpTuple>& tuples);

// Delete the table if it exists; an Error only if nft fails otherwise.
Status net_unlock(pid_t root);

// Whether the table exists.
bool net_lock_present(pid_t root);

// Run nft with `args`, `input` on its stdin; its stderr (or how it ended)
// in the Error. Bounded in time (10 s).
Status run_nft(const std::vector<std::string>& args, const std::string& input, std::string* out = nullptr);

}  // namespace cr
