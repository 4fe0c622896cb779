// verify [--fast]: re-check images against their manifests and record the outcome.
#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <thread>

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

// Built by failed() and passed(), which name every member.
struct Outcome {
  bool passed = false;
  std::string failure;                   // recorded when !passed
  std::optional<RootIdentity> identity;  // the root's identity after a full pass
  std::optional<std::string> signer;     // the signer after a full pass ("" for none)
  std::string manifest_sha256;           // a sealed image's manifest bytes after a full pass
};

Outcome failed(std::string why) { return Outcome{false, std::move(why), std::nullopt, std::nullopt, {}}; }
Outcome passed(std::optional<RootIdentity> identity = std::nullopt, std::optional<std::string> signer = std::nullopt) {
  return Outcome{true, "", identity, std::move(signer), {}};
}

// The signature, judged as resolve judges it; nullopt when it is acceptable (`signer` is then
// the key id of a valid signature, or empty).
std::optional<std::string> signature_problem(const Settings& s, const Version& v, std::string& signer) {
  const auto sig = judge_image(s, v.image, v.recipe, v.build_id, v.statement_digest(), v.sealed, !v.signer.empty());
  signer = sig.signer;
  if (sig.acceptable) return std::nullopt;
  return str("signature: ", sig.reason);
}

// Why IMAGE/manifest, parsed to `m` with tree digest `digest`, is not the one recorded for `v`;
// nullopt when it is.
std::optional<std::string> manifest_problem(const Version& v, const manifest::Manifest& m, const std::string& digest) {
  if (digest != v.digest) return str(v.image, "/manifest has tree digest ", digest, ", not the ", v.digest, " recorded in the catalogue");
  if (m.sealed != v.sealed)
    return str(v.image, "/manifest does not describe the ", v.sealed ? "sealed image file" : "directory", " recorded in the catalogue");
  if (m.stripped_from != v.signed_digest)
    return str(v.image, "/manifest says it was stripped from ", m.stripped_from.empty() ? std::string("nothing") : m.stripped_from, ", not the ",
               v.signed_digest.empty() ? std::string("nothing") : v.signed_digest, " recorded in the catalogue");
  return std::nullopt;
}

// A full verification of a sealed image. Its file is read once, for its SHA-256 and its hash
// tree (check_sealed_contents), on threads of its own while the manifest and the signature are
// checked here; its outcome counts only after theirs, as if it had been checked after them.
// The manifest is parsed and checked in full unless its bytes are the very ones that passed
// those checks for this version before (Version::manifest_sha256): on a big image, parsing it
// would cost more than reading the image file.
Outcome full_sealed(const Settings& s, VerifyReport& r, const RootIdentity& id, const std::vector<std::string>& names, const VerifyOptions& options) {
  const Version& v = r.version;
  Status contents;
  std::jthread contents_check([&] { contents = check_sealed_contents(v.root, *v.sealed); });
  auto refuse = [&](std::string why) {
    r.error = std::move(why);
    return failed(r.error);
  };
  if (auto d = check_trusted_dir(v.image, "image directory"); !d) return refuse(d.error().what());
  auto file = read_trusted_manifest(v.image);
  if (!file) return refuse(file.error().what());
  std::optional<manifest::Manifest> parsed;  // only when its bytes are new
  if (!v.manifest_sha256.empty() && file->sha256 == v.manifest_sha256) {
    auto end = manifest::parse_end_line(file->text, file->path);
    if (!end) return refuse(end.error().what());
    r.entries = end->entries;
  } else {
    std::string digest;
    auto m = manifest::parse(file->text, file->path, &digest);
    if (!m) return refuse(m.error().what());
    r.entries = m->entries.size();
    if (auto why = manifest_problem(v, *m, digest)) return refuse(*why);
    parsed = std::move(*m);
  }
  std::string signer;
  if (auto why = signature_problem(s, v, signer)) return refuse(*why);
  contents_check.join();
  if (!contents) return refuse(contents.error().what());
  // New manifest bytes are checked against the filesystem in the file (the same file bytes
  // and manifest bytes that passed before need not be).
  if (parsed && options.sealed_tree) {
    if (auto t = options.sealed_tree(v.root, *v.sealed, *parsed); !t) return refuse(t.error().what());
  }
  // Opened for a readable name, like a tree: a sealed image holds nothing privileged on the
  // host, and that it is sealed is all access.cpp looks at.
  manifest::Manifest sealed_only;
  sealed_only.sealed = v.sealed;
  auto access = repair_access(s, names, v.image, v.root, sealed_only);
  if (!access) return refuse(access.error().what());
  r.notes.insert(r.notes.end(), access->notes.begin(), access->notes.end());
  if (!(id == v.identity))
    r.notes.push_back(str("the image file is a different file from the one recorded (was ", describe(v.identity), ", now ", describe(id),
                          "); its contents match, so the new one is recorded"));
  Outcome o = passed(id, signer);
  o.manifest_sha256 = file->sha256;
  return o;
}

