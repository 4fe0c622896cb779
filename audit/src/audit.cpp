// `chrootctl audit`: the catalogue of checks, one image's audit (drift, checks, packages,
// policy) and its text and JSON reports.
#include "chrootctl/audit/audit.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <array>

#include "chrootctl/audit/checks.hpp"
#include "chrootctl/audit/policy.hpp"
#include "chrootctl/catalogue/access.hpp"
#include "chrootctl/catalogue/safety.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::audit {

namespace {

using S = Severity;

// The stable ids. Adding a check means adding it here, to docs/audit.md and to the enum in
// docs/audit.schema.json (a unit test keeps the three in step).
constexpr std::array<CheckInfo, 50> k_checks = {{
    // 1. setuid and setgid files
    {"setuid.unlisted", S::medium,
     "a setuid file runs with its owner's privileges for anyone who can execute it, and is not in the site's allow-list"},
    {"setgid.unlisted", S::low, "a setgid file runs with its group's privileges for anyone who can execute it, and is not in the site's allow-list"},
    {"setuid.allowlist-mismatch", S::high,
     "the allow-list accepts this setuid/setgid path only with other contents: the program was replaced or updated"},
    {"setuid.unexpected-location", S::high, "setuid/setgid programs belong to the distribution, not to /home, /tmp, /var, /opt or /usr/local"},
    {"setuid.not-root-owned", S::high, "a setuid program owned by another user gives that user's identity to everyone who runs it"},
    {"setuid.script", S::high, "a setuid/setgid script can be subverted through its interpreter and environment"},
    {"setuid.hardlinked", S::medium,
     "an extra hard link keeps a privileged program alive after the package replaces it, vulnerable version included"},
    // 2. file capabilities
    {"capability.file", S::medium, "file capabilities give a program part of root's power whoever runs it, and it is not in the site's allow-list"},
    {"capability.allowlist-mismatch", S::high, "the allow-list accepts capabilities on this path only with other contents or other capabilities"},
    {"capability.malformed", S::high, "a security.capability attribute that does not decode cannot be reviewed"},
    // 3. writable files and directories
    {"world-writable.file", S::medium, "any user can change a world-writable file"},
    {"world-writable.dir-no-sticky", S::high, "in a world-writable directory without the sticky bit anyone can delete or replace anyone's files"},
    {"world-writable.path-dir", S::high, "anyone can place programs or libraries in a world-writable directory on the PATH or library path"},
    {"group-writable.path-dir", S::medium, "the directory's group can place programs or libraries on the PATH or library path"},
    // 4. device nodes, FIFOs and sockets
    {"device.node", S::high, "a device node outside the minimal /dev list can give raw access to host hardware or kernel memory"},
    {"device.fifo", S::low, "a FIFO outside the allowed /dev list is not part of a clean image"},
    {"device.socket", S::low, "a socket left in the image is not part of a clean image"},
    // 5. ownership
    {"owner.non-root", S::low, "files owned by a user other than root can be changed by that user"},
    {"owner.unknown-uid", S::medium, "files owned by a uid without an account in the image belong to whoever gets that uid on the worker"},
    {"owner.unknown-gid", S::medium, "files owned by a gid without a group in the image belong to whoever gets that gid on the worker"},
    // 6. accounts
    {"account.extra-uid0", S::high, "an account other than root with uid 0 is a second root"},
    {"account.duplicate-uid", S::medium, "accounts sharing a uid share every file and process"},
    {"account.duplicate-gid", S::low, "groups sharing a gid share every file"},
    {"account.duplicate-name", S::medium, "a name defined twice resolves to whichever entry a tool reads first"},
    {"account.password-hash", S::high, "a usable password hash can be cracked offline and was probably copied from a real system"},
    {"account.empty-password", S::high, "an empty password lets anyone log in as the account"},
    {"account.shadow-mode", S::medium, "shadow files must be owned by root and readable only by root (and the shadow group)"},
    // 7. secrets
    {"secret.ssh-host-key", S::high, "an SSH host private key shipped in an image is shared by every job and machine using it"},
    {"secret.authorized-keys", S::medium, "authorized_keys grants SSH logins to whoever holds the keys"},
    {"secret.private-key", S::high, "a private key left in the image can be read by every job"},
    {"secret.netrc", S::high, ".netrc holds login passwords"},
    {"secret.git-credentials", S::high, ".git-credentials holds repository passwords or tokens"},
    {"secret.shell-history", S::medium, "shell history from the build can reveal commands, hosts and passwords"},
    {"secret.cloud-credentials", S::high, "cloud credentials left in the image can be used by every job"},
    {"secret.docker-credentials", S::high, "container registry credentials left in the image can be used by every job"},
    // 8. build-host leftovers
    {"leftover.machine-id", S::medium, "a machine id in the image makes every job root claim the same machine identity"},
    {"leftover.resolv-conf", S::low, "the build host's resolver configuration does not belong on the workers"},
    {"leftover.hostname", S::low, "the build host's name does not belong on the workers"},
    {"leftover.policy-rc-d", S::medium, "policy-rc.d left by the build changes how packages behave in the image"},
    {"leftover.qemu-static", S::medium, "a qemu user-mode emulator from a cross-architecture build does not belong in the image"},
    // 9. execution hooks
    {"hook.ld-so-preload", S::high, "ld.so.preload injects a library into every dynamically linked program"},
    {"hook.sudoers-nopasswd", S::high, "NOPASSWD lets a user run commands as another user without a password"},
    // 10. symlinks
    {"symlink.absolute", S::info, "an absolute symlink points at the host's files when the tree is read from outside the image"},
    {"symlink.escapes-root", S::info, "a relative symlink with more '..' than levels points outside the image when read from the host"},
    // 11. drift
    {"drift.added", S::high, "an entry that is not in the manifest was added after the image was recorded"},
    {"drift.removed", S::high, "an entry of the manifest is missing: the image changed after it was recorded"},
    {"drift.changed", S::high, "an entry differs from the manifest: the image changed after it was recorded"},
    {"drift.mtime-only", S::info, "only the modification time differs from the manifest"},
    // 12. who can reach the tree on the host
    {"store.reachable-privileged", S::high,
     "host users can reach this tree and run or open what it holds outside any job, with its privileges: make it reachable by root only, or strip "
     "it"},
    // 13. the system-call filter
    {"seccomp.none", S::high, "jobs of this image run without a system-call filter: the kernel's whole surface is open to them"},
}};

const std::array<CheckInfo, 50>& all_checks() { return k_checks; }

}  // namespace

