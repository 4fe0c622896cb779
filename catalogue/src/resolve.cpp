// Name -> verified root, cheap enough to run before every job.
#include "chrootctl/catalogue/resolve.hpp"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "chrootctl/catalogue/safety.hpp"
#include "chrootctl/catalogue/sealed.hpp"
#include "chrootctl/catalogue/sign.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::catalogue {

namespace {

// A verification time this far in the future means the clock was set back since; the age of
// the verification is then unknown.
constexpr std::int64_t k_clock_slack = 300;

Evaluation refuse(std::string state, std::string reason) { return {false, std::move(state), std::move(reason)}; }

std::string first_lines(const std::string& text, std::size_t n) {
  std::string out;
  std::size_t pos = 0, lines = 0;
  while (pos < text.size() && lines < n) {
    auto nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    if (!out.empty()) out += "; ";
    out += text.substr(pos, nl - pos);
    pos = nl + 1;
    ++lines;
  }
  if (pos < text.size()) out += "; ...";
  return out;
}

}  // namespace

std::string format_time(std::int64_t t) {
  if (t == 0) return "never";
  const time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  if (!::gmtime_r(&tt, &tm)) return std::to_string(t);
  char buf[32];
  if (std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return std::to_string(t);
  return buf;
}

std::string format_duration(std::int64_t s) {
  if (s < 0) return str("-", format_duration(-s));
  if (s < 60) return str(s, "s");
  if (s < 3600) return str(s / 60, "m ", s % 60, "s");
  if (s < 86400) return str(s / 3600, "h ", (s % 3600) / 60, "m");
  return str(s / 86400, "d ", (s % 86400) / 3600, "h");
}

Evaluation evaluate(const Settings& s, const std::string& name, const std::vector<std::string>& aliases, const Version& v, std::int64_t now) {
  if (v.verified_at == 0 && v.failed_at == 0) return refuse("unverified", "it has never been verified");
  if (v.failed_at != 0)
    return refuse("failed", str("its verification at ", format_time(v.failed_at), " failed: ", v.failure.empty() ? "no reason recorded" : v.failure,
                                " (it stays unusable until 'chrootctl verify ", name, "' passes)"));
  if (v.verified_at > now + k_clock_slack)
    return refuse("expired", str("its last verification is recorded at ", format_time(v.verified_at),
                                 ", in the future (was the clock changed?); run 'chrootctl verify ", name, "'"));
  if (now - v.verified_at > s.max_verify_age)
    return refuse("expired", str("its last full verification was at ", format_time(v.verified_at), ", ", format_duration(now - v.verified_at),
                                 " ago, longer than max_verify_age (", format_duration(s.max_verify_age), "); run 'chrootctl verify ", name, "'"));
  // A caller without root uses only the images the site lists in readable_images, by any of
  // their names. Opening a tree follows that list, but what the list says is the rule: a tree
  // another name opened, or one whose name was since taken off the list, is not one of them.
  // An image in the list whose tree is not open yet is said to be root-only too, rather than
  // "permission denied" from somewhere on the way.
  if (::geteuid() != 0) {
    if (!s.readable(name) && std::none_of(aliases.begin(), aliases.end(), [&](const std::string& a) { return s.readable(a); }))
      return refuse("root-only", str("launchers without root use only the images in readable_images of the site's configuration, and ", quote(name),
                                     aliases.empty() ? " is" : " (with its aliases) is", " not one of them"));
    if (auto st = sys::lstat_path(v.root); !st && st.error().sys_errno() == EACCES)
      return refuse("root-only", str("its tree is reachable by root only (uid ", ::geteuid(), " cannot reach ", quote(v.root),
                                     "); an image unprivileged launchers use must be in readable_images in the site's configuration"));
  }
  // The signature is checked over its small statement, against the digest the catalogue
  // recorded (the tree was verified against it): two small reads and one Ed25519 check. An
  // image registered as signed stays subject to its signature, so revoking its key (or
  // removing it from the trusted keys) withdraws it even when signatures are not required.
  if (s.require_signature || !v.signer.empty()) {
    auto sig = judge_image(s, v.image, v.recipe, v.build_id, v.statement_digest(), v.sealed, !v.signer.empty());
    if (!sig.acceptable) return refuse(sig.state, sig.reason);
  }
  auto id = check_version_root(v);
  if (!id) return refuse("untrusted", id.error().what());
  if (!(*id == v.identity))
    return refuse("changed", str("its root ", quote(v.root), " is not the ", v.sealed ? "image file" : "directory", " that was verified (recorded ",
                                 describe(v.identity), ", now ", describe(*id), "); run 'chrootctl verify ", name, "'"));
  return {true, "verified", ""};
}

Result<ResolvedRoot> resolve_in(const Settings& s, const Catalogue& c, const std::string& name, const ResolveOptions& options) {
  if (auto why = invalid_name(name)) return fail(Errc::invalid_argument, str("cannot resolve ", quote(name), ": ", *why));
  const Entry* e = c.find_any(name);
  if (!e) return fail(c.not_found(name, catalogue_path(s), "names are case-sensitive"));
  const std::int64_t now = options.now ? options.now : sys::now_unix();
  const Version& v = e->current;
  const std::string label = e->name == name ? quote(name) : str(quote(name), " (alias of ", quote(e->name), ")");
  auto ev = evaluate(s, e->name, e->aliases, v, now);
  if (!ev.usable) return fail(Errc::mismatch, str(label, " is not usable: ", ev.reason));
  // A sealed image has no per-file check: the kernel checks every block it reads (dm-verity), or
  // the launch checks the file's SHA-256 when it mounts it (docs/sealed.md). A directory image
  // whose site relies on the periodic full verification skips it where nobody but root can
  // change the tree (Settings::launch_check).
  if (options.fast && !v.sealed && !(s.launch_check == Settings::LaunchCheck::periodic && only_root_can_change(v.root))) {
    // The stat record is trusted by the fast check, so it must be as protected as the root.
    const std::string manifest_path = v.image + "/manifest";
    const std::string stat_path = manifest::stat_path_for(manifest_path);
    auto refused = [&](const std::string& why) {
      return fail(Errc::mismatch, str(label, " is not usable: the metadata check failed: ", why, "; run 'chrootctl verify ", e->name, "'"));
    };
    if (v.image != v.root.substr(0, v.root.rfind('/'))) {
      if (auto d = check_trusted_dir(v.image, "image directory"); !d) return refused(d.error().what());
    }
    auto st = sys::lstat_path(stat_path);
    if (!st) return refused(st.error().what());
    if (auto t = check_trusted_file(*st, stat_path); !t) return refused(t.error().what());
    auto record = manifest::load_stat(stat_path);
    if (!record) return refused(record.error().what());
    if (record->manifest_digest != v.digest)
      return refused(str(stat_path, " belongs to tree digest ", record->manifest_digest, ", not the recorded ", v.digest));
    auto d = manifest::check_fast(v.root, *record);
    if (!d) return refused(d.error().what());
    if (d->differs_beyond_mtime()) return refused(first_lines(manifest::render_text(*d), 5));
  }
  return ResolvedRoot{name, e->name, v.root, v.image, v, e->seccomp};
}

Result<ResolvedRoot> resolve(const Settings& s, const std::string& name, const ResolveOptions& options) {
  if (auto why = invalid_name(name)) return fail(Errc::invalid_argument, str("cannot resolve ", quote(name), ": ", *why));
  auto c = TRY(load_trusted(s));
  return resolve_in(s, c, name, options);
}

bool is_refusal(const Error& e) { return e.code() == Errc::mismatch || e.code() == Errc::not_found || e.code() == Errc::invalid_argument; }

Result<std::string> image_dir(const Settings& s, const std::string& name) {
  auto c = TRY(load(s));
  const Entry* e = c.find_any(name);
  if (!e) return fail(Errc::not_found, str(quote(name), " is not in the catalogue ", catalogue_path(s)));
  return e->current.image;
}

}  // namespace chrootctl::catalogue
