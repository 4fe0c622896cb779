// HTCondor compatibility: NAMED_CHROOT export and import, RequestedChroot lookup.
#include "chrootctl/catalogue/condor.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "chrootctl/catalogue/safety.hpp"
#include "chrootctl/catalogue/store.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/tree_path.hpp"

namespace chrootctl::catalogue {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

// "NAME = value" -> (NAME, value), both trimmed; nullopt when the line is no assignment.
std::optional<std::pair<std::string, std::string>> assignment(std::string_view line) {
  const auto eq = line.find('=');
  if (eq == std::string_view::npos) return std::nullopt;
  const std::string_view name = trim(line.substr(0, eq));
  if (name.empty()) return std::nullopt;
  for (char c : name)
    if (is_space(c)) return std::nullopt;
  return std::make_pair(std::string(name), std::string(trim(line.substr(eq + 1))));
}

Result<std::string> read_user_file(const std::string& path) {
  // The file is the administrator's or the job's, and only read: following a symlink is fine.
  // But a job may point its ad at a device (opening some has side effects, /dev/watchdog arms a
  // reboot): the file is pinned with O_PATH, which opens nothing, and reopened for reading only
  // once it is known to be a regular file.
  auto pinned = TRY(sys::open_path(path, O_PATH));
  auto st = TRY(sys::fstat(pinned.get()));
  if (!S_ISREG(st.st_mode)) return fail(Errc::invalid_argument, str(quote(path), " is not a regular file"));
  auto fd = TRY(sys::open_path("/proc/self/fd/" + std::to_string(pinned.get()), O_RDONLY | O_NOCTTY | O_NONBLOCK));
  return sys::read_fd(fd.get(), 16u << 20);
}

std::string compact_time(std::int64_t t) {
  std::string iso = format_time(t);  // 2026-11-23T12:05:30Z
  std::erase(iso, '-');
  std::erase(iso, ':');
  return iso;
}

}  // namespace

// ---- shared line handling ----