std::string_view severity_name(Severity s) {
  switch (s) {
    case Severity::info:
      return "info";
    case Severity::low:
      return "low";
    case Severity::medium:
      return "medium";
    case Severity::high:
      return "high";
  }
  return "info";
}

std::optional<Severity> parse_severity(std::string_view s) {
  for (auto v : {Severity::info, Severity::low, Severity::medium, Severity::high})
    if (severity_name(v) == s) return v;
  return std::nullopt;
}

std::span<const CheckInfo> checks() { return all_checks(); }

const CheckInfo* find_check(std::string_view id) {
  for (const auto& c : all_checks())
    if (c.id == id) return &c;
  return nullptr;
}

std::vector<std::string> check_ids() {
  std::vector<std::string> out;
  for (const auto& c : all_checks()) out.emplace_back(c.id);
  return out;
}

std::string printable(std::string_view raw) { return escape_for_display(raw); }

std::uint64_t Report::count(Severity s) const {
  return static_cast<std::uint64_t>(std::count_if(findings.begin(), findings.end(), [&](const Finding& f) { return f.severity == s; }));
}

bool Report::fails(Severity gate) const {
  return std::any_of(findings.begin(), findings.end(), [&](const Finding& f) { return f.severity >= gate; });
}

Result<Target> target_from_build_dir(const std::string& dir) {
  Target t;
  t.label = dir;
  t.build_dir = dir;
  t.root = dir + "/root";
  t.manifest = dir + "/manifest";
  auto st = sys::stat_path(dir);
  if (!st) return fail(std::move(st.error()).add_context(str("auditing ", dir)));
  if (!S_ISDIR(st->st_mode))
    return fail(Errc::invalid_argument, str(dir, " is not a build directory (expected a directory holding root/ and manifest)"));
  if (auto ist = sys::lstat_path(str(dir, "/", manifest::k_sealed_file)); ist && S_ISREG(ist->st_mode)) {
    t.sealed = TRY(manifest::read_sealed(t.manifest));
    if (!t.sealed) return fail(Errc::invalid_argument, str(t.manifest, " has no #sealed line for ", dir, "/", manifest::k_sealed_file));
    t.sealed_file = str(dir, "/", manifest::k_sealed_file);
    t.root.clear();
    return t;
  }
  auto rst = sys::stat_path(t.root);
  if (!rst || !S_ISDIR(rst->st_mode))
    return fail(Errc::invalid_argument, str(dir, " is not a build directory: ", t.root, " is missing or not a directory"));
  auto mst = sys::lstat_path(t.manifest);
  if (!mst || !S_ISREG(mst->st_mode))
    return fail(Errc::invalid_argument, str(dir, " is not a build directory: ", t.manifest, " is missing or not a regular file"));
  return t;
}

