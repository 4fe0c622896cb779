// chrootctl: named, verified job roots for batch sites. Each verb lives in cmd_<verb>.cpp.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

#include "chrootctl/common/strings.hpp"
#include "cli.hpp"

namespace {
void print_usage() {
  using namespace chrootctl;
  std::string text =
      "Usage: chrootctl VERB [OPTIONS] [ARGS]\n\n"
      "Named, verified job roots for batch sites: build stripped OS trees from recipes,\n"
      "register them under friendly names, audit them, and run jobs inside them.\n\nVerbs:\n";
  std::size_t width = 0;
  for (const auto& [name, verb] : cli::verbs()) width = std::max(width, name.size());
  for (const auto& [name, verb] : cli::verbs()) text += str("  ", name, std::string(width - name.size() + 2, ' '), verb.summary, "\n");
  text += "\nRun 'chrootctl VERB --help' for a verb's options; 'man chrootctl' for exit codes.\n";
  cli::out(text);
}

#ifdef CHROOTCTL_FRONT
// The front binary carries only the verbs on a job's launch path (run, cleanup); every other
// verb is handled by the full tool installed beside it, which it replaces itself with. A job
// launch thus never loads libarchive (with libxml2 and ICU), which costs milliseconds and MiB.
[[noreturn]] void exec_full_tool(char** argv) {
  const std::string full = chrootctl::cli::full_tool_path();
  if (full.empty()) {
    std::fprintf(stderr, "chrootctl: error: the full tool chrootctl-full is not installed next to %s\n", chrootctl::cli::own_directory().c_str());
    std::_Exit(2);
  }
  ::execv(full.c_str(), argv);  // argv[0] stays "chrootctl"
  std::fprintf(stderr, "chrootctl: error: execv('%s'): %s\n", full.c_str(), std::strerror(errno));
  std::_Exit(2);
}
#endif
}  // namespace

int main(int argc, char** argv) {
  using namespace chrootctl;
  std::span<char* const> args(argv, static_cast<std::size_t>(argc));
#ifdef CHROOTCTL_FRONT
  if (argc < 2 || cli::verbs().find(argv[1]) == cli::verbs().end()) exec_full_tool(argv);
#endif
  if (argc < 2) {
    print_usage();
    return cli::k_error;
  }
  const std::string verb = argv[1];
  if (verb == "-h" || verb == "--help" || verb == "help") {
    if (verb == "help" && argc > 2) {
      auto it = cli::verbs().find(argv[2]);
      if (it != cli::verbs().end()) {
        char* sub[] = {argv[2], const_cast<char*>("--help")};
        return it->second.handler(std::span<char* const>(sub, 2));
      }
    }
    print_usage();
    return cli::k_ok;
  }
  if (verb == "--version") {
    cli::out("chrootctl " CHROOTCTL_VERSION "\n");
    return cli::k_ok;
  }
  auto it = cli::verbs().find(verb);
  if (it == cli::verbs().end()) {
    std::vector<std::string> names;
    for (const auto& [name, v] : cli::verbs()) names.push_back(name);
    std::string msg = str("unknown verb ", quote(verb));
    if (auto s = did_you_mean(verb, names)) msg += str(" (did you mean '", *s, "'?)");
    std::fprintf(stderr, "chrootctl: %s\nRun 'chrootctl --help' for the list of verbs.\n", msg.c_str());
    return cli::k_error;
  }
  const int rc = it->second.handler(args.subspan(1));
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::fprintf(stderr, "chrootctl: error: writing output: %s\n", std::strerror(errno));
    return rc == 0 ? cli::k_error : rc;
  }
  return rc;
}
