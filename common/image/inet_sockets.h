// Inet (IPv4, IPv6) sockets in files.img: one record per FileRec of type
// "inet" (by file_id): TCP sockets unconnected, bound, listening or
// established (cr-dump --tcp-established: sequence numbers, queues, TCP
// options and window read in repair mode), UDP sockets bound or connected.
// Dump side: cr-dump/inet_sockets.cc (and cr-dump/net_lock.cc for the
// firewall rule that keeps established connections quiet); restore side:
// cr-restore/inet_sockets.cc; validation: common/image/inet_sockets.cc.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/image/bytes.h"

namespace cr {

struct Files;

struct InetSocketRec {
  uint64_t file_id = 0;
  uint64_t ino = 0;        // the socket's inode at dump (for messages)
  int32_t family = 0;      // AF_INET (2) or AF_INET6 (10)
  int32_t type = 0;        // SOCK_STREAM (1): TCP; SOCK_DGRAM (2): UDP
  // "unconnected" (bound to local_port, or not bound if it is 0),
  // "listening" (TCP), "connected" (UDP connected to peer_addr:peer_port),
  // "established" (TCP, with the tcp_* fields below).
  std::string state;
  std::string local_addr;  // as inet_ntop writes it ("0.0.0.0", "::", "::ffff:127.0.0.1")
  uint32_t local_port = 0;
  std::string peer_addr;   // connected, established: the other end
  uint32_t peer_port = 0;
  uint32_t backlog = 0;    // listening: listen()'s backlog
  bool reuseaddr = false, reuseport = false, keepalive = false, nodelay = false;
  bool v6only = false;     // AF_INET6: IPV6_V6ONLY
  // TCP: TCP_KEEPIDLE, TCP_KEEPINTVL (seconds), TCP_KEEPCNT as getsockopt
  // gives them (the sysctl defaults unless set); 0: not saved.
  int32_t keepidle = 0, keepintvl = 0, keepcnt = 0;
  int32_t sndbuf = 0, rcvbuf = 0;  // SO_SNDBUF, SO_RCVBUF as getsockopt gives them (twice what was set)
  // Established TCP (TCP_REPAIR): the next sequence number to be queued
  // for sending (write_seq) and the next expected (rcv_nxt); the send queue
  // (sent but unacknowledged bytes, then `tcp_unsent` bytes never sent)
  // and the receive queue (received, not read yet).
  uint32_t tcp_snd_seq = 0, tcp_rcv_seq = 0;
  Bytes tcp_send_queue;
  uint32_t tcp_unsent = 0;
  Bytes tcp_recv_queue;
  uint32_t tcp_mss = 0;           // TCP_MAXSEG
  uint32_t tcp_options = 0;       // TCPI_OPT_* of tcp_info: 1 timestamps, 2 SACK, 4 window scale
  uint32_t tcp_snd_wscale = 0, tcp_rcv_wscale = 0;
  uint32_t tcp_timestamp = 0;     // TCP_TIMESTAMP (the connection's clock)
  // TCP_REPAIR_WINDOW (struct tcp_repair_window).
  uint32_t tcp_snd_wl1 = 0, tcp_snd_wnd = 0, tcp_max_window = 0, tcp_rcv_wnd = 0, tcp_rcv_wup = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(InetSocketRec, file_id, ino, family, type, state, local_addr, local_port,
                                   peer_addr, peer_port, backlog, reuseaddr, reuseport, keepalive, nodelay, v6only,
                                   keepidle, keepintvl, keepcnt, sndbuf, rcvbuf, tcp_snd_seq, tcp_rcv_seq, tcp_send_queue, tcp_unsent,
                                   tcp_recv_queue, tcp_mss, tcp_options, tcp_snd_wscale, tcp_rcv_wscale, tcp_timestamp,
                                   tcp_snd_wl1, tcp_snd_wnd, tcp_max_window, tcp_rcv_wnd, tcp_rcv_wup)

// Bounds the validation holds images to.
inline constexpr uint64_t kMaxTcpQueueBytes = 64ull << 20;  // per queue
inline constexpr uint32_t kMaxTcpWscale = 14;               // RFC 7323

// Every rule of the inet socket records: one per FileRec of type inet and
// only those; family, type, state, addresses, ports and queues consistent.
// An Error naming files.img and the file id; `bad_id`, if given, gets the
// file id of the record at fault.
Status validate_inet_sockets(const Files& files, uint64_t* bad_id = nullptr);

// "tcp" or "udp" (by type), "tcp6"/"udp6" for AF_INET6.
std::string inet_kind_name(int32_t family, int32_t type);
// "ADDR:PORT", "[ADDR]:PORT" for IPv6.
std::string inet_endpoint(int32_t family, const std::string& addr, uint32_t port);
// Whether the images hold an established TCP connection (restore then
// lifts the network lock that cr-dump set for them).
bool has_established_tcp(const Files& files);

}  // namespace cr
