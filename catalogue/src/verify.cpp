// verify [--fast]: re-check images against their manifests and record the outcome.
#include <sys/stat.h>

#include <algorithm>
#include <set>

#include "chrootctl/catalogue/access.hpp"
#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/catalogue/safety.hpp"
#include "chrootctl/catalogue/sealed.hpp"
#include "chrootctl/catalogue/sign.hpp"
#include "chrootctl/catalogue/store.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::catalogue {

namespace {

struct Outcome {
  bool passed = false;
  std::string failure;                   // recorded when !passed
  std::optional<RootIdentity> identity;  // the root's identity after a full pass
  std::optional<std::string> signer;     // the signer after a full pass ("" for none)
};

// The signature, judged as resolve judges it; nullopt when it is acceptable (`signer` is then
// the key id of a valid signature, or empty).
std::optional<std::string> signature_problem(const Settings& s, const Version& v, std::string& signer) {
  const auto sig = judge_image(s, v.image, v.recipe, v.build_id, v.statement_digest(), v.sealed, !v.signer.empty());
  signer = sig.signer;
  if (sig.acceptable) return std::nullopt;
  return str("signature: ", sig.reason);
}

// A full verification: is the root still trusted, is the manifest still the one recorded, and
// does every entry of the tree match it?
Outcome full(const Settings& s, VerifyReport& r, const VerifyOptions& options, const std::vector<std::string>& names) {
  const Version& v = r.version;
  auto id = check_version_root(v);
  if (!id) {
    r.error = id.error().what();
    return {false, r.error, {}, {}};
  }
  if (auto d = check_trusted_dir(v.image, "image directory"); !d) {
    r.error = d.error().what();
    return {false, r.error, {}, {}};
  }
  auto m = load_trusted_manifest(v.image);
  if (!m) {
    r.error = m.error().what();
    return {false, r.error, {}, {}};
  }
  r.entries = m->entries.size();
  const std::string digest = manifest::digest(*m);
  if (digest != v.digest) {
    r.error = str(v.image, "/manifest has tree digest ", digest, ", not the ", v.digest, " recorded in the catalogue");
    return {false, r.error, {}, {}};
  }
  if (m->sealed != v.sealed) {
    r.error = str(v.image, "/manifest does not describe the ", v.sealed ? "sealed image file" : "directory", " recorded in the catalogue");
    return {false, r.error, {}, {}};
  }
  if (m->stripped_from != v.signed_digest) {
    r.error = str(v.image, "/manifest says it was stripped from ", m->stripped_from.empty() ? std::string("nothing") : m->stripped_from, ", not the ",
                  v.signed_digest.empty() ? std::string("nothing") : v.signed_digest, " recorded in the catalogue");
    return {false, r.error, {}, {}};
  }
  std::string signer;
  if (auto why = signature_problem(s, v, signer)) {
    r.error = *why;
    return {false, r.error, {}, {}};
  }
  if (v.sealed) {
    // The whole file, read once: its SHA-256, and its hash tree against the root hash.
    if (auto c = check_sealed_contents(v.root, *v.sealed); !c) {
      r.error = c.error().what();
      return {false, r.error, {}, {}};
    }
    // Opened for a readable name, like a tree (it holds nothing privileged on the host).
    auto access = repair_access(s, names, v.image, v.root, *m);
    if (!access) {
      r.error = access.error().what();
      return {false, r.error, {}, {}};
    }
    r.notes.insert(r.notes.end(), access->notes.begin(), access->notes.end());
    if (!(*id == v.identity))
      r.notes.push_back(str("the image file is a different file from the one recorded (was ", describe(v.identity), ", now ", describe(*id),
                            "); its contents match, so the new one is recorded"));
    return {true, "", *id, signer};
  }
  manifest::CreateOptions copts;
  copts.threads = options.threads;
  copts.progress = options.progress;
  manifest::Manifest fresh;
  auto d = manifest::check(v.root, *m, copts, &fresh);
  if (!d) {
    r.error = d.error().what();
    return {false, r.error, {}, {}};
  }
  r.differences = std::move(*d);
  if (r.differences.differs_beyond_mtime()) return {false, summarize(r.differences, 3), {}, {}};
  if (auto w = write_stat_record(v.image, fresh, v.digest); !w) r.notes.push_back(w.error().what());
  // Who may reach the tree (access.hpp): repaired where it is the store's to repair.
  auto access = repair_access(s, names, v.image, v.root, *m);
  if (!access) {
    r.error = access.error().what();
    return {false, r.error, {}, {}};
  }
  r.notes.insert(r.notes.end(), access->notes.begin(), access->notes.end());
  if (access->problem) {
    r.error = *access->problem;
    return {false, r.error, {}, {}};
  }
  if (!(*id == v.identity))
    r.notes.push_back(str("the root is a different directory from the one recorded (was ", describe(v.identity), ", now ", describe(*id),
                          "); its contents match, so the new one is recorded"));
  return {true, "", *id, signer};
}

// The metadata check against the stat record, which is trusted only if nobody but root can
// have written it.
Outcome fast(const Settings& s, VerifyReport& r) {
  const Version& v = r.version;
  auto id = check_version_root(v);
  if (!id) {
    r.error = id.error().what();
    return {false, r.error, {}, {}};
  }
  if (!(*id == v.identity)) {
    r.error = str("its root ", quote(v.root), " is not the ", v.sealed ? "image file" : "directory", " that was verified (recorded ",
                  describe(v.identity), ", now ", describe(*id), ")");
    return {false, r.error, {}, {}};
  }
  if (v.sealed) {
    // One file with an unchanged identity: a write would have changed its ctime, and so the
    // identity. (No stat record: there is no tree on this host's disk.)
    if (s.require_signature || !v.signer.empty()) {
      std::string signer;
      if (auto why = signature_problem(s, v, signer)) {
        r.error = *why;
        return {false, r.error, {}, {}};
      }
    }
    auto st = sys::lstat_path(v.root);
    if (st && st->st_ctim.tv_sec > v.verified_at) {
      r.error = str("the image file ", v.root, " was changed (ctime ", format_time(st->st_ctim.tv_sec), ") after its last verification");
      return {false, r.error, {}, {}};
    }
    return {true, "", {}, {}};
  }
  if (auto d = check_trusted_dir(v.image, "image directory"); !d) {
    r.error = d.error().what();
    return {false, r.error, {}, {}};
  }
  const std::string stat_path = manifest::stat_path_for(v.image + "/manifest");
  auto st = sys::lstat_path(stat_path);
  if (st) {
    if (auto t = check_trusted_file(*st, stat_path); !t) st = fail(t.error());
  }
  if (!st) {
    r.error = st.error().what();
    return {false, r.error, {}, {}};
  }
  auto record = manifest::load_stat(stat_path);
  if (!record) {
    r.error = record.error().what();
    return {false, r.error, {}, {}};
  }
  if (record->manifest_digest != v.digest) {
    r.error = str(stat_path, " belongs to tree digest ", record->manifest_digest, ", not the recorded ", v.digest);
    return {false, r.error, {}, {}};
  }
  if (s.require_signature || !v.signer.empty()) {
    std::string signer;
    if (auto why = signature_problem(s, v, signer)) {
      r.error = *why;
      return {false, r.error, {}, {}};
    }
  }
  r.entries = record->items.size();
  auto d = manifest::check_fast(v.root, *record);
  if (!d) {
    r.error = d.error().what();
    return {false, r.error, {}, {}};
  }
  r.differences = std::move(*d);
  if (r.differences.differs_beyond_mtime()) return {false, str("metadata check: ", summarize(r.differences, 3)), {}, {}};
  return {true, "", {}, {}};
}

}  // namespace

