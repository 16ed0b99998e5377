// Terminal ioctls shared by cr-dump and cr-restore (records:
// common/image/ttys.h): line settings through struct termios2 (TCGETS2 /
// TCSETS2: the speeds as numbers, not Bxxx codes), window size.
#pragma once

#include "common/error.h"
#include "common/image/ttys.h"

namespace cr {

// The settings of the terminal behind fd (a pty master gives its slave's).
Result<TermiosRec> tty_get_termios(int fd);
// Set them (TCSETS2: at once, nothing flushed).
Status tty_set_termios(int fd, const TermiosRec& t);
// The window size (TIOCGWINSZ) into rows, cols, xpixel, ypixel of `t`.
Status tty_get_winsize(int fd, TtyRec& t);
Status tty_set_winsize(int fd, const TtyRec& t);

// Pseudo-terminal slaves: major 136 (UNIX98_PTY_SLAVE_MAJOR), minor N.
inline constexpr unsigned kPtySlaveMajor = 136;
// /dev/pts/N's index for a slave device number, -1 if it is none.
int pty_index_of(unsigned long long rdev);

}  // namespace cr
