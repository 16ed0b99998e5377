// UNIX domain sockets in files.img: one record per FileRec of type "unix"
// (by file_id) with its type, state, name, connection, options and the
// data queued to it. Dump side: cr-dump/unix_sockets.cc; restore side:
// cr-restore/unix_sockets.cc; validation: common/image/sockets.cc.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/image/bytes.h"

namespace cr {

struct Files;

struct UnixSocketRec {
  uint64_t file_id = 0;
  uint64_t ino = 0;          // the socket's inode at dump (for messages)
  int32_t type = 0;          // SOCK_STREAM (1), SOCK_DGRAM (2), SOCK_SEQPACKET (5)
  std::string state;         // "unconnected", "listening" or "connected"
  // The address it is bound to, as bind() was given it (sun_path bytes;
  // an abstract name starts with a NUL byte); empty: not bound. An
  // accepted socket shows its listener's name.
  Bytes name;
  std::string dir;           // a relative path name: the directory it is relative to
  uint64_t vfs_dev = 0, vfs_ino = 0;  // a path name: the socket file (dev as stat(2) shows it)
  bool unlinked = false;     // a path name whose socket file was removed after bind
  // The other end: "" none, "tree" (file `peer`), "closed" (the peer closed
  // its end), "external" (outside the tree, allowed by --ext-unix-sk:
  // restored as if the peer had closed its end, or connected again to
  // peer_name), "pending" (a connection
  // waiting in the queue of the listener `listener`, not yet accepted).
  std::string peer_kind;
  uint64_t peer = 0;         // peer_kind "tree": the peer's file id
  // peer_kind "external", a datagram socket whose peer outside the tree has
  // an absolute path or abstract name: that name, connected to again at
  // restore (for example /dev/log); empty: restored as if the peer closed.
  Bytes peer_name;
  uint64_t listener = 0;     // accepted (stream/seqpacket, peer in the tree) or pending: its listener's file id
  uint32_t backlog = 0;      // listening: listen()'s backlog
  std::vector<uint64_t> pending;  // listening: the clients of its pending connections, oldest first
  uint32_t shutdown = 0;     // 1: no more receptions (SHUT_RD), 2: no more sends (SHUT_WR)
  bool passcred = false, passsec = false;  // SO_PASSCRED, SO_PASSSEC
  int32_t sndbuf = 0, rcvbuf = 0;          // SO_SNDBUF, SO_RCVBUF as getsockopt gives them
  int64_t sndtimeo_us = 0, rcvtimeo_us = 0;  // SO_SNDTIMEO, SO_RCVTIMEO (0: none)
  int32_t peek_off = -1;     // SO_PEEK_OFF (-1: off)
  // The data waiting in its receive queue, oldest first: one element per
  // message (dgram, seqpacket) or the stream's bytes (stream: at most one).
  std::vector<Bytes> queue;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(UnixSocketRec, file_id, ino, type, state, name, dir, vfs_dev, vfs_ino, unlinked,
                                   peer_kind, peer, peer_name, listener, backlog, pending, shutdown, passcred, passsec, sndbuf,
                                   rcvbuf, sndtimeo_us, rcvtimeo_us, peek_off, queue)

// Bounds the validation holds images to.
inline constexpr size_t kMaxUnixName = 108;                  // sizeof sun_path
inline constexpr uint64_t kMaxUnixQueueBytes = 64ull << 20;  // per socket
inline constexpr size_t kMaxUnixQueueMessages = 1 << 16;     // per socket

// Every rule of the unix socket records: one per FileRec of type unix and
// only those; types, states, names, peers, listeners and queues consistent
// and restorable. An Error naming files.img and the file id; `bad_id`, if
// given, gets the file id of the record at fault.
Status validate_unix_sockets(const Files& files, uint64_t* bad_id = nullptr);

// "stream", "dgram", "seqpacket" or "unknown" for a socket type.
const char* unix_type_name(int32_t type);

}  // namespace cr