std::vector<LogicalLine> logical_lines(std::string_view text) {
  std::vector<LogicalLine> out;
  std::vector<std::string_view> lines;
  for (std::size_t pos = 0; pos <= text.size();) {
    auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view l = text.substr(pos, nl - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    lines.push_back(l);
    if (nl == text.size()) break;
    pos = nl + 1;
  }
  for (std::size_t i = 0; i < lines.size(); ++i) {
    LogicalLine ll;
    ll.line = static_cast<std::uint32_t>(i + 1);
    std::string_view l = lines[i];
    // As HTCondor's config reader does: a backslash at the end of a line joins the next one,
    // whose leading white space is dropped; comment lines inside a continuation are skipped.
    while (true) {
      std::string_view t = l;
      while (!t.empty() && is_space(t.back())) t.remove_suffix(1);
      const bool cont = !t.empty() && t.back() == '\\' && i + 1 < lines.size();
      if (!cont) {
        ll.text += l;
        break;
      }
      t.remove_suffix(1);
      ll.text += t;
      ++i;
      while (i + 1 < lines.size() && starts_with(trim(lines[i]), "#")) ++i;
      l = lines[i];
      while (!l.empty() && is_space(l.front())) l.remove_prefix(1);
    }
    out.push_back(std::move(ll));
  }
  return out;
}

// ---- NAMED_CHROOT ----

NamedChrootValue parse_named_chroot(std::string_view value) {
  NamedChrootValue out;
  std::string token;
  auto flush = [&] {
    if (token.empty()) return;
    const auto eq = token.find('=');
    if (eq == std::string::npos) out.warnings.push_back(str("skipping ", quote(token), " in NAMED_CHROOT: no '=' (expected NAME=PATH)"));
    else if (eq == 0) out.warnings.push_back(str("skipping ", quote(token), " in NAMED_CHROOT: no name before '='"));
    else if (eq + 1 == token.size()) out.warnings.push_back(str("skipping ", quote(token), " in NAMED_CHROOT: no path after '='"));
    else out.entries.push_back({token.substr(0, eq), token.substr(eq + 1)});
    token.clear();
  };
  for (char c : value) {
    if (c == ',' || is_space(c) || c == '\n') flush();
    else token.push_back(c);
  }
  flush();
  return out;
}

NamedChrootSetting find_named_chroot(std::string_view text, const std::string& filename) {
  NamedChrootSetting plain, starter;
  for (const auto& ll : logical_lines(text)) {
    const std::string_view t = trim(ll.text);
    if (t.empty() || t[0] == '#') continue;
    auto a = assignment(t);
    if (!a) continue;
    NamedChrootSetting* target = nullptr;
    if (iequals(a->first, "NAMED_CHROOT")) target = &plain;
    if (iequals(a->first, "STARTER.NAMED_CHROOT")) target = &starter;
    if (!target) continue;
    *target = {true, a->second, str(filename, ":", ll.line)};
  }
  return starter.found ? starter : plain;
}

namespace {

// Every entry and alias whose current version is usable now, and why the others are not.
// `path_ok` says whether a root can be written where it is going (NAMED_CHROOT cannot hold some).
template <class PathOk>
void usable_names(const Settings& s, const Catalogue& c, std::int64_t now, PathOk&& path_ok, std::vector<NamedChroot>& included,
                  std::vector<CondorConfig::Skipped>& skipped) {
  for (const auto& e : c.entries) {
    auto ev = evaluate(s, e.name, e.aliases, e.current, now);
    std::vector<std::string> names{e.name};
    names.insert(names.end(), e.aliases.begin(), e.aliases.end());
    // HTCondor chroots into a directory itself; a sealed image is a file, mounted by chrootctl.
    const std::string path_problem = e.current.sealed ? str("it is a sealed image (", e.current.root,
                                                            "), which HTCondor cannot chroot into; use the job wrapper "
                                                            "(condor-config --wrapper) and keep it mounted on the workers ('chrootctl mount ",
                                                            e.name, "')")
                                                      : path_ok(e.current.root);
    for (const auto& n : names) {
      if (!ev.usable) skipped.push_back({n, ev.reason});
      else if (!path_problem.empty()) skipped.push_back({n, path_problem});
      else included.push_back({n, e.current.root});
    }
  }
  std::sort(included.begin(), included.end(), [](const NamedChroot& a, const NamedChroot& b) { return a.name < b.name; });
}

// Paths written into a condor configuration line or a shell script unquoted by anyone else.
Status check_config_path(const std::string& path, const std::string& what) {
  if (path.empty() || path[0] != '/') return fail(Errc::invalid_argument, str(what, " ", quote(path), " must be an absolute path"));
  for (char c : path)
    if (is_space(c) || c == '\n' || c == '"' || c == '\'' || c == '#' || c == '$' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
      return fail(Errc::invalid_argument, str(what, " ", quote(path), " holds ", quote(std::string(1, c)),
                                              ", which a condor configuration line or the wrapper script cannot hold"));
  return {};
}

}  // namespace

Result<CondorConfig> condor_config(const Settings& s, std::int64_t now) {
  auto c = TRY(load_trusted(s));
  if (!now) now = sys::now_unix();
  CondorConfig out;
  usable_names(
      s, c, now,
      [](const std::string& root) {
        const bool representable =
            std::none_of(root.begin(), root.end(), [](char ch) { return ch == ',' || is_space(ch) || ch == '\n' || ch == '#'; });
        return representable ? std::string() : str("its root ", quote(root), " holds white space, ',' or '#', which NAMED_CHROOT cannot express");
      },
      out.included, out.skipped);
  out.text = str("# Written by 'chrootctl condor-config' from ", catalogue_path(s), ".\n",
                 "# Only verified images are listed. Names are case-sensitive; 'root' (the host's /) is never listed.\n", "NAMED_CHROOT =");
  for (std::size_t i = 0; i < out.included.size(); ++i) out.text += str(i ? ", " : " ", out.included[i].name, "=", out.included[i].path);
  out.text += "\n";
  return out;
}

Result<WrapperConfig> condor_wrapper_config(const Settings& s, const std::string& chrootctl, const std::string& script_path, std::int64_t now) {
  TRY(check_config_path(chrootctl, "the chrootctl binary"));
  TRY(check_config_path(script_path, "the wrapper script"));
  TRY(check_config_path(s.store, "the store"));
  if (!s.config_file.empty()) TRY(check_config_path(s.config_file, "the configuration file"));
  auto c = TRY(load_trusted(s));
  if (!now) now = sys::now_unix();
  WrapperConfig out;
  // Names only: the roots never appear in HTCondor's configuration.
  usable_names(
      s, c, now, [](const std::string&) { return std::string(); }, out.included, out.skipped);
  for (std::size_t i = 0; i < out.included.size(); ++i) out.named_chroot += str(i ? ", " : "", out.included[i].name);
  out.text = str("# Written by 'chrootctl condor-config --wrapper' from ", catalogue_path(s), ".\n",
                 "# For HTCondor 25.5 and later, which have no NAMED_CHROOT. Every job starts through chrootctl's job\n",
                 "# wrapper: a job whose ad sets RequestedChroot runs in that verified root (in a user namespace, as its\n",
                 "# user); a job without it runs unchanged; an unknown, unverified or invalid name fails the job and\n",
                 "# never runs it on the host. USER_JOB_WRAPPER takes one executable and no arguments, hence the script.\n",
                 "USER_JOB_WRAPPER = ", script_path, "\n",
                 "# The names that resolve now, for matchmaking: requirements = stringListMember(\"EL9\", NamedChroot)\n", "NamedChroot = \"",
                 out.named_chroot, "\"\n", "STARTD_ATTRS = $(STARTD_ATTRS) NamedChroot\n");
  out.script = str("#!/bin/sh\n", "# HTCondor's USER_JOB_WRAPPER, written by 'chrootctl condor-config --wrapper'. HTCondor runs it as\n",
                   "# the job's user with the job's executable and arguments; USER_JOB_WRAPPER cannot pass arguments\n",
                   "# of its own, so this script does.\n", "exec '", chrootctl, "' condor-wrapper --store '", s.store, "'",
                   s.config_file.empty() ? std::string() : str(" --config '", s.config_file, "'"), " -- \"$@\"\n");
  return out;
}

// ---- import ----

namespace {

// Manifests the tree at `root` into a new build directory STORE/NAME/import-TIME and registers it.
Result<std::string> import_one(const Settings& s, const NamedChroot& nc, const ImportOptions& o) {
  TRY(check_name(nc.name));
  const std::string root = TRY(canonical_path(nc.path));
  TRY(check_plain_path(root));
  auto identity = TRY(with_context(check_root(root), str("refusing to import ", quote(nc.path))));
  const std::int64_t started = o.now ? o.now : sys::now_unix();

  const std::string parent = str(s.store, "/", nc.name);
  TRY(sys::mkdir_p(parent, 0755));
  // Staged under a dot name (gc and the builder ignore those), renamed into place when complete.
  auto staging = TRY(TempDir::create(str(parent, "/.import-")));
  TRY(sys::chmod_dir(staging.path(), 0755));

  manifest::CreateOptions copts;
  copts.threads = o.threads;
  copts.progress = o.progress;
  auto m = TRY(manifest::create(root, copts));
  auto rendered = manifest::render(m);

  Version v;
  v.root = root;
  v.digest = rendered.digest;
  v.added_at = started;
  v.verified_at = started;
  v.identity = identity;
  AddResult result;
  result.entries = m.entries.size();

  // Importing the same unchanged root again only renews its verification.
  auto c = TRY(load(s));
  if (const Entry* e = c.find(nc.name); e && e->current.root == root && e->current.digest == rendered.digest) {
    v.image = e->current.image;
    v.build_id = e->current.build_id;
    TRY(write_stat_record(v.image, m, rendered.digest));
    TRY(record_version(s, nc.name, v, result));
    return str(m.entries.size(), " entries, tree digest sha256:", rendered.digest, ", unchanged since build ", v.build_id);
  }
  TRY(write_file_atomic(staging.path() + "/manifest", rendered.text, 0644));
  TRY(write_stat_record(staging.path(), m, rendered.digest));
  TRY(write_file_atomic(staging.path() + "/source", root + "\n", 0644));

  std::string image;
  for (int n = 1;; ++n) {
    const std::string id = n == 1 ? str("import-", compact_time(started)) : str("import-", compact_time(started), "-", n);
    auto r = sys::rename_at(AT_FDCWD, staging.path(), AT_FDCWD, str(parent, "/", id), RENAME_NOREPLACE);
    if (r) {
      image = TRY(canonical_path(str(parent, "/", id)));
      break;
    }
    if (r.error().sys_errno() != EEXIST || n > 100) return fail(r.error());
  }
  (void)staging.release();

  v.image = image;
  v.build_id = base_name(image);
  if (auto r = record_version(s, nc.name, v, result); !r) {
    (void)sys::remove_tree(image);
    return fail(r.error());
  }
  return str(m.entries.size(), " entries, tree digest sha256:", rendered.digest, ", build ", v.build_id);
}

}  // namespace

Result<ImportReport> import_condor_config(const Settings& s, const std::string& file, const ImportOptions& o) {
  const std::string text = TRY(with_context(read_user_file(file), str("reading ", file)));
  ImportReport rep;
  const auto setting = find_named_chroot(text, file);
  if (!setting.found) return rep;
  rep.where = setting.where;
  auto parsed = parse_named_chroot(setting.value);
  rep.warnings = parsed.warnings;
  for (const auto& nc : parsed.entries) {
    if (nc.name == "root") {
      rep.warnings.push_back(str("skipping ", quote(nc.name + "=" + nc.path), ": 'root' is the host's / and is never registered"));
      continue;
    }
    ImportItem item{nc.name, nc.path, false, ""};
    if (auto why = invalid_name(nc.name)) {
      item.message = *why;
    } else if (o.dry_run) {
      item.message = "would be imported";
    } else if (s.require_signature) {
      item.message = "not imported: require_signature is set and an imported root has no signature";
    } else {
      auto r = import_one(s, nc, o);
      item.imported = bool(r);
      item.message = r ? *r : r.error().what();
    }
    rep.items.push_back(std::move(item));
  }
  return rep;
}

// ---- lookup ----

namespace {

// Parses a ClassAd string literal that makes up the whole of `value`.
void parse_literal(std::string_view value, ChrootRequest& r) {
  if (value.empty()) {
    r.problem = "it has no value";
    return;
  }
  if (value[0] != '"') {
    r.problem = str("its value ", quote(value), " is not a string literal (HTCondor would evaluate it as an expression, not a name)");
    return;
  }
  std::string name;
  std::size_t i = 1;
  bool closed = false;
  for (; i < value.size(); ++i) {
    const char c = value[i];
    if (c == '\\') {
      if (i + 1 < value.size() && (value[i + 1] == '"' || value[i + 1] == '\\')) {
        name.push_back(value[++i]);
        continue;
      }
      r.problem = str("its value ", quote(value), " holds an escape sequence, which no catalogue name has");
      return;
    }
    if (c == '"') {
      closed = true;
      break;
    }
    name.push_back(c);
  }
  if (!closed) {
    r.problem = str("its value ", quote(value), " is an unterminated string");
    return;
  }
  if (!trim(value.substr(i + 1)).empty()) {
    r.problem = str("its value ", quote(value), " is not a plain string literal (HTCondor would evaluate it as an expression)");
    return;
  }
  if (name.find("$(") != std::string::npos) {
    r.problem = str("its value ", quote(name), " uses a submit macro; look up the job ClassAd ($_CONDOR_JOB_AD) instead");
    return;
  }
  if (name.empty()) {
    r.problem = "it asks for an empty name";
    return;
  }
  r.name = std::move(name);
}

}  // namespace

ChrootRequest find_request(std::string_view text) {
  ChrootRequest r;
  for (const auto& ll : logical_lines(text)) {
    const std::string_view t = trim(ll.text);
    if (t.empty() || t[0] == '#') continue;
    auto a = assignment(t);
    if (!a) continue;
    const std::string& attr = a->first;
    std::string_view bare = attr;
    if (starts_with(bare, "+")) bare.remove_prefix(1);
    else if (bare.size() > 3 && iequals(bare.substr(0, 3), "my.")) bare.remove_prefix(3);
    if (!iequals(bare, "RequestedChroot")) continue;
    r = ChrootRequest{};
    r.present = true;
    r.attribute = attr;
    r.line = ll.line;
    parse_literal(a->second, r);
  }
  return r;
}

namespace {
// Whether a line mentions RequestedChroot: its letters in this order, in any case, once
// everything but letters is dropped ("Requested Chroot", "REQUESTED\0CHROOT" count).
bool mentions_request(std::string_view line) {
  std::string letters;
  for (char c : line) {
    const char l = lower(c);
    if (l >= 'a' && l <= 'z') letters.push_back(l);
  }
  return letters.find("requestedchroot") != std::string::npos;
}

bool identifier(std::string_view s) {
  if (s.empty() || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) return false;
  for (char c : s)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}
}  // namespace

ChrootRequest find_request_in_ad(std::string_view text) {
  ChrootRequest found;    // the first assignment that names a root
  ChrootRequest problem;  // the first reason to refuse
  std::uint32_t number = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view raw = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++number;
    const std::string_view t = trim(raw);
    if (t.empty() || t[0] == '#') continue;
    const bool mentions = mentions_request(t);
    const auto eq = t.find('=');
    const std::string_view name = eq == std::string_view::npos ? std::string_view() : trim(t.substr(0, eq));
    const bool parsed = eq != std::string_view::npos && identifier(name);
    if (!parsed) {
      if (mentions && !problem.present) {
        problem.present = true;
        problem.attribute = "RequestedChroot";
        problem.line = number;
        problem.problem = str("the line ", quote(t), " mentions RequestedChroot but is not a ClassAd attribute line ('Name = value')");
      }
      continue;
    }
    if (!iequals(name, "RequestedChroot")) continue;
    ChrootRequest r;
    r.present = true;
    r.attribute = std::string(name);
    r.line = number;
    parse_literal(trim(t.substr(eq + 1)), r);
    if (!r.problem.empty()) {
      if (!problem.present) problem = r;
      continue;
    }
    if (!found.present) {
      found = r;
    } else if (found.name != r.name && !problem.present) {
      problem = r;
      problem.problem =
          str("RequestedChroot is set twice, to ", quote(found.name), " on line ", found.line, " and to ", quote(r.name), " on line ", r.line);
    }
  }
  if (problem.present) return problem;
  return found;
}

Result<ChrootRequest> find_request_in_ad_file(const std::string& file, std::string* text_out) {
  std::string text = TRY(with_context(read_user_file(file), str("reading ", file)));
  ChrootRequest r = find_request_in_ad(text);
  if (text_out) *text_out = std::move(text);
  return r;
}

std::string job_id_in_ad(std::string_view text) {
  std::optional<std::string> cluster, proc;
  bool twice = false;
  for (const auto& line : split(text, '\n')) {
    const std::string_view t = trim(line);
    const auto eq = t.find('=');
    if (t.empty() || t[0] == '#' || eq == std::string_view::npos) continue;
    const std::string_view name = trim(t.substr(0, eq));
    std::optional<std::string>* slot = iequals(name, "ClusterId") ? &cluster : iequals(name, "ProcId") ? &proc : nullptr;
    if (!slot) continue;
    if (slot->has_value()) twice = true;
    *slot = std::string(trim(t.substr(eq + 1)));
  }
  if (twice || !cluster || !proc || !parse_u64(*cluster) || !parse_u64(*proc)) return {};
  return str(*cluster, ".", *proc);
}

Result<ChrootRequest> find_request_in(const std::string& file) {
  const std::string text = TRY(with_context(read_user_file(file), str("reading ", file)));
  return find_request(text);
}

std::string describe_request(const std::string& file, const ChrootRequest& request, const std::string& what) {
  return str(file, ":", request.line, ": ", request.attribute, ": ", what);
}

namespace {
Result<LookupResult> lookup_request(const Settings& s, const std::string& file, ChrootRequest request, const ResolveOptions& options) {
  LookupResult out;
  out.request = std::move(request);
  if (!out.request.present) return out;
  if (!out.request.problem.empty()) {
    out.reason = describe_request(file, out.request, out.request.problem);
    return out;
  }
  auto r = resolve(s, out.request.name, options);
  if (r) {
    out.resolved = std::move(*r);
    return out;
  }
  if (!is_refusal(r.error())) return fail(std::move(r.error()));
  out.reason = describe_request(file, out.request, r.error().what());
  return out;
}
}  // namespace

Result<LookupResult> lookup(const Settings& s, const std::string& file, const ResolveOptions& options) {
  return lookup_request(s, file, TRY(find_request_in(file)), options);
}

Result<LookupResult> lookup_ad(const Settings& s, const std::string& file, const ResolveOptions& options) {
  return lookup_request(s, file, TRY(find_request_in_ad_file(file)), options);
}

}  // namespace chrootctl::catalogue