Result<Report> audit(const Target& target, const Policy& policy, const Options& options) {
  if (target.root.empty())
    return fail(Errc::invalid_argument, str(target.label, " is a sealed image: it is audited through its mount, which was not made"));
  Report r;
  r.target = target;
  manifest::CreateOptions copts;
  copts.threads = options.threads;
  copts.progress = options.progress;
  manifest::Manifest fresh;
  std::vector<Finding> findings;
  if (!target.manifest.empty()) {
    auto recorded = TRY(with_context(manifest::load(target.manifest), str("reading manifest ", target.manifest)));
    r.tree_digest = manifest::digest(recorded);
    auto d = TRY(manifest::check(target.root, recorded, copts, &fresh));
    r.drift_checked = true;
    for (const auto& x : d.differences) r.drift_differences += x.kind != manifest::Difference::Kind::mtime_only;
    findings = drift_findings(d);
  } else {
    fresh = TRY(manifest::create(target.root, copts));
    r.notes.push_back("no manifest: drift was not checked");
  }
  r.entries = fresh.entries.size();
  // The catalogue entry's jobs run with no system-call filter (their own policy, or the site's).
  if (target.seccomp == "none") {
    Finding f;
    f.check = "seccomp.none";
    f.path = "/";
    f.detail = target.seccomp_origin;
    findings.push_back(std::move(f));
  }

  auto files = TRY(with_context(TreeFiles::open(target.root), str("opening ", target.root)));
  auto analysis = TRY(with_context(analyse(fresh, files, policy), str("auditing ", target.root)));
  findings.insert(findings.end(), std::make_move_iterator(analysis.findings.begin()), std::make_move_iterator(analysis.findings.end()));
  r.notes.insert(r.notes.end(), analysis.notes.begin(), analysis.notes.end());
  // 12. The store's rule (catalogue/access.hpp): a tree host users can reach holds nothing
  // privileged. What jobs see is not the question here, but what every user of this host can run.
  auto root = TRY(catalogue::canonical_path(target.root));
  auto keeper = TRY(with_context(catalogue::root_only_dir(root), str("checking who can reach ", target.root)));
  if (!keeper) {
    for (const auto& e : fresh.entries)
      if (auto what = manifest::privilege_of(e))
        findings.push_back({"store.reachable-privileged", S::high, e.path, "", str(*what, "; every user of this host can reach ", root), {}, {}});
  }
  finish(findings, r.ignored, policy);
  r.findings = std::move(findings);

  r.packages = TRY(with_context(read_packages(target.root), str("reading the packages of ", target.root)));
  if (r.packages.source == PackageList::Source::unknown) r.notes.push_back("packages unknown: " + r.packages.note);
  return r;
}

// ---- text ----

std::string summary_line(const Report& r) {
  std::string s = str(printable(r.target.label), ": ", r.count(S::high), " high, ", r.count(S::medium), " medium, ", r.count(S::low), " low, ",
                      r.count(S::info), " info");
  if (!r.ignored.empty()) s += str(" (", r.ignored.size(), " ignored by policy)");
  if (!r.drift_checked) s += "; drift not checked";
  else if (r.drift_differences == 0) s += "; matches its manifest";
  else s += str("; ", r.drift_differences, r.drift_differences == 1 ? " difference" : " differences", " from its manifest");
  switch (r.packages.source) {
    case PackageList::Source::none:
      s += "; no package database";
      break;
    case PackageList::Source::unknown:
      s += "; packages unknown";
      break;
    default:
      s += str("; ", r.packages.packages.size(), " packages (", source_name(r.packages.source), ")");
  }
  return s + "\n";
}

std::string render_text(const Report& r) {
  std::string out = str("audit of ", printable(r.target.label));
  if (r.target.root != r.target.label) out += str(" (", printable(r.target.root), ")");
  out += str(": ", r.entries, " entries\n");
  for (auto sev : {S::high, S::medium, S::low, S::info}) {
    const auto n = r.count(sev);
    if (n == 0) continue;
    out += str("\n", severity_name(sev), " (", n, ")\n");
    std::string_view current;
    for (const auto& f : r.findings) {
      if (f.severity != sev) continue;
      if (f.check != current) {
        current = f.check;
        const auto* c = find_check(f.check);
        out += str("  ", f.check, ": ", c ? c->reason : "", "\n");
      }
      out += str("    ", printable(f.path));
      if (!f.account.empty()) out += str(" [", printable(f.account), "]");
      if (!f.detail.empty()) out += str("  ", printable(f.detail));
      out += "\n";
    }
  }
  if (!r.ignored.empty()) {
    out += str("\nignored by policy (", r.ignored.size(), ")\n");
    for (const auto& f : r.ignored)
      out += str("  ", f.check, " ", printable(f.path), f.account.empty() ? "" : str(" [", printable(f.account), "]"), ": ",
                 printable(f.ignored_because), "\n");
  }
  if (!r.notes.empty()) {
    out += "\nnotes\n";
    for (const auto& n : r.notes) out += str("  ", printable(n), "\n");
  }
  out += "\n" + summary_line(r);
  return out;
}

