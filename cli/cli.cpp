#include "cli.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::cli {

namespace {
std::map<std::string, Verb>& registry() {
  static std::map<std::string, Verb> r;
  return r;
}
std::vector<Spec>* g_collector = nullptr;
}  // namespace

void collect_specs(std::vector<Spec>* into) { g_collector = into; }

Registrar::Registrar(const char* name, const char* summary, Handler handler) { registry()[name] = {summary, handler}; }

const std::map<std::string, Verb>& verbs() { return registry(); }

std::optional<std::string> Args::value(const std::string& name) const {
  auto it = m_values.upper_bound(name);
  // last occurrence wins for single-valued options
  if (it == m_values.begin()) return std::nullopt;
  --it;
  if (it->first != name) return std::nullopt;
  return it->second;
}

std::vector<std::string> Args::values(const std::string& name) const {
  std::vector<std::string> out;
  auto [b, e] = m_values.equal_range(name);
  for (auto it = b; it != e; ++it) out.push_back(it->second);
  return out;
}

std::string help_text(const Spec& spec) {
  std::string out = str("Usage: chrootctl ", spec.command, spec.usage.empty() ? "" : " ", spec.usage, "\n\n", spec.summary, "\n");
  if (!spec.description.empty()) out += "\n" + spec.description + "\n";
  out += "\nOptions:\n";
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& o : spec.options) {
    std::string left = o.short_name ? str("-", o.short_name, ", --", o.name) : str("    --", o.name);
    if (o.has_value) left += " " + (o.metavar.empty() ? std::string("VALUE") : o.metavar);
    rows.emplace_back(left, o.help + (o.repeatable ? " (repeatable)" : ""));
  }
  rows.emplace_back("-h, --help", "show this help and exit");
  std::size_t width = 0;
  for (const auto& r : rows) width = std::max(width, r.first.size());
  for (const auto& r : rows) out += str("  ", r.first, std::string(width - r.first.size() + 2, ' '), r.second, "\n");
  return out;
}

int usage_error(const Spec& spec, const std::string& message) {
  err(str("chrootctl ", spec.command, ": ", message, "\nTry 'chrootctl ", spec.command, " --help'.\n"));
  return k_error;
}

std::optional<int> parse(const Spec& spec, std::span<char* const> argv, Args& result) {
  if (g_collector) {
    g_collector->push_back(spec);
    return k_ok;
  }
  bool only_positional = false;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    const std::string arg = argv[i];
    if (!only_positional && arg == "--") {
      if (spec.dashdash) {
        for (std::size_t k = i + 1; k < argv.size(); ++k) result.rest.emplace_back(argv[k]);
        break;
      }
      only_positional = true;
      continue;
    }
    if (!only_positional && (arg == "-h" || arg == "--help")) {
      out(help_text(spec));
      return k_ok;
    }
    if (!only_positional && arg.size() > 1 && arg[0] == '-') {
      std::string name;
      std::optional<std::string> inline_value;
      if (arg[1] == '-') {
        name = arg.substr(2);
        if (auto eq = name.find('='); eq != std::string::npos) {
          inline_value = name.substr(eq + 1);
          name = name.substr(0, eq);
        }
      }
      const Option* opt = nullptr;
      for (const auto& o : spec.options) {
        if ((arg[1] == '-' && o.name == name) || (arg[1] != '-' && arg.size() == 2 && o.short_name == arg[1])) opt = &o;
      }
      if (!opt) {
        std::vector<std::string> names;
        for (const auto& o : spec.options) names.push_back(o.name);
        std::string msg = str("unknown option ", quote(arg));
        if (arg[1] == '-')
          if (auto s = did_you_mean(name, names)) msg += str(" (did you mean '--", *s, "'?)");
        return usage_error(spec, msg);
      }
      if (!opt->repeatable && result.flag(opt->name)) return usage_error(spec, str("option '--", opt->name, "' given more than once"));
      if (opt->has_value) {
        std::string v;
        if (inline_value) {
          v = *inline_value;
        } else {
          if (i + 1 >= argv.size()) return usage_error(spec, str("option '--", opt->name, "' needs a value (", opt->metavar, ")"));
          v = argv[++i];
        }
        result.m_values.emplace(opt->name, v);
      } else {
        if (inline_value) return usage_error(spec, str("option '--", opt->name, "' takes no value"));
        result.m_values.emplace(opt->name, "");
      }
      continue;
    }
    result.positional.push_back(arg);
  }
  if (result.positional.size() < spec.min_positional)
    return usage_error(spec, str("missing argument (usage: chrootctl ", spec.command, " ", spec.usage, ")"));
  if (result.positional.size() > spec.max_positional)
    return usage_error(spec, str("unexpected argument ", quote(result.positional[spec.max_positional])));
  return std::nullopt;
}

