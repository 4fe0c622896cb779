// Names and paths to audit targets and diff sides.
#include "chrootctl/audit/target.hpp"

#include <sys/stat.h>

#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::audit {

namespace {

bool is_path(const std::string& arg) { return arg.find('/') != std::string::npos || arg == "." || arg == ".."; }

Target target_of(const Settings& s, const catalogue::Entry& e, const std::string& label) {
  Target t;
  t.label = label;
  t.name = e.name;
  t.build_dir = e.current.image;
  t.root = e.current.root;
  t.manifest = e.current.image + "/manifest";
  if (e.current.sealed) {
    t.sealed_file = e.current.root;
    t.sealed = e.current.sealed;
    t.root.clear();  // its mount, made by the caller
  }
  if (!e.seccomp.empty()) {
    t.seccomp = e.seccomp;
    t.seccomp_origin = str("the catalogue entry's seccomp = ", quote(e.seccomp));
  } else {
    t.seccomp = s.seccomp.policy;
    t.seccomp_origin = str("the site's [seccomp] policy = ", quote(s.seccomp.policy),
                           s.config_file.empty() ? std::string(" (the default)") : str(" (", s.config_file, ")"));
  }
  return t;
}

// The catalogue entry `arg` names, or nullopt when it names none (then it may be a path).
Result<std::optional<Target>> from_catalogue(const std::string& arg, const std::optional<std::string>& store) {
  if (is_path(arg)) return std::optional<Target>();
  auto settings = TRY(load_settings(store));
  auto cat = TRY(with_context(catalogue::load(settings), str("reading the catalogue ", catalogue::catalogue_path(settings))));
  const catalogue::Entry* e = cat.find_any(arg);
  if (!e) {
    if (sys::lstat_path(arg)) return std::optional<Target>();
    std::string msg = str(quote(arg), " is not in the catalogue ", catalogue::catalogue_path(settings), " and is not a build directory");
    if (auto s = did_you_mean(arg, cat.names())) msg += str(" (did you mean ", quote(*s), "?)");
    return fail(Errc::not_found, std::move(msg));
  }
  return std::optional<Target>(target_of(settings, *e, arg));
}

}  // namespace

Result<Target> resolve_target(const std::string& arg, const std::optional<std::string>& store) {
  if (auto t = TRY(from_catalogue(arg, store))) return std::move(*t);
  return target_from_build_dir(arg);
}

Result<std::vector<Target>> catalogue_targets(const std::optional<std::string>& store) {
  auto settings = TRY(load_settings(store));
  auto cat = TRY(with_context(catalogue::load(settings), str("reading the catalogue ", catalogue::catalogue_path(settings))));
  std::vector<Target> out;
  for (const auto& e : cat.entries) out.push_back(target_of(settings, e, e.name));
  return out;
}

Result<DiffSide> resolve_side(const std::string& arg, const std::optional<std::string>& store) {
  if (auto t = TRY(from_catalogue(arg, store))) return DiffSide{t->label, t->manifest, t->root, t->sealed_file, t->sealed};
  return side_from_path(arg);
}

}  // namespace chrootctl::audit
