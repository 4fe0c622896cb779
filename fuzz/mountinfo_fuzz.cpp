// mountinfo (launcher/src/mountinfo.cpp), read by the root-run launcher with its own parser, and
// the cgroup layout found in it and in /proc/self/cgroup (launcher/src/cgroups.cpp).
#include <string>

#include "chrootctl/launcher/cgroups.hpp"
#include "chrootctl/launcher/mountinfo.hpp"
#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace chrootctl;
  const auto text = fuzz::text_of(data, size);
  for (const auto& m : launcher::parse_mountinfo(text)) {
    fuzz::require(m.mount_point.size() <= text.size() && m.root.size() <= text.size(), "unescaping never lengthens a field");
    (void)launcher::path_is_under(m.mount_point, m.root);
  }
  // The same bytes as /proc/self/cgroup: the two are read together when the launcher looks for
  // its cgroups.
  (void)launcher::cgroup::parse_layout(text, text);
  return 0;
}
