#include "common/image/records.h"

#include <sys/utsname.h>
#include <time.h>

#include "common/version.h"

namespace cr {

Inventory make_inventory(int64_t root_pid) {
  Inventory inv;
  inv.tool = std::string("crtools ") + CRTOOLS_VERSION;
  char buf[64];
  time_t now = time(nullptr);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  inv.created = buf;
  struct utsname u;
  if (uname(&u) == 0) {
    inv.hostname = u.nodename;
    inv.kernel = u.release;
  }
  inv.root_pid = root_pid;
  return inv;
}

}  // namespace cr
