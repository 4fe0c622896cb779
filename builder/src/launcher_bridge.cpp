#include "chrootctl/common/strings.hpp"
#include "in_tree_internal.hpp"

namespace chrootctl::builder::detail {

// Until chrootctl::launcher::run_build_command lands, commands inside the tree cannot run.
Result<int> run_in_tree(const std::string&, std::vector<std::string> argv, std::vector<std::pair<std::string, std::string>>, bool, int) {
  return fail(Errc::unsupported, str("cannot run ", quote(argv.empty() ? "" : argv[0]),
                                     " inside the tree: this chrootctl is built without the launcher's build-command support"));
}

}  // namespace chrootctl::builder::detail
