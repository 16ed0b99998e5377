// Monotonic time for the figures crtools records (stats images, logs).
#pragma once

#include <time.h>

namespace cr {

// Microseconds on CLOCK_MONOTONIC.
inline double now_us() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

}  // namespace cr
