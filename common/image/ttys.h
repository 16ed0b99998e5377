// Terminals in files.img: one record per terminal the tree holds (a
// pseudo-terminal pair made again at restore, or the user's terminal a
// shell job ran on), with its settings and, for a pty that is a session's
// controlling terminal, that session and its foreground process group.
// Files of type pty-master, pty-slave and tty-external refer to it
// (FileRec tty_id); a dev-tty file (/dev/tty) refers to none. Dump side:
// cr-dump/ttys.cc; restore side: cr-restore/ttys.cc; validation:
// common/image/ttys.cc.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace cr {

struct Files;
struct Pstree;

// struct termios2 (TCGETS2), field by field.
struct TermiosRec {
  uint32_t iflag = 0, oflag = 0, cflag = 0, lflag = 0;
  uint8_t line = 0;
  std::vector<uint8_t> cc;  // c_cc, kTermiosNcc bytes
  uint32_t ispeed = 0, ospeed = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TermiosRec, iflag, oflag, cflag, lflag, line, cc, ispeed, ospeed)

inline constexpr size_t kTermiosNcc = 19;  // NCCS of struct termios2 (asm-generic/termbits.h)

struct TtyRec {
  uint64_t id = 0;        // FileRec tty_id refers to it
  // "pty": a pseudo-terminal pair of the tree (its master is in the tree),
  // made again as a new pair; "external": the terminal outside the tree a
  // shell job ran on (cr-dump --shell-job), replaced at restore by the
  // terminal cr-restore --shell-job runs on.
  std::string kind;
  int32_t index = -1;     // pty: N of /dev/pts/N at dump (the new pair may get another N)
  std::string path;       // external: its name at dump (/dev/pts/3), for messages
  uint64_t rdev = 0;      // the slave's (external: the terminal's) device number at dump
  TermiosRec termios;     // the slave's line settings (external: the terminal's)
  uint16_t rows = 0, cols = 0, xpixel = 0, ypixel = 0;  // TIOCGWINSZ
  bool locked = false;    // pty: TIOCGPTLCK, the slave cannot be opened
  bool packet = false;    // pty: TIOCGPKT, packet mode on the master
  bool exclusive = false; // TIOCGEXCL
  // pty: the session (its leader's pid, a process of the tree) whose
  // controlling terminal it is; 0: none.
  int64_t sid = 0;
  // pty with sid: its foreground process group (a group of that session);
  // external: the tree's group that was the terminal's foreground group
  // (0: the job ran in the background). 0 otherwise.
  int64_t fg_pgrp = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TtyRec, id, kind, index, path, rdev, termios, rows, cols, xpixel, ypixel, locked,
                                   packet, exclusive, sid, fg_pgrp)

// Is this FileRec type one of a terminal (pty-master, pty-slave,
// tty-external, dev-tty)?
bool is_tty_type(const std::string& type);

// Every rule of the terminal records: unique ids, known kinds, one master
// per pty, files referring to a record of the right kind, at most one
// external terminal, settings in range, a session that a process of the
// tree leads and a foreground group of that session. An Error naming
// files.img and the terminal; `bad_id`, if given, gets the id at fault.
Status validate_ttys(const Files& files, const Pstree& tree, uint64_t* bad_id = nullptr);

// "/dev/pts/N" or the external terminal's name, for messages.
std::string tty_name(const TtyRec& t);

}  // namespace cr