// A full verification: is the root still trusted, is the manifest still the one recorded, and
// does every entry of the tree match it?
Outcome full(const Settings& s, VerifyReport& r, const VerifyOptions& options, const std::vector<std::string>& names) {
  const Version& v = r.version;
  auto id = check_version_root(v);
  if (!id) {
    r.error = id.error().what();
    return failed(r.error);
  }
  if (v.sealed) return full_sealed(s, r, *id, names, options);
  if (auto d = check_trusted_dir(v.image, "image directory"); !d) {
    r.error = d.error().what();
    return failed(r.error);
  }
  std::string digest;
  auto m = load_trusted_manifest(v.image, &digest);
  if (!m) {
    r.error = m.error().what();
    return failed(r.error);
  }
  r.entries = m->entries.size();
  if (auto why = manifest_problem(v, *m, digest)) {
    r.error = *why;
    return failed(r.error);
  }
  std::string signer;
  if (auto why = signature_problem(s, v, signer)) {
    r.error = *why;
    return failed(r.error);
  }
  manifest::CreateOptions copts;
  copts.threads = options.threads;
  copts.progress = options.progress;
  manifest::Manifest fresh;
  auto d = manifest::check(v.root, *m, copts, &fresh);
  if (!d) {
    r.error = d.error().what();
    return failed(r.error);
  }
  r.differences = std::move(*d);
  if (r.differences.differs_beyond_mtime()) return failed(summarize(r.differences, 3));
  if (auto w = write_stat_record(v.image, fresh, v.digest); !w) r.notes.push_back(w.error().what());
  // Who may reach the tree (access.hpp): repaired where it is the store's to repair.
  auto access = repair_access(s, names, v.image, v.root, *m);
  if (!access) {
    r.error = access.error().what();
    return failed(r.error);
  }
  r.notes.insert(r.notes.end(), access->notes.begin(), access->notes.end());
  if (access->problem) {
    r.error = *access->problem;
    return failed(r.error);
  }
  if (!(*id == v.identity))
    r.notes.push_back(str("the root is a different directory from the one recorded (was ", describe(v.identity), ", now ", describe(*id),
                          "); its contents match, so the new one is recorded"));
  return passed(*id, signer);
}

// The metadata check against the stat record, which is trusted only if nobody but root can
// have written it.
Outcome fast(const Settings& s, VerifyReport& r) {
  const Version& v = r.version;
  auto id = check_version_root(v);
  if (!id) {
    r.error = id.error().what();
    return failed(r.error);
  }
  if (!(*id == v.identity)) {
    r.error = str("its root ", quote(v.root), " is not the ", v.sealed ? "image file" : "directory", " that was verified (recorded ",
                  describe(v.identity), ", now ", describe(*id), ")");
    return failed(r.error);
  }
  if (v.sealed) {
    // One file with an unchanged identity: a write would have changed its ctime, and so the
    // identity. (No stat record: there is no tree on this host's disk.)
    if (s.require_signature || !v.signer.empty()) {
      std::string signer;
      if (auto why = signature_problem(s, v, signer)) {
        r.error = *why;
        return failed(r.error);
      }
    }
    auto st = sys::lstat_path(v.root);
    if (st && st->st_ctim.tv_sec > v.verified_at) {
      r.error = str("the image file ", v.root, " was changed (ctime ", format_time(st->st_ctim.tv_sec), ") after its last verification");
      return failed(r.error);
    }
    return passed();
  }
  if (auto d = check_trusted_dir(v.image, "image directory"); !d) {
    r.error = d.error().what();
    return failed(r.error);
  }
  const std::string stat_path = manifest::stat_path_for(v.image + "/manifest");
  auto st = sys::lstat_path(stat_path);
  if (st) {
    if (auto t = check_trusted_file(*st, stat_path); !t) st = fail(t.error());
  }
  if (!st) {
    r.error = st.error().what();
    return failed(r.error);
  }
  auto record = manifest::load_stat(stat_path);
  if (!record) {
    r.error = record.error().what();
    return failed(r.error);
  }
  if (record->manifest_digest != v.digest) {
    r.error = str(stat_path, " belongs to tree digest ", record->manifest_digest, ", not the recorded ", v.digest);
    return failed(r.error);
  }
  if (s.require_signature || !v.signer.empty()) {
    std::string signer;
    if (auto why = signature_problem(s, v, signer)) {
      r.error = *why;
      return failed(r.error);
    }
  }
  r.entries = record->items.size();
  auto d = manifest::check_fast(v.root, *record);
  if (!d) {
    r.error = d.error().what();
    return failed(r.error);
  }
  r.differences = std::move(*d);
  if (r.differences.differs_beyond_mtime()) return failed(str("metadata check: ", summarize(r.differences, 3)));
  return passed();
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
            // The manifest was checked against this version's #sealed line and signed digest:
            // another version of the same directory (re-sealed, re-added) is not vouched for.
            if (!o.manifest_sha256.empty() && ver.sealed == r.version.sealed && ver.signed_digest == r.version.signed_digest)
              ver.manifest_sha256 = o.manifest_sha256;
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
