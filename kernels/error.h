// One exception type for everything a user can get wrong (a file, an option, a config key). It lives on
// the lowest floor, kernels/, since the kernels check their shapes with it and every layer above uses it.
// The message names the thing at fault; `aware` prints it and exits with status 2.
#pragma once
#include <stdexcept>
#include <string>

namespace aware {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// check(cond, "file.npy: truncated") throws Error when cond is false.
inline void check(bool cond, const std::string& message) {
  if (!cond) throw Error(message);
}

}  // namespace aware