int report(const Error& e) { return report(e.what()); }

int report(const std::string& message) {
  // Multi-line diagnostics (recipe errors) already carry their own "error:" prefixes.
  if (message.find(": error: ") != std::string::npos) err(message + "\n");
  else err(str("chrootctl: error: ", message, "\n"));
  return k_error;
}

Option store_option() { return {"store", 0, true, false, "DIR", "image store and catalogue directory (default: from config)"}; }
Result<Settings> load_existing_store_settings(const Args& a) {
  const auto given = a.value("store");
  if (given) {
    auto st = sys::stat_path(*given);
    if (!st && st.error().sys_errno() == ENOENT) return fail(Errc::not_found, str("the store ", quote(*given), " (--store) does not exist"));
    if (!st) return fail(std::move(st.error()).add_context("the store (--store)"));
    if (!S_ISDIR(st->st_mode)) return fail(Errc::invalid_argument, str("the store ", quote(*given), " (--store) is not a directory"));
  }
  return load_settings(given);
}
Option json_option() { return {"json", 0, false, false, "", "print machine-readable JSON"}; }
Option threads_option() { return {"threads", 0, true, false, "N", "hashing threads (default: one per CPU)"}; }
Option quiet_option() { return {"quiet", 'q', false, false, "", "no progress display"}; }
Option trusted_option() {
  return {"trusted", 0, true, false, "DIR", "trusted public keys (default: trusted_keys in the config, /etc/chrootctl/trusted.d)"};
}

std::optional<int> threads_value(const Spec& spec, const Args& a, unsigned& threads) {
  auto t = a.value("threads");
  if (!t) return std::nullopt;
  auto n = parse_u64(*t);
  if (!n || *n == 0 || *n > 64) return usage_error(spec, str("bad --threads ", quote(*t)));
  threads = static_cast<unsigned>(*n);
  return std::nullopt;
}

int dispatch(std::span<char* const> argv, const std::string& verb, const char* usage, std::initializer_list<Subcommand> subcommands) {
  if (g_collector) {
    for (const auto& s : subcommands) {
      char* sub[] = {const_cast<char*>(s.name)};
      (void)s.handler(std::span<char* const>(sub, 1));
    }
    return k_ok;
  }
  if (argv.size() < 2) {
    err(usage);
    return k_error;
  }
  const std::string sub = argv[1];
  if (sub == "-h" || sub == "--help") {
    out(usage);
    return k_ok;
  }
  for (const auto& s : subcommands)
    if (sub == s.name) return s.handler(argv.subspan(1));
  err(str("chrootctl ", verb, ": unknown subcommand ", quote(sub), "\n", usage));
  return k_error;
}

void out(const std::string& text) {
  const std::string safe = terminal_safe(text, true);
  (void)std::fwrite(safe.data(), 1, safe.size(), stdout);  // a closed stdout leaves nobody to tell
}

void err(const std::string& text) {
  const std::string safe = terminal_safe(text, true);
  (void)std::fwrite(safe.data(), 1, safe.size(), stderr);  // a closed stderr leaves nobody to tell
}

std::string own_directory() {
  auto self = sys::readlink_at(AT_FDCWD, "/proc/self/exe");
  if (!self || self->empty()) return "/";
  const std::string& exe = *self;
  return exe.substr(0, exe.find_last_of('/') + 1);
}

std::string full_tool_path() {
  const std::string dir = own_directory();
  for (const std::string& candidate : {dir + "../libexec/chrootctl/chrootctl-full", dir + "chrootctl-full"})
    if (sys::access_path(candidate, X_OK)) return candidate;
  return {};
}

}  // namespace chrootctl::cli
