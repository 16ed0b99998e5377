// Validation of the unix socket records of files.img (common/image/sockets.h).
#include "common/image/sockets.h"

#include <sys/socket.h>

#include <map>
#include <set>

#include "common/image/files.h"

namespace cr {

namespace {
unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }
}  // namespace

const char* unix_type_name(int32_t type) {
  if (type == SOCK_STREAM) return "stream";
  if (type == SOCK_DGRAM) return "dgram";
  if (type == SOCK_SEQPACKET) return "seqpacket";
  return "unknown";
}

Status validate_unix_sockets(const Files& files, uint64_t* bad_id) {
  std::set<uint64_t> unix_files;
  for (auto& f : files.files)
    if (f.type == "unix") unix_files.insert(f.id);
  std::map<uint64_t, const UnixSocketRec*> by_id;
  for (auto& s : files.unix_sockets) {
    if (!unix_files.count(s.file_id))
      return make_error("files.img: unix socket record for file %llu, which is no unix socket", ull(s.file_id));
    if (!by_id.emplace(s.file_id, &s).second)
      return make_error("files.img: file %llu: two unix socket records", ull(s.file_id));
  }
  for (uint64_t id : unix_files)
    if (!by_id.count(id)) return make_error("files.img: unix socket %llu has no record", ull(id));
  auto bad = [&](const UnixSocketRec& s, const char* what) {
    if (bad_id) *bad_id = s.file_id;
    return make_error("files.img: unix socket %llu: %s", ull(s.file_id), what);
  };
  std::map<std::string, uint64_t> names;  // bound (not accepted) names: one socket each
  for (auto& s : files.unix_sockets) {
    bool conn_type = s.type == SOCK_STREAM || s.type == SOCK_SEQPACKET;
    if (!conn_type && s.type != SOCK_DGRAM) return bad(s, "unknown type");
    if (s.state != "unconnected" && s.state != "listening" && s.state != "connected") return bad(s, "unknown state");
    if (s.state == "listening" && !conn_type) return bad(s, "a datagram socket cannot listen");
    // Names: at most sun_path; a path name is relative to an absolute dir
    // or absolute itself, has no NUL byte; an abstract one starts with NUL.
    if (s.name.size() > kMaxUnixName) return bad(s, "name longer than sun_path");
    bool abstract = !s.name.empty() && s.name.data[0] == 0;
    if (!s.name.empty() && !abstract) {
      for (uint8_t c : s.name.data)
        if (c == 0) return bad(s, "path name with a NUL byte");
      bool relative = s.name.data[0] != '/';
      if (relative != !s.dir.empty()) return bad(s, "a relative path name needs its directory, an absolute one none");
      if (relative && s.dir[0] != '/') return bad(s, "directory is not absolute");
    } else if (!s.dir.empty() || s.unlinked) {
      return bad(s, "directory or unlinked flag without a path name");
    }
    if (s.state == "listening" && s.name.empty()) return bad(s, "listening without a name");
    // Peers.
    const UnixSocketRec* peer = nullptr;
    if (s.peer_kind == "tree") {
      auto it = by_id.find(s.peer);
      if (it == by_id.end() || it->second == &s) return bad(s, "its peer is no other unix socket of the image");
      peer = it->second;
      if (peer->type != s.type) return bad(s, "its peer is of another type");
      if (peer->state == "listening") return bad(s, "its peer is listening");
      if (conn_type && (peer->peer_kind != "tree" || peer->peer != s.file_id))
        return bad(s, "its peer is not connected back to it");
      // A datagram socket connected to one that is not connected back
      // connects to its name.
      if (!conn_type && (peer->peer_kind != "tree" || peer->peer != s.file_id) && peer->name.empty())
        return bad(s, "connected to an unnamed datagram socket that is not connected back");
    } else if (s.peer_kind == "pending") {
      if (!conn_type) return bad(s, "a pending connection of a datagram socket");
    } else if (s.peer_kind != "" && s.peer_kind != "closed" && s.peer_kind != "external") {
      return bad(s, "unknown peer kind");
    }
    if (s.peer_kind != "tree" && s.peer) return bad(s, "a peer file id without a peer in the tree");
    if (!s.peer_name.empty()) {
      if (s.peer_kind != "external" || s.type != SOCK_DGRAM)
        return bad(s, "a peer name for other than a datagram socket connected outside the tree");
      if (s.peer_name.size() > kMaxUnixName) return bad(s, "peer name longer than sun_path");
      if (s.peer_name.data[0] != 0 && s.peer_name.data[0] != '/')
        return bad(s, "peer name neither absolute nor abstract");
      for (size_t i = 1; s.peer_name.data[0] == '/' && i < s.peer_name.size(); i++)
        if (s.peer_name.data[i] == 0) return bad(s, "peer path name with a NUL byte");
      if (!s.queue.empty()) return bad(s, "data queued from a peer outside the tree, which it alone could send");
    }
    if ((s.state == "connected") != !s.peer_kind.empty())
      return bad(s, "connected without a peer, or a peer without being connected");
    // Listeners: an accepted socket and a pending client name a listener
    // of their type whose name is the accepted socket's.
    if (s.listener) {
      auto it = by_id.find(s.listener);
      if (it == by_id.end() || it->second->state != "listening" || it->second->type != s.type)
        return bad(s, "its listener is no listening socket of its type");
      const UnixSocketRec& l = *it->second;
      if (s.peer_kind == "pending") {
        bool listed = false;
        for (uint64_t c : l.pending) listed |= c == s.file_id;
        if (!listed) return bad(s, "pending, but not in its listener's queue");
        if (!s.queue.empty()) return bad(s, "a pending connection with data queued to the client");
      } else if (!s.peer_kind.empty()) {  // accepted: its client in the tree, gone or outside
        if (s.name != l.name) return bad(s, "accepted, but its name is not its listener's");
        if (peer && peer->listener) return bad(s, "both ends accepted");
      } else {
        return bad(s, "a listener without a connection through it");
      }
    } else if (s.peer_kind == "pending") {
      return bad(s, "pending without a listener");
    }
    if (s.state == "listening") {
      if (s.peer_kind != "" || !s.queue.empty()) return bad(s, "a listener with a peer or queued data");
      if (s.pending.size() > s.backlog + 1ull) return bad(s, "more pending connections than its backlog holds");
      std::set<uint64_t> seen;
      for (uint64_t c : s.pending) {
        auto it = by_id.find(c);
        if (it == by_id.end() || it->second->peer_kind != "pending" || it->second->listener != s.file_id ||
            !seen.insert(c).second)
          return bad(s, "a pending connection that is not a pending client of it");
      }
    } else if (!s.pending.empty() || s.backlog) {
      return bad(s, "pending connections or a backlog without listening");
    }
    // Two sockets bound to one name cannot be made (accepted ones share
    // their listener's).
    bool accepted = s.listener && s.peer_kind != "pending";
    if (!s.name.empty() && !accepted) {
      std::string key(s.name.data.begin(), s.name.data.end());
      if (!abstract) key = s.dir + "\n" + key;
      if (!names.emplace(key, s.file_id).second) return bad(s, "bound to the name of another socket");
    }
    // Queues: bounded; the stream's bytes in one element; data queued to a
    // datagram socket needs a way in (its peer connected back, its name, or
    // the partner made for a closed peer).
    uint64_t total = 0;
    for (auto& m : s.queue) total += m.size();
    if (total > kMaxUnixQueueBytes || s.queue.size() > kMaxUnixQueueMessages) return bad(s, "queue too large");
    if (s.type == SOCK_STREAM && (s.queue.size() > 1 || (s.queue.size() == 1 && s.queue[0].empty())))
      return bad(s, "a stream queue is one non-empty run of bytes");
    if (!s.queue.empty() && s.type == SOCK_DGRAM) {
      for (auto& m : s.queue)
        if (m.empty()) return bad(s, "an empty datagram in its queue");
      bool back = peer && peer->peer_kind == "tree" && peer->peer == s.file_id;
      if (s.peer_kind == "" && s.name.empty()) return bad(s, "data queued to an unnamed, unconnected datagram socket");
      if (s.peer_kind == "tree" && !back && s.name.empty())
        return bad(s, "data queued to an unnamed datagram socket from a peer not connected to it");
    }
    if (s.shutdown > 3) return bad(s, "bad shutdown bits");
    if (s.sndbuf < 0 || s.rcvbuf < 0 || s.sndtimeo_us < 0 || s.rcvtimeo_us < 0 || s.peek_off < -1)
      return bad(s, "bad option value");
  }
  return ok_status();
}

}  // namespace cr
