// The build steps that make and shape the tree: base sources, [[files]], [layout], and the
// list of installed packages for the lock.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>

#include "build_internal.hpp"
#include "chrootctl/builder/copy.hpp"
#include "chrootctl/builder/extract.hpp"
#include "chrootctl/builder/sources.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/tree_writer.hpp"
#include "chrootctl/launcher/sealed.hpp"
#include "in_tree_internal.hpp"
#include "process.hpp"

namespace chrootctl::builder::detail {

namespace {

Status make_root(const BuildContext& c) {
  TRY(sys::mkdir_path(c.root, 0755));
  // Through a descriptor to the directory just made: the umask may have narrowed its mode.
  return sys::chmod_dir(c.root, 0755);
}

}  // namespace

// Runs a host tool for a step; its output goes to build.log and its last lines into the error.
Status run_tool(const BuildContext& c, const std::string& step, std::vector<std::string> argv, const std::string& home) {
  // The tool, and the package scripts it runs as root, run under the build-host policy.
  const auto plan = TRY(build_filter("build-host"));
  const auto filter = TRY(launcher::read_seccomp_program(plan.program, plan.policy, plan.digest));
  HostCommand cmd{contained(std::move(argv)), base_env(c.sde.value_or(0)), &filter};
  if (!home.empty())
    for (auto& [k, v] : cmd.env)
      if (k == "HOME") v = home;
  c.log(str("# system-call policy ", plan.policy, " sha256:", plan.digest));
  c.log("$ " + render_argv(cmd.argv));
  std::deque<std::string> tail;
  auto rc = TRY(run_host(cmd, c.log_fd, [&](const std::string& line) {
    tail.push_back(line);
    if (tail.size() > 15) tail.pop_front();
    c.progress(str(step, ": ", line));
  }));
  if (rc != 0) {
    std::string msg = str(step, " failed (exit status ", rc, "); its last output:");
    for (const auto& l : tail) msg += "\n  " + l;
    return fail(Errc::io, msg);
  }
  return {};
}

namespace {

Status base_debootstrap(BuildContext& c, const DebootstrapBase& b) {
  if (c.plan.tool == "mmdebstrap") {
    std::string mirror = b.mirror;
    if (mirror.empty()) {
      const std::string sources = c.staging + "/apt.sources";
      auto fd = TRY(sys::open_path(sources, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644));
      TRY(sys::write_all(fd.get(), c.plan.apt_sources));
      mirror = sources;
    }
    c.step(str("base: mmdebstrap ", b.variant, " ", b.suite));
    return run_tool(c, "mmdebstrap", mmdebstrap_argv(b, c.root, mirror));
  }
  if (b.tool == DebootstrapBase::Tool::mmdebstrap) c.log("mmdebstrap is not installed: falling back to debootstrap");
  if (c.plan.mirror.empty()) return fail(c.at_base("debootstrap needs a mirror: name one in the recipe", Errc::invalid_argument));
  // From the host's apt sources when the recipe names none; debootstrap takes no "--", so it
  // must not look like an option.
  if (c.plan.mirror.front() == '-' || c.plan.mirror.find("://") == std::string::npos)
    return fail(c.at_base(str("debootstrap mirror ", quote(c.plan.mirror), " is not a URL"), Errc::invalid_argument));
  c.step(str("base: debootstrap ", b.variant, " ", b.suite, " from ", c.plan.mirror));
  return run_tool(c, "debootstrap", debootstrap_argv(b, c.root, c.plan.mirror));
}

}  // namespace

Result<std::string> prepare_dnf(const BuildContext& c, const DnfBase& b, const std::string& reposdir) {
  const std::string dir = c.staging + "/dnf";
  TRY(sys::mkdir_p(dir + "/home", 0700));
  TRY(sys::mkdir_p(dir + "/repos.d", 0700));
  for (const auto& [name, text] :
       {std::pair<std::string, std::string>{dir + "/dnf.conf", dnf_config(b, reposdir.empty() ? dir + "/repos.d" : reposdir)},
        {dir + "/home/.rpmmacros", rpm_macros()}}) {
    auto fd = TRY(sys::open_path(name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644));
    TRY(sys::write_all(fd.get(), text));
  }
  return dir;
}

Status run_dnf(const BuildContext& c, const DnfBase& b, const std::string& reposdir, const std::string& verb,
               const std::vector<std::string>& packages) {
  const std::string dir = TRY(prepare_dnf(c, b, reposdir));
  auto argv = dnf_argv(b, c.root, dir + "/dnf.conf", verb, packages);
  if (b.releasever.empty()) argv.erase(std::remove(argv.begin(), argv.end(), "--releasever="), argv.end());
  TRY(run_tool(c, "dnf", std::move(argv), dir + "/home"));
  // dnf's cache is downloaded packages and repository metadata: not part of a job root.
  auto tree = TRY(TreeWriter::open(c.root));
  TRY(tree.remove_children_except("/var/cache/dnf", {}));
  c.log("emptied /var/cache/dnf");
  return {};
}

namespace {

Status base_dnf(BuildContext& c, const DnfBase& b) {
  TRY(make_root(c));
  c.step(str("base: dnf install ", join(b.packages, " "), " (releasever ", b.releasever, ")"));
  return run_dnf(c, b, b.reposdir, "install", b.packages);
}

void set_default_sde(BuildContext& c, std::int64_t newest, const std::string& origin) {
  if (c.sde) return;
  c.sde = newest;
  c.sde_origin = origin;
  c.log(str("SOURCE_DATE_EPOCH=", newest, " (", origin, ")"));
}

}  // namespace

Status run_base(BuildContext& c) {
  const Recipe& r = c.recipe;
  if (const auto* a = std::get_if<ArchiveBase>(&r.base)) {
    TRY(make_root(c));
    c.step(str("base: extracting ", a->path));
    auto tree = TRY(TreeWriter::open(c.root));
    auto stats = extract_archive(a->path, tree, a->sha256,
                                 [&](const ExtractStats& s) { c.progress(str("base: ", s.entries, " entries, ", human_size(s.bytes))); });
    if (!stats) return fail(c.at_base(stats.error().what(), stats.error().code()));
    TRY(tree.finish());
    c.log(str("extracted ", stats->entries, " entries, ", stats->bytes, " bytes"));
    if (stats->xattrs_skipped) c.log(str("skipped ", stats->xattrs_skipped, " trusted.* or system.* extended attributes"));
    set_default_sde(c, stats->newest_mtime, "the newest entry of the base archive");
    return {};
  }
  if (const auto* o = std::get_if<OciBase>(&r.base)) {
    TRY(make_root(c));
    c.step(str("base: OCI image ", o->path));
    const std::string scratch = c.staging + "/oci";
    TRY(sys::mkdir_p(scratch, 0700));
    auto tree = TRY(TreeWriter::open(c.root));
    auto res = extract_oci(o->path, o->sha256, o->image, scratch, tree,
                           [&](const ExtractStats& s) { c.progress(str("base: ", s.entries, " entries, ", human_size(s.bytes))); });
    if (!res) return fail(c.at_base(res.error().what(), res.error().code()));
    c.log(str("image ", res->image, ": ", res->layers.size(), " layers: ", join(res->layers, ", ")));
    TRY(sys::remove_tree(scratch));
    set_default_sde(c, res->newest_mtime, "the newest entry of the OCI image");
    return {};
  }
  if (const auto* d = std::get_if<DirectoryBase>(&r.base)) {
    TRY(make_root(c));
    c.step(str("base: copying ", d->path));
    auto tree = TRY(TreeWriter::open(c.root));
    auto st = TRY(copy_tree(d->path, tree, [&](const CopyStats& s) { c.progress(str("base: ", s.entries, " entries copied")); }));
    c.log(str("copied ", st.entries, " entries, ", st.bytes, " bytes"));
    return {};
  }
  if (const auto* i = std::get_if<ImageBase>(&r.base)) {
    TRY(make_root(c));
    c.step(str("base: image ", i->name, " (", c.plan.image_dir, ")"));
    auto tree = TRY(TreeWriter::open(c.root));
    // A sealed base image is read through its shared mount, as a launch would mount it
    // (docs/sealed.md); the copy is verified against its manifest below either way.
    std::optional<launcher::sealed::Share> mounted;
    std::string source = c.plan.image_dir + "/root";
    if (auto sealed = TRY(manifest::read_sealed(c.plan.image_dir + "/manifest"))) {
      mounted.emplace(TRY(mount_sealed_base(c.plan.image_dir, *sealed)));
      source = mounted->root();
    }
    TRY(copy_tree(source, tree, [&](const CopyStats& s) { c.progress(str("base: ", s.entries, " entries copied")); }));
    // The copy is what this build stands on, so the copy is what is verified against the base
    // image's manifest (a full check, every file hashed): nothing can change between check and use.
    c.step("base: verifying the copy against the base image's manifest");
    auto expected = TRY(manifest::load(c.plan.image_dir + "/manifest"));
    auto diff = TRY(manifest::check(c.root, expected, {c.options.threads, true, {}}));
    if (diff.differs_beyond_mtime()) {
      std::string text = manifest::render_text(diff);
      if (text.size() > 2000) text = text.substr(0, 2000) + "...\n";
      return fail(
          c.at_base(str("base image ", quote(i->name), " does not match its manifest ", c.plan.image_dir, "/manifest:\n", text), Errc::mismatch));
    }
    return {};
  }
  if (const auto* b = std::get_if<DebootstrapBase>(&r.base)) return base_debootstrap(c, *b);
  if (const auto* n = std::get_if<DnfBase>(&r.base)) return base_dnf(c, *n);
  c.step("base: empty tree (scratch)");
  return make_root(c);
}

Status run_files_and_layout(BuildContext& c) {
  const Recipe& r = c.recipe;
  if (r.files.empty() && r.layout.mkdir.empty() && r.layout.symlinks.empty()) return {};
  auto tree = TRY(TreeWriter::open(c.root));
  const std::int64_t when = c.sde.value_or(0);
  if (!r.files.empty()) c.step(str("files: ", r.files.size(), " files"));
  for (const auto& f : r.files) {
    auto step = [&]() -> Status {
      auto out = TRY(tree.create_file(f.dst));
      if (f.content) {
        TRY(sys::write_all(out.get(), *f.content));
      } else {
        // Hashed while copied and compared with the digest in the lock: what is in the tree is
        // exactly the input that was recorded.
        auto in = TRY(sys::open_path(*f.src, O_RDONLY | O_NOCTTY));
        Sha256 sha;
        std::vector<char> buf(1u << 20);
        while (true) {
          const ssize_t n = sys::retry_eintr([&] { return ::read(in.get(), buf.data(), buf.size()); });
          if (n < 0) return fail_errno(str("read(", quote(*f.src), ")"), errno);
          if (n == 0) break;
          sha.update(buf.data(), static_cast<std::size_t>(n));
          TRY(sys::write_all(out.get(), std::string_view(buf.data(), static_cast<std::size_t>(n))));
        }
        const std::string got = "sha256:" + sha.hex_final();
        for (const auto& i : c.inputs)
          if (i.kind == "file" && i.name == *f.src && i.digest != got)
            return fail(Errc::mismatch, str(quote(*f.src), " changed while the build was running"));
      }
      EntryMeta meta;
      meta.mode = f.mode;
      meta.uid = f.uid;
      meta.gid = f.gid;
      meta.mtime_sec = when;
      TRY(tree.finish_file(out.get(), f.dst, meta));
      c.log(str("file ", f.dst, " mode ", mode_octal(f.mode), " owner ", f.uid, ":", f.gid, f.src ? " from " + *f.src : std::string(" (inline)")));
      return {};
    };
    if (auto s = step(); !s) return fail(Error(s.error().code(), recipe_error(r, f.pos, s.error().what()).message()));
  }
  if (!r.layout.mkdir.empty() || !r.layout.symlinks.empty())
    c.step(str("layout: ", r.layout.mkdir.size(), " directories, ", r.layout.symlinks.size(), " symlinks"));
  for (const auto& d : r.layout.mkdir) {
    if (d == "/") continue;
    auto parent = TRY(tree.open_parent(d));
    const std::string name = d.substr(d.find_last_of('/') + 1);
    auto st = sys::lstat_at(parent.get(), name);
    if (st) {
      if (!S_ISDIR(st->st_mode))
        return fail(Errc::exists,
                    str("layout: ", quote(d), " exists in the tree and is not a directory", S_ISLNK(st->st_mode) ? " (a symlink)" : ""));
      continue;
    }
    const bool sticky = d == "/tmp" || d == "/var/tmp" || d == "/dev/shm";
    EntryMeta meta;
    meta.mode = sticky ? 01777 : 0755;
    meta.mtime_sec = when;
    TRY(tree.make_dir(d, meta));
    c.log(str("layout: mkdir ", d, " ", mode_octal(meta.mode)));
  }
  for (const auto& [path, target] : r.layout.symlinks) {
    auto parent = TRY(tree.open_parent(path));
    auto st = sys::lstat_at(parent.get(), path.substr(path.find_last_of('/') + 1));
    if (st && S_ISDIR(st->st_mode))
      return fail(Errc::exists, str("layout: ", quote(path), " is a directory in the tree; refusing to replace it with a symlink"));
    EntryMeta meta;
    meta.mode = 0777;
    meta.mtime_sec = when;
    TRY(tree.make_symlink(path, target, meta));
    c.log(str("layout: symlink ", path, " -> ", target));
  }
  return tree.finish();
}

Result<std::vector<LockPackage>> installed_packages(BuildContext& c) {
  std::vector<LockPackage> out;
  auto rootfd = TRY(sys::open_path(c.root, O_RDONLY | O_DIRECTORY));
  if (auto status = sys::open_in_root(rootfd.get(), "var/lib/dpkg/status", O_RDONLY, true)) {
    const std::string text = TRY(sys::read_fd(status->get(), 256u << 20));
    LockPackage cur;
    bool installed = false;
    auto flush = [&] {
      if (installed && !cur.name.empty()) out.push_back(cur);
      cur = {};
      installed = false;
    };
    for (const auto& line : split(text, '\n')) {
      if (line.empty()) {
        flush();
        continue;
      }
      if (line.starts_with("Package: ")) cur.name = line.substr(9);
      else if (line.starts_with("Version: ")) cur.version = line.substr(9);
      else if (line.starts_with("Architecture: ")) cur.arch = line.substr(14);
      else if (line.starts_with("Status: ")) installed = line.ends_with(" installed");
    }
    flush();
  } else if (sys::open_in_root(rootfd.get(), "var/lib/rpm", O_RDONLY | O_DIRECTORY, true) && !find_in_path("rpm").empty()) {
    auto text = capture({"rpm", "--root", c.root, "--dbpath", "/var/lib/rpm", "-qa", "--qf", "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH}\\n"});
    if (text) {
      for (const auto& line : split(*text, '\n')) {
        const auto w = split(line, ' ');
        if (w.size() == 3) out.push_back({w[0], w[1], w[2]});
      }
    } else {
      c.log("warning: could not list the RPM packages: " + text.error().what());
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return std::tie(a.name, a.arch) < std::tie(b.name, b.arch); });
  if (!out.empty()) c.log(str("packages: ", out.size(), " installed (listed in the lock)"));
  return out;
}

}  // namespace chrootctl::builder::detail
