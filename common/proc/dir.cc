#include "common/proc/dir.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/proc/parse.h"

namespace cr::proc {

Result<std::vector<int>> list_numeric_dir(const std::string& path) {
  DIR* d = opendir(path.c_str());
  if (!d) return make_errno(errno, "cannot open directory %s", path.c_str());
  std::vector<int> out;
  Error err;
  bool bad = false;
  while (true) {
    errno = 0;
    struct dirent* e = readdir(d);
    if (!e) {
      if (errno) {
        err = make_errno(errno, "cannot read directory %s", path.c_str());
        bad = true;
      }
      break;
    }
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    int n = 0;
    if (!parse_int(std::string_view(e->d_name), n) || n < 0) {
      err = parse_error(path, 0, "unexpected entry %s", quote(e->d_name).c_str());
      bad = true;
      break;
    }
    out.push_back(n);
  }
  closedir(d);
  if (bad) return err;
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace cr::proc
