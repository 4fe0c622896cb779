#pragma once
// The command-line layer: a registry of verbs (one cmd_<verb>.cpp each), an option parser with
// generated --help, and the shared way to print errors. Verbs stay thin: parse, call one library
// function, print.

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/settings.hpp"

namespace chrootctl::cli {

/// Exit codes shared by all verbs (documented in docs/chrootctl.1.md).
enum Exit : int {
  k_ok = 0,
  k_failed_check = 1,  ///< the answer is "no": differences, findings, not verified
  k_error = 2,         ///< usage error or the command could not do its work
};

struct Option {
  std::string name;  ///< long name without dashes
  char short_name = 0;
  bool has_value = false;
  bool repeatable = false;
  std::string metavar;  ///< shown in help, e.g. "DIR"
  std::string help;
};

struct Spec {
  std::string command;      ///< "manifest create"
  std::string usage;        ///< after the command: "ROOT [-o FILE]"
  std::string summary;      ///< one line
  std::string description;  ///< paragraphs for --help (may be empty)
  std::vector<Option> options;
  std::size_t min_positional = 0;
  std::size_t max_positional = 0;
  bool dashdash = false;  ///< collects everything after "--" as `rest`
};

class Args {
 public:
  [[nodiscard]] bool flag(const std::string& name) const { return m_values.count(name) > 0; }
  [[nodiscard]] std::optional<std::string> value(const std::string& name) const;
  [[nodiscard]] std::vector<std::string> values(const std::string& name) const;
  std::vector<std::string> positional;
  std::vector<std::string> rest;

 private:
  friend std::optional<int> parse(const Spec&, std::span<char* const>, Args&);
  std::multimap<std::string, std::string> m_values;
};

/// Collects the option tables of every verb (for `chrootctl completion`): while `into` is set,
/// parse() records each Spec it is given and stops the verb at once (exit 0), and dispatch()
/// runs every subcommand so that theirs are recorded too. No verb does anything before it
/// parses its arguments, so nothing else runs. nullptr stops collecting.
void collect_specs(std::vector<Spec>* into);

/// Parses argv (argv[0] is the verb). Returns an exit code when the caller should stop now
/// (--help printed: 0; usage error printed: 2), or nullopt to go on.
std::optional<int> parse(const Spec& spec, std::span<char* const> argv, Args& out);
std::string help_text(const Spec& spec);

/// Prints "chrootctl: error: ..." to stderr and returns k_error.
int report(const Error& e);
int report(const std::string& message);
/// Prints a usage error with a pointer to --help; returns k_error.
int usage_error(const Spec& spec, const std::string& message);

/// Common options.
Option store_option();
Option json_option();
Option threads_option();
/// --quiet / -q: no progress display.
Option quiet_option();
/// --trusted DIR: the directory of trusted public keys (default: trusted_keys in the config).
Option trusted_option();
/// The settings of a verb that works on an existing store: a store named with --store must
/// exist (a mistyped path would otherwise read as an empty catalogue, and `list` or
/// `verify --all` would report nothing with exit 0). Verbs that make a store (add, build,
/// import) call load_settings.
Result<Settings> load_existing_store_settings(const Args& a);
/// Reads --threads (1 to 64) into `threads` when given; an exit code after a usage error.
std::optional<int> threads_value(const Spec& spec, const Args& a, unsigned& threads);

using Handler = int (*)(std::span<char* const> argv);

/// A verb made of subcommands ("manifest create|check|diff"): runs the one named by argv[1]
/// with argv from there on, or prints `usage` (to stdout for --help, exit 0; to stderr with
/// the unknown name, exit 2).
struct Subcommand {
  const char* name;
  Handler handler;
};
int dispatch(std::span<char* const> argv, const std::string& verb, const char* usage, std::initializer_list<Subcommand> subcommands);
struct Registrar {
  Registrar(const char* name, const char* summary, Handler handler);
};
struct Verb {
  std::string summary;
  Handler handler;
};
const std::map<std::string, Verb>& verbs();

/// Writes text to stdout fully (stdout errors become exit 2 at the end of main). Text is
/// passed through terminal_safe (newlines kept): whatever input a verb quotes, no control
/// sequence reaches the terminal.
void out(const std::string& text);
/// Writes text to stderr, terminal-safe like out(). Every message a verb prints goes through
/// this (or report()).
void err(const std::string& text);

/// The directory of the running executable, with a trailing '/' ("/" if unknown).
std::string own_directory();
/// chrootctl-full beside this executable: PREFIX/libexec/chrootctl/chrootctl-full for an
/// installed PREFIX/bin/chrootctl, or the same directory (the build tree, or chrootctl-full
/// itself). Never searched in PATH. Empty if there is none.
std::string full_tool_path();

}  // namespace chrootctl::cli

#define CHROOTCTL_VERB(name, summary, fn) \
  static const ::chrootctl::cli::Registrar chrootctl_verb_registrar_ { name, summary, fn }
