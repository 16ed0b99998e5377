// Numeric directory listings under /proc (fd/, task/).
#pragma once

#include <string>
#include <vector>

#include "common/error.h"

namespace cr::proc {

// The entries of a directory whose names are all non-negative decimal
// numbers ("." and ".." skipped), ascending. Any other name is an error.
Result<std::vector<int>> list_numeric_dir(const std::string& path);

}  // namespace cr::proc