// ---- JSON ----

namespace {

void write_caps(JsonWriter& w, const FileCaps& c) {
  w.begin_object();
  w.field("version", c.version);
  w.field("effective", c.effective);
  w.key("permitted").begin_array();
  for (const auto& n : cap_names(c.permitted)) w.value(n);
  w.end_array();
  w.key("inheritable").begin_array();
  for (const auto& n : cap_names(c.inheritable)) w.value(n);
  w.end_array();
  w.key("rootid");
  if (c.rootid) w.value(static_cast<std::uint64_t>(*c.rootid));
  else w.null();
  w.field("text", caps_text(c));
  w.end_object();
}

void write_finding(JsonWriter& w, const Finding& f, bool ignored) {
  w.begin_object();
  w.field("check", f.check);
  w.field("severity", severity_name(f.severity));
  w.field("path", escape_bytes(f.path));
  w.key("account");
  if (f.account.empty()) w.null();
  else w.value(f.account);
  w.field("detail", f.detail);
  const auto* c = find_check(f.check);
  w.field("reason", c ? c->reason : "");
  if (f.capabilities) {
    w.key("capabilities");
    write_caps(w, *f.capabilities);
  }
  if (ignored) w.field("ignored_because", f.ignored_because);
  w.end_object();
}

void write_counts(JsonWriter& w, const std::array<std::uint64_t, 4>& n) {
  w.begin_object();
  w.field("high", n[3]);
  w.field("medium", n[2]);
  w.field("low", n[1]);
  w.field("info", n[0]);
  w.end_object();
}

void write_report(JsonWriter& w, const std::string& label, const Report& r, Severity gate) {
  w.begin_object();
  w.field("target", label);
  auto opt = [&](std::string_view k, const std::string& v) {
    w.key(k);
    if (v.empty()) w.null();
    else w.value(v);
  };
  opt("name", r.target.name);
  opt("build_dir", r.target.build_dir);
  w.field("root", r.target.root);
  opt("manifest", r.target.manifest);
  opt("tree_digest", r.tree_digest);
  w.field("entries", r.entries);
  w.key("drift").begin_object();
  w.field("checked", r.drift_checked);
  w.field("differences", r.drift_differences);
  w.end_object();
  w.field("failed", r.fails(gate));
  w.key("counts");
  write_counts(w, {r.count(S::info), r.count(S::low), r.count(S::medium), r.count(S::high)});
  w.key("findings").begin_array();
  for (const auto& f : r.findings) write_finding(w, f, false);
  w.end_array();
  w.key("ignored").begin_array();
  for (const auto& f : r.ignored) write_finding(w, f, true);
  w.end_array();
  w.key("packages").begin_object();
  w.field("source", source_name(r.packages.source));
  opt("database", r.packages.database);
  opt("note", r.packages.note);
  w.key("list").begin_array();
  for (const auto& p : r.packages.packages) {
    w.begin_object();
    w.field("name", p.name);
    w.field("version", p.version);
    w.field("arch", p.arch);
    w.end_object();
  }
  w.end_array();
  w.end_object();
  w.key("notes").begin_array();
  for (const auto& n : r.notes) w.value(n);
  w.end_array();
  w.key("error").null();
  w.end_object();
}

}  // namespace

std::string render_json(const std::vector<ImageResult>& images, Severity gate, const std::string& policy_source) {
  JsonWriter w;
  w.begin_object();
  w.field("format", "chrootctl-audit");
  w.field("version", 1);
  w.field("gate", severity_name(gate));
  w.key("policy");
  if (policy_source.empty()) w.null();
  else w.value(policy_source);
  std::array<std::uint64_t, 4> totals{};
  std::uint64_t errors = 0, ignored = 0;
  bool failed = false;
  w.key("images").begin_array();
  for (const auto& img : images) {
    if (img.report) {
      write_report(w, img.label, *img.report, gate);
      for (auto s : {S::info, S::low, S::medium, S::high}) totals[static_cast<std::size_t>(s)] += img.report->count(s);
      ignored += img.report->ignored.size();
      failed = failed || img.report->fails(gate);
    } else {
      ++errors;
      w.begin_object();
      w.field("target", img.label);
      w.field("error", img.error ? img.error->what() : std::string("unknown error"));
      w.end_object();
    }
  }
  w.end_array();
  w.key("summary").begin_object();
  w.field("images", static_cast<std::uint64_t>(images.size()));
  w.field("errors", errors);
  w.key("counts");
  write_counts(w, totals);
  w.field("ignored", ignored);
  w.field("failed", failed);
  w.end_object();
  w.end_object();
  return w.str();
}

}  // namespace chrootctl::audit
