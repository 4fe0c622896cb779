// The build sequence, in one place: inputs and cache, staging, base, packages, files, layout,
// run, strip, manifest, commit. Each step's work lives in its own file.
#include "chrootctl/builder/build.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "build_internal.hpp"
#include "chrootctl/builder/copy.hpp"
#include "chrootctl/builder/extract.hpp"
#include "chrootctl/builder/paths.hpp"
#include "chrootctl/builder/sources.hpp"
#include "chrootctl/builder/strip.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/toml.hpp"
#include "chrootctl/common/tree_writer.hpp"
#include "chrootctl/verity/verity.hpp"
#include "process.hpp"
#include "store_internal.hpp"

namespace chrootctl::builder {

std::string input_key(const std::vector<LockInput>& inputs) {
  Sha256 sha;
  for (const auto& i : inputs) sha.update(str(escape_bytes(i.kind), " ", escape_bytes(i.name), " ", escape_bytes(i.digest), "\n"));
  return sha.hex_final();
}

namespace detail {

void BuildContext::log(const std::string& line) const {
  if (log_fd >= 0) (void)sys::write_all(log_fd, line + "\n");
}

void BuildContext::step(const std::string& what) const {
  const auto now = sys::monotonic_ns();
  std::string name = what.substr(0, what.find_first_of(": "));
  if (step_starts.empty() || step_starts.back().first != name) step_starts.emplace_back(name, now);
  const double t = static_cast<double>(now - started_ns) / 1e9;
  char stamp[32];
  (void)std::snprintf(stamp, sizeof stamp, "[%7.2fs] ", t);
  log(str(stamp, what));
  if (options.status) options.status(what);
}

void BuildContext::progress(const std::string& what) const {
  if (options.progress) options.progress(what);
}

Error BuildContext::at_base(const std::string& message, Errc code) const {
  const SourcePos pos = std::visit([](const auto& b) { return b.pos; }, recipe.base);
  Error e = recipe_error(recipe, pos, message);
  return Error(code, e.message());
}

namespace {

Result<std::string> file_sha256(const std::string& path) {
  auto h = TRY(sha256_file(path));
  return h.hex;
}

std::int64_t parse_release_date(const std::string& text) {
  // "Date: Sat, 10 May 2025 09:09:24 UTC"
  for (const auto& line : split(text, '\n')) {
    if (!line.starts_with("Date:")) continue;
    struct tm tm {};
    const std::string v(trim(std::string_view(line).substr(5)));
    if (::strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S", &tm) == nullptr) return 0;
    return static_cast<std::int64_t>(::timegm(&tm));
  }
  return 0;
}

// The host's apt sources as (file name, text), in apt's order.
std::vector<std::pair<std::string, std::string>> host_apt_sources() {
  std::vector<std::pair<std::string, std::string>> out;
  if (auto t = sys::read_file("/etc/apt/sources.list")) out.emplace_back("sources.list", *t);
  if (auto d = sys::open_dir("/etc/apt/sources.list.d")) {
    if (auto entries = sys::read_dir(d->get())) {
      std::vector<std::string> names;
      for (const auto& e : *entries)
        if (e.name.ends_with(".list") || e.name.ends_with(".sources")) names.push_back(e.name);
      std::sort(names.begin(), names.end());
      for (const auto& n : names)
        if (auto t = sys::read_file("/etc/apt/sources.list.d/" + n)) out.emplace_back(n, *t);
    }
  }
  return out;
}

std::string tool_version(const std::string& tool) {
  auto v = capture({"dpkg-query", "-W", "-f=${Version}", tool});
  if (v && !v->empty()) return *v;
  auto w = capture({tool, "--version"});
  if (w && !w->empty()) return std::string(trim(split(*w, '\n')[0]));
  return "unknown";
}

Status gather_debootstrap(BuildContext& c, const DebootstrapBase& b) {
  const bool have_mm = !find_in_path("mmdebstrap").empty();
  const bool have_db = !find_in_path("debootstrap").empty();
  if (b.tool == DebootstrapBase::Tool::mmdebstrap && (have_mm || !b.fallback || !have_db)) {
    c.plan.tool = "mmdebstrap";
  } else {
    c.plan.tool = "debootstrap";
  }
  if (find_in_path(c.plan.tool).empty())
    return fail(c.at_base(str(c.plan.tool, " is not installed on this host (apt-get install ", c.plan.tool, ")"), Errc::not_found));
  c.inputs.push_back({"tool", c.plan.tool, tool_version(c.plan.tool)});
  if (!b.mirror.empty()) {
    c.plan.mirror = b.mirror;
    c.inputs.push_back({"mirror", b.mirror, "url"});
  } else {
    c.plan.apt_sources = apt_sources_for_suite(host_apt_sources(), b.suite);
    if (c.plan.apt_sources.empty())
      return fail(c.at_base(
          str("the host's apt sources have no entry for suite ", quote(b.suite), "; name a mirror in the recipe (mirror = \"http://HOST/debian\")"),
          Errc::not_found));
    c.inputs.push_back({"apt-sources", "host", "sha256:" + Sha256::hex(c.plan.apt_sources)});
    c.plan.mirror = first_mirror_for_suite(c.plan.apt_sources, b.suite);
  }
  // The archive's state as the host last saw it (apt-get update): a new Release file on the
  // host means new package versions, so a new build.
  if (auto lists = sys::open_dir("/var/lib/apt/lists")) {
    if (auto entries = sys::read_dir(lists->get())) {
      std::vector<std::string> names;
      for (const auto& e : *entries) {
        for (const auto& s : {b.suite, b.suite + "-updates", b.suite + "-security"})
          if (e.name.ends_with("_dists_" + s + "_InRelease")) names.push_back(e.name);
      }
      std::sort(names.begin(), names.end());
      for (const auto& n : names) {
        const std::string p = "/var/lib/apt/lists/" + n;
        auto text = sys::read_file(p);
        if (!text) continue;
        c.inputs.push_back({"apt-release", p, "sha256:" + Sha256::hex(*text)});
        if (n.ends_with("_dists_" + b.suite + "_InRelease") && !c.plan.sde_default)
          if (auto d = parse_release_date(*text); d > 0) {
            c.plan.sde_default = d;
            c.plan.sde_origin = "the Date of " + p;
          }
      }
    }
  }
  return {};
}

Status gather_dnf(BuildContext& c, const DnfBase& b) {
  if (find_in_path("dnf").empty()) return fail(c.at_base("dnf is not installed on this host (apt-get install dnf)", Errc::not_found));
  c.inputs.push_back({"tool", "dnf", tool_version("dnf")});
  for (const auto& [id, url] : b.repos) {
    // A local repository's state is its repomd.xml; remote ones are pinned by their URL only.
    if (url.starts_with("file://")) {
      const std::string repomd = url.substr(7) + (url.ends_with("/") ? "" : "/") + "repodata/repomd.xml";
      auto h = file_sha256(repomd);
      if (!h) return fail(c.at_base(str("repo ", quote(id), ": ", h.error().what()), Errc::not_found));
      c.inputs.push_back({"dnf-repo", str(id, " ", url), "sha256:" + *h});
    } else {
      c.inputs.push_back({"dnf-repo", str(id, " ", url), "url"});
    }
  }
  if (!b.reposdir.empty()) {
    auto d = sys::open_dir(b.reposdir);
    if (!d) return fail(c.at_base(str("reposdir ", quote(b.reposdir), ": ", d.error().what()), Errc::not_found));
    std::vector<std::string> names;
    for (const auto& e : TRY(sys::read_dir(d->get())))
      if (e.name.ends_with(".repo")) names.push_back(e.name);
    std::sort(names.begin(), names.end());
    if (names.empty()) return fail(c.at_base(str("reposdir ", quote(b.reposdir), " has no .repo files"), Errc::not_found));
    for (const auto& n : names) {
      const std::string sha256 = TRY(file_sha256(b.reposdir + "/" + n));
      c.inputs.push_back({"dnf-repofile", b.reposdir + "/" + n, "sha256:" + sha256});
    }
  }
  for (const auto& k : b.gpgkeys) {
    std::string hash = "url";
    if (k.find("://") == std::string::npos) {
      const std::string sha256 = TRY(file_sha256(k));
      hash = "sha256:" + sha256;
    }
    c.inputs.push_back({"gpgkey", k, hash});
  }
  return {};
}

Status gather_inputs(BuildContext& c) {
  const Recipe& r = c.recipe;
  c.inputs.push_back({"builder", "chrootctl-builder", std::to_string(k_builder_version)});
  c.inputs.push_back({"recipe", r.display_name, "sha256:" + Sha256::hex(r.text)});
  if (c.options.source_date_epoch) c.inputs.push_back({"source-date-epoch", "environment", std::to_string(*c.options.source_date_epoch)});
  if (const auto* a = std::get_if<ArchiveBase>(&r.base)) {
    auto st = sys::stat_path(a->path);
    if (!st) {
      return fail(c.at_base(str("base archive ", quote(a->path),
                                " does not exist. This recipe builds from a rootfs tarball that "
                                "your site provides; make it as recipes/README.md describes, put it at that path and pin its "
                                "sha256 in the recipe"),
                            Errc::not_found));
    }
    if (a->sha256 == std::string(64, '0'))
      return fail(c.at_base(str("base archive ", quote(a->path), " is not pinned yet: set sha256 to the output of 'sha256sum ", a->path, "'"),
                            Errc::invalid_argument));
    c.inputs.push_back({"base.archive", a->path, "sha256:" + a->sha256});
  } else if (const auto* o = std::get_if<OciBase>(&r.base)) {
    if (!sys::stat_path(o->path)) return fail(c.at_base(str("OCI tarball ", quote(o->path), " does not exist"), Errc::not_found));
    c.inputs.push_back({"base.oci", o->path + (o->image.empty() ? "" : " " + o->image), "sha256:" + o->sha256});
  } else if (const auto* d = std::get_if<DirectoryBase>(&r.base)) {
    auto st = sys::stat_path(d->path);
    if (!st || !S_ISDIR(st->st_mode)) return fail(c.at_base(str("base directory ", quote(d->path), " does not exist"), Errc::not_found));
    c.progress(str("hashing the base directory ", d->path));
    auto m = TRY(manifest::create(d->path, {c.options.threads, true, {}}));
    std::int64_t newest = 0;
    for (const auto& e : m.entries) newest = std::max(newest, e.mtime_sec);
    c.plan.sde_default = newest;
    c.plan.sde_origin = "the newest mtime in " + d->path;
    c.inputs.push_back({"base.directory", d->path, "sha256:" + manifest::digest(m)});
  } else if (const auto* i = std::get_if<ImageBase>(&r.base)) {
    auto dir = c.options.resolve_image ? c.options.resolve_image(i->name) : store_latest(c.options.store, i->name);
    if (!dir) return fail(c.at_base(str("base image ", quote(i->name), ": ", dir.error().what()), Errc::not_found));
    c.plan.image_dir = *dir;
    const std::string digest = TRY(manifest::read_digest(*dir + "/manifest"));
    c.inputs.push_back({"base.image", str(i->name, " ", dir->substr(dir->find_last_of('/') + 1)), "sha256:" + digest});
    if (auto sde = lock_value(*dir + "/lock", "source_date_epoch")) {
      if (auto v = parse_u64(*sde)) {
        c.plan.sde_default = static_cast<std::int64_t>(*v);
        c.plan.sde_origin = "the base image's";
      }
    }
  } else if (const auto* b = std::get_if<DebootstrapBase>(&r.base)) {
    TRY(gather_debootstrap(c, *b));
  } else if (const auto* n = std::get_if<DnfBase>(&r.base)) {
    TRY(gather_dnf(c, *n));
  }
  std::int64_t newest_file = 0;
  for (const auto& f : r.files) {
    if (!f.src) continue;
    auto st = sys::stat_path(*f.src);
    if (!st || !S_ISREG(st->st_mode)) {
      Error e = recipe_error(r, f.pos, str("[[files]] source ", quote(*f.src), st ? " is not a regular file" : " does not exist"));
      return fail(Error(Errc::not_found, e.message()));
    }
    newest_file = std::max<std::int64_t>(newest_file, st->st_mtim.tv_sec);
    const std::string sha256 = TRY(file_sha256(*f.src));
    c.inputs.push_back({"file", *f.src, "sha256:" + sha256});
  }
  if (std::holds_alternative<ScratchBase>(r.base) && newest_file > 0) {
    c.plan.sde_default = newest_file;
    c.plan.sde_origin = "the newest mtime of the [[files]] sources";
  }
  if (!r.packages.install.empty() || !r.packages.remove.empty() || !r.run.commands.empty())
    c.inputs.push_back({"tool", "chrootctl-launcher", "build-command-1"});
  if (c.sealed) {
    // The image file is made by these tools: another version may lay it out differently.
    if (find_in_path("mkfs.erofs").empty())
      return fail(Errc::not_found, "a sealed build needs mkfs.erofs, which is not installed on this host (apt-get install erofs-utils)");
    c.inputs.push_back({"output", "sealed", "erofs"});
    c.inputs.push_back({"tool", "erofs-utils", tool_version("erofs-utils")});
    c.inputs.push_back({"tool", "libcryptsetup", verity::library_version()});
  }
  return {};
}

std::string lock_text(const BuildContext& c, const BuildResult& res) {
  std::string t = "# chrootctl build lock: every input of this build, with its digest (docs/recipes.md)\n";
  t += "format = 1\n";
  t += str("name = ", toml_quote(c.recipe.name), "\n");
  t += str("build_id = ", toml_quote(res.build_id), "\n");
  t += str("input_key = ", toml_quote("sha256:" + res.input_key), "\n");
  t += str("tree_digest = ", toml_quote("sha256:" + res.tree_digest), "\n");
  if (res.sealed) {
    t += str("sealed_sha256 = ", toml_quote("sha256:" + res.sealed->sha256), "\n");
    t += str("sealed_root_hash = ", toml_quote("sha256:" + res.sealed->root_hash), "\n");
  }
  t += str("source_date_epoch = ", res.source_date_epoch, "\n");
  t += str("source_date_epoch_from = ", toml_quote(c.sde_origin), "\n");
  t += str("base = ", toml_quote(base_kind(c.recipe.base)), "\n");
  for (const auto& i : c.inputs) {
    t += "\n[[input]]\n";
    t += str("kind = ", toml_quote(i.kind), "\n");
    t += str("name = ", toml_quote(i.name), "\n");
    t += str("digest = ", toml_quote(i.digest), "\n");
  }
  for (const auto& p : c.packages) {
    t += "\n[[package]]\n";
    t += str("name = ", toml_quote(p.name), "\n");
    t += str("version = ", toml_quote(p.version), "\n");
    if (!p.arch.empty()) t += str("arch = ", toml_quote(p.arch), "\n");
  }
  return t;
}

Status write_in(int dirfd, const std::string& name, std::string_view data, mode_t mode) {
  auto fd = TRY(sys::open_at(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode));
  TRY(sys::write_all(fd.get(), data));
  if (::fchmod(fd.get(), mode) != 0) return fail_errno(str("fchmod(", quote(name), ")"), errno);
  return {};
}

}  // namespace

}  // namespace detail

Result<BuildResult> build(const Recipe& recipe, const BuildOptions& options) {
  using namespace detail;
  BuildContext c{recipe, options, 0, {}, {}, {}, {}, {}, -1, {}, std::nullopt, "none (0)"};
  c.started_ns = sys::monotonic_ns();
  c.sealed = options.output.value_or(recipe.output.format) == Output::Format::sealed;
  if (!valid_recipe_name(recipe.name)) return fail(Errc::invalid_argument, str("bad recipe name ", quote(recipe.name)));
  TRY(store::prepare(options.store));
  auto build_lock = TRY(lock_recipe(options.store, recipe.name, options.status));

  TRY(gather_inputs(c));
  BuildResult res;
  res.name = recipe.name;
  res.input_key = input_key(c.inputs);

  if (!options.rebuild) {
    if (auto id = TRY(find_cached(options.store, recipe.name, res.input_key))) {
      res.cached = true;
      res.build_id = *id;
      res.build_dir = str(options.store, "/", recipe.name, "/", *id);
      res.tree_digest = TRY(manifest::read_digest(res.build_dir + "/manifest"));
      res.sealed = TRY(manifest::read_sealed(res.build_dir + "/manifest"));
      res.root = res.build_dir + (res.sealed ? str("/", manifest::k_sealed_file) : std::string("/root"));
      if (auto sde = lock_value(res.build_dir + "/lock", "source_date_epoch"))
        res.source_date_epoch = static_cast<std::int64_t>(parse_u64(*sde).value_or(0));
      TRY(set_latest(options.store, recipe.name, *id));
      res.seconds = static_cast<double>(sys::monotonic_ns() - c.started_ns) / 1e9;
      return res;
    }
  }

  std::vector<std::string> problems;
  if (auto n = store::clean_staging(options.store, &problems); n && *n > 0 && options.status)
    options.status(str("removed ", *n, " stale staging ", *n == 1 ? "directory" : "directories"));
  auto staging = TRY(store::create_staging(options.store, recipe.name));
  auto log = TRY(sys::open_at(staging.fd.get(), "build.log", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_APPEND, 0644));
  c.log_fd = log.get();
  c.staging = staging.path;
  c.root = staging.path + "/root";
  for (const auto& p : problems) c.log("warning: " + p);
  c.log(str("chrootctl build ", recipe.name, " from ", recipe.display_name));
  c.log(str("input key sha256:", res.input_key));
  for (const auto& i : c.inputs) c.log(str("input ", i.kind, " ", escape_bytes(i.name), " ", i.digest));

  if (options.source_date_epoch) {
    c.sde = *options.source_date_epoch;
    c.sde_origin = "environment (SOURCE_DATE_EPOCH)";
  } else if (recipe.source_date_epoch) {
    c.sde = *recipe.source_date_epoch;
    c.sde_origin = "recipe";
  } else if (c.plan.sde_default) {
    c.sde = *c.plan.sde_default;
    c.sde_origin = c.plan.sde_origin;
  }

  auto run = [&]() -> Status {
    TRY(run_base(c));
    TRY(run_packages(c));
    TRY(run_files_and_layout(c));
    TRY(run_commands(c));
    c.packages = TRY(installed_packages(c));

    c.step(str("strip: ", setuid_policy_name(recipe.strip.setuid), " setuid, ", recipe.strip.remove.size(), " globs; clamping mtimes to ",
               c.sde.value_or(0)));
    auto report = TRY(strip_tree(c.root, recipe.strip, c.sde.value_or(0)));
    c.log(report.log_text());
    res.strip_actions = report.actions.size();
    TRY(write_in(staging.fd.get(), "strip-report", report.json(recipe.strip), 0644));

    c.step("manifest: hashing the tree");
    manifest::CreateOptions mo;
    mo.threads = options.threads;
    mo.progress = [&](const manifest::Progress& p) { c.progress(str("manifest: ", p.entries, " entries, ", human_size(p.bytes_hashed))); };
    auto m = TRY(manifest::create(c.root, mo));
    auto rendered = manifest::render_with_stat(m);
    res.tree_digest = rendered.manifest.digest;
    res.entries = m.entries.size();
    res.source_date_epoch = c.sde.value_or(0);
    res.build_id = str(res.input_key.substr(0, 12), "-", res.tree_digest.substr(0, 8));
    if (c.sealed) {
      // The stat record describes a tree on this host's disk; a sealed build keeps no tree.
      c.step("seal: EROFS image file and dm-verity hash tree");
      m.sealed = TRY(seal_tree(c, res.tree_digest));
      res.sealed = m.sealed;
      rendered.manifest = manifest::render(m);
      if (rendered.manifest.digest != res.tree_digest) return fail(Errc::internal, "the tree digest changed when the image was sealed");
    }
    TRY(write_in(staging.fd.get(), "manifest", rendered.manifest.text, 0644));
    if (!c.sealed) TRY(write_in(staging.fd.get(), "manifest.stat", rendered.stat, 0644));
    TRY(write_in(staging.fd.get(), "recipe.toml", recipe.text, 0644));
    TRY(write_in(staging.fd.get(), "lock", lock_text(c, res), 0644));
    c.step(str("commit: ", m.entries.size(), " entries, tree sha256:", res.tree_digest, ", build id ", res.build_id));
    return {};
  };
  if (auto r = run(); !r) {
    c.log("error: " + r.error().what());
    // The staging directory goes away with the failed build; its log is kept for the admin.
    if (auto text = sys::read_file(staging.path + "/build.log", 256u << 20)) {
      const std::string kept = str(options.store, "/.locks/", recipe.name, ".failed.log");
      if (write_file_atomic(kept, *text, 0600) && options.status) options.status(str("failed; the build log is kept in ", kept));
    }
    return fail(r.error());
  }

  bool existed = false;
  TRY(commit(staging, options.store, recipe.name, res.build_id, existed));
  const auto end = sys::monotonic_ns();
  for (std::size_t i = 0; i < c.step_starts.size(); ++i) {
    const auto stop = i + 1 < c.step_starts.size() ? c.step_starts[i + 1].second : end;
    const double secs = static_cast<double>(stop - c.step_starts[i].second) / 1e9;
    auto it = std::find_if(res.step_seconds.begin(), res.step_seconds.end(), [&](const auto& s) { return s.first == c.step_starts[i].first; });
    if (it == res.step_seconds.end()) res.step_seconds.emplace_back(c.step_starts[i].first, secs);
    else it->second += secs;
  }
  res.build_dir = str(options.store, "/", recipe.name, "/", res.build_id);
  res.root = res.build_dir + (res.sealed ? str("/", manifest::k_sealed_file) : std::string("/root"));
  if (existed) {
    // Same inputs and the same tree as an image already in the store: keep that one (it may
    // be registered and in use) and drop this build.
    const auto digest = TRY(manifest::read_digest(res.build_dir + "/manifest"));
    if (digest != res.tree_digest) return fail(Errc::exists, str(res.build_dir, " exists with tree digest ", digest, ", not ", res.tree_digest));
    TRY(set_latest(options.store, recipe.name, res.build_id));
  }
  res.seconds = static_cast<double>(sys::monotonic_ns() - c.started_ns) / 1e9;
  return res;
}

}  // namespace chrootctl::builder