Result<std::vector<VerifyReport>> verify(const Settings& s, const std::vector<std::string>& names, const VerifyOptions& options) {
  auto c = TRY(load(s));
  std::vector<const Entry*> targets;
  if (names.empty()) {
    for (const auto& e : c.entries) targets.push_back(&e);
  } else {
    for (const auto& n : names) {
      const Entry* e = c.find_any(n);
      if (!e) return fail(c.not_found(n, catalogue_path(s)));
      if (std::find(targets.begin(), targets.end(), e) == targets.end()) targets.push_back(e);
    }
  }

  std::vector<VerifyReport> reports;
  std::set<std::pair<std::string, std::string>> done;
  for (const Entry* e : targets) {
    VerifyReport r;
    r.name = e->name;
    r.version = e->current;
    r.fast = options.fast;
    if (!done.insert({r.version.image, r.version.root}).second) {
      // Another entry has the same image: verified once, recorded for both below.
      auto it = std::find_if(reports.begin(), reports.end(),
                             [&](const VerifyReport& x) { return x.version.image == r.version.image && x.version.root == r.version.root; });
      r.passed = it->passed;
      r.error = it->error;
      r.differences = it->differences;
      r.entries = it->entries;
      r.recorded = it->recorded;
      r.notes.push_back(str("same image as ", quote(it->name)));
      reports.push_back(std::move(r));
      continue;
    }
    const std::int64_t started = options.now ? options.now : sys::now_unix();
    // Every name the image goes by decides whether unprivileged launchers must reach it.
    std::vector<std::string> image_names;
    for (const auto& other : c.entries) {
      if (other.current.image != r.version.image || other.current.root != r.version.root) continue;
      image_names.push_back(other.name);
      image_names.insert(image_names.end(), other.aliases.begin(), other.aliases.end());
    }
    const Outcome o = options.fast ? fast(s, r) : full(s, r, options, image_names);
    r.passed = o.passed;
    // A fast check that passes says nothing new: only full passes and every failure are recorded.
    if (options.fast && o.passed) {
      reports.push_back(std::move(r));
      continue;
    }
    const std::int64_t finished = options.now ? options.now : sys::now_unix();
    auto recorded = edit(s, [&](Catalogue& cat) -> Status {
      for (auto& entry : cat.entries) {
        auto record = [&](Version& ver) {
          if (ver.image != r.version.image || ver.root != r.version.root || ver.digest != r.version.digest) return;
          if (o.passed) {
            // A failure recorded after this verification began may describe a change it missed.
            if (ver.failed_at > started) {
              r.notes.push_back(str("a failure was recorded at ", format_time(ver.failed_at), ", after this verification started; it stands"));
              return;
            }
            ver.verified_at = started;
            ver.failed_at = 0;
            ver.failure.clear();
            if (o.identity) ver.identity = *o.identity;
            if (o.signer) ver.signer = *o.signer;
          } else {
            ver.failed_at = finished;
            ver.failure = o.failure;
          }
          r.recorded = true;
        };
        record(entry.current);
        for (auto& p : entry.previous) record(p);
      }
      return {};
    });
    if (!recorded) return fail(std::move(recorded.error()).add_context(str("recording the verification of ", quote(r.name))));
    if (!r.recorded) r.notes.push_back("the catalogue changed during the verification (the image is no longer registered); nothing recorded");
    reports.push_back(std::move(r));
  }
  return reports;
}

}  // namespace chrootctl::catalogue
