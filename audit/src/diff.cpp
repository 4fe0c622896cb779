// `chrootctl diff`: two images or manifests compared, privilege changes first.
#include "chrootctl/audit/diff.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>

#include "chrootctl/audit/audit.hpp"
#include "chrootctl/audit/caps.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::audit {

using manifest::Entry;
using manifest::Type;

namespace {

const sys::Xattr* caps_xattr(const Entry& e) {
  for (const auto& x : e.xattrs)
    if (x.name == "security.capability") return &x;
  return nullptr;
}

bool privileged(const Entry& e) { return (e.type == Type::file && (e.mode & 06000)) || caps_xattr(e); }

std::string caps_of(const Entry& e) {
  const auto* x = caps_xattr(e);
  if (!x) return "-";
  auto c = decode_caps(x->value);
  return c ? caps_text(*c) : str("malformed (", c.error().message(), ")");
}

// What makes `e` privileged, for an entry added or removed as a whole.
std::vector<std::string> privileges(const Entry& e) {
  std::vector<std::string> out;
  if (e.type == Type::file && (e.mode & 04000)) out.push_back(str("setuid uid ", e.uid));
  if (e.type == Type::file && (e.mode & 02000)) out.push_back(str("setgid gid ", e.gid));
  if (caps_xattr(e)) out.push_back("capabilities " + caps_of(e));
  return out;
}

std::vector<std::string> privilege_changes(const Entry& a, const Entry& b) {
  std::vector<std::string> out;
  const bool a_file = a.type == Type::file, b_file = b.type == Type::file;
  auto bit = [&](unsigned mask, const char* name) {
    const bool x = a_file && (a.mode & mask), y = b_file && (b.mode & mask);
    if (x != y) out.push_back(str(name, y ? " added" : " removed"));
  };
  if (a.type != b.type) out.push_back(str("type ", manifest::type_name(a.type), " -> ", manifest::type_name(b.type)));
  bit(04000, "setuid");
  bit(02000, "setgid");
  if (caps_of(a) != caps_of(b)) out.push_back(str("capabilities ", caps_of(a), " -> ", caps_of(b)));
  if (a.uid != b.uid) out.push_back(str("owner uid ", a.uid, " -> ", b.uid));
  if (a.gid != b.gid) out.push_back(str("group gid ", a.gid, " -> ", b.gid));
  if (a_file && b_file && a.sha256 != b.sha256) out.push_back(str("contents changed (sha256 ", a.sha256, " -> ", b.sha256, ")"));
  return out;
}

std::string_view kind_word(PrivilegeChange::Kind k) {
  switch (k) {
    case PrivilegeChange::Kind::added:
      return "added";
    case PrivilegeChange::Kind::removed:
      return "removed";
    case PrivilegeChange::Kind::changed:
      return "changed";
  }
  return "changed";
}
std::string_view kind_word(PackageChange::Kind k) {
  switch (k) {
    case PackageChange::Kind::added:
      return "added";
    case PackageChange::Kind::removed:
      return "removed";
    case PackageChange::Kind::changed:
      return "changed";
  }
  return "changed";
}

bool comparable(const PackageList* p) { return p && p->source != PackageList::Source::unknown; }

std::vector<PackageChange> compare_packages(const PackageList& a, const PackageList& b) {
  using Key = std::pair<std::string, std::string>;
  std::map<Key, std::pair<std::vector<std::string>, std::vector<std::string>>> all;
  for (const auto& p : a.packages) all[{p.name, p.arch}].first.push_back(p.version);
  for (const auto& p : b.packages) all[{p.name, p.arch}].second.push_back(p.version);
  std::vector<PackageChange> out;
  for (auto& [key, versions] : all) {
    // A name can be installed in several versions at once (rpm installonly packages): pair the
    // versions that went away with those that came, in order; the rest were added or removed.
    auto& [old_v, new_v] = versions;
    std::sort(old_v.begin(), old_v.end());
    std::sort(new_v.begin(), new_v.end());
    std::vector<std::string> gone, came;
    std::set_difference(old_v.begin(), old_v.end(), new_v.begin(), new_v.end(), std::back_inserter(gone));
    std::set_difference(new_v.begin(), new_v.end(), old_v.begin(), old_v.end(), std::back_inserter(came));
    std::size_t i = 0;
    for (; i < gone.size() && i < came.size(); ++i) out.push_back({PackageChange::Kind::changed, key.first, key.second, gone[i], came[i]});
    for (std::size_t j = i; j < gone.size(); ++j) out.push_back({PackageChange::Kind::removed, key.first, key.second, gone[j], {}});
    for (std::size_t j = i; j < came.size(); ++j) out.push_back({PackageChange::Kind::added, key.first, key.second, {}, came[j]});
  }
  return out;
}

}  // namespace

bool ImageDiff::differs() const { return !privileged.empty() || !entries.differences.empty() || !packages.empty(); }

Result<DiffSide> side_from_path(const std::string& arg) {
  auto st = sys::stat_path(arg);
  if (!st) {
    if (st.error().sys_errno() == ENOENT) return fail(Errc::not_found, str(quote(arg), " is not a catalogue name, a build directory or a manifest"));
    return fail(std::move(st.error()));
  }
  DiffSide side;
  side.label = arg;
  if (S_ISREG(st->st_mode)) {
    side.manifest = arg;
    return side;
  }
  if (!S_ISDIR(st->st_mode)) return fail(Errc::invalid_argument, str(quote(arg), " is neither a manifest nor a build directory"));
  auto m = sys::lstat_path(arg + "/manifest");
  if (!m || !S_ISREG(m->st_mode)) return fail(Errc::invalid_argument, str(quote(arg), " is a directory without a manifest: not a build directory"));
  side.manifest = arg + "/manifest";
  if (auto r = sys::stat_path(arg + "/root"); r && S_ISDIR(r->st_mode)) side.root = arg + "/root";
  if (auto i = sys::lstat_path(str(arg, "/", manifest::k_sealed_file)); i && S_ISREG(i->st_mode)) {
    side.sealed = TRY(manifest::read_sealed(side.manifest));
    if (side.sealed) side.sealed_file = str(arg, "/", manifest::k_sealed_file);
  }
  return side;
}

ImageDiff compare_images(const manifest::Manifest& before, const manifest::Manifest& after, const PackageList* old_packages,
                         const PackageList* new_packages) {
  ImageDiff d;
  auto all = manifest::diff(before, after);
  for (auto& x : all.differences) {
    if (x.kind == manifest::Difference::Kind::mtime_only) ++d.mtime_only;
    else d.entries.differences.push_back(std::move(x));
  }
  const auto& a = before.entries;
  const auto& b = after.entries;
  std::size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    const Entry* x = nullptr;
    const Entry* y = nullptr;
    if (j >= b.size() || (i < a.size() && a[i].path < b[j].path)) {
      x = &a[i++];
    } else if (i >= a.size() || b[j].path < a[i].path) {
      y = &b[j++];
    } else {
      x = &a[i++];
      y = &b[j++];
    }
    const bool px = x && privileged(*x), py = y && privileged(*y);
    if (!px && !py) continue;
    PrivilegeChange c;
    c.path = x ? x->path : y->path;
    if (x) c.before = *x;
    if (y) c.after = *y;
    if (!x) {
      c.kind = PrivilegeChange::Kind::added;
      c.changes = privileges(*y);
    } else if (!y) {
      c.kind = PrivilegeChange::Kind::removed;
      c.changes = privileges(*x);
    } else {
      c.changes = privilege_changes(*x, *y);
      if (c.changes.empty()) continue;
    }
    d.privileged.push_back(std::move(c));
  }
  if (comparable(old_packages) && comparable(new_packages)) {
    d.packages_available = true;
    d.packages = compare_packages(*old_packages, *new_packages);
  }
  return d;
}

Result<ImageDiff> diff_images(const DiffSide& before, const DiffSide& after) {
  auto a = TRY(with_context(manifest::load(before.manifest), str("reading manifest ", before.manifest)));
  auto b = TRY(with_context(manifest::load(after.manifest), str("reading manifest ", after.manifest)));
  std::optional<PackageList> pa, pb;
  std::string note;
  if (before.root.empty() || after.root.empty()) {
    std::vector<std::string> bare;
    if (before.root.empty()) bare.push_back(before.label);
    if (after.root.empty()) bare.push_back(after.label);
    note = str("package diff not available: ", join(bare, " and "), bare.size() == 1 ? " is a bare manifest" : " are bare manifests",
               " (no image root to read packages from)");
  } else {
    pa = TRY(with_context(read_packages(before.root), str("reading the packages of ", before.root)));
    pb = TRY(with_context(read_packages(after.root), str("reading the packages of ", after.root)));
    for (const auto* p : {&*pa, &*pb}) {
      if (p->source == PackageList::Source::unknown) {
        note = str("package diff not available: packages of ", p == &*pa ? before.label : after.label, " unknown (", p->note, ")");
        break;
      }
    }
  }
  auto d = compare_images(a, b, pa ? &*pa : nullptr, pb ? &*pb : nullptr);
  d.old_side = before;
  d.new_side = after;
  if (!d.packages_available) d.packages_note = note;
  return d;
}

std::string render_text(const ImageDiff& d) {
  std::string out = str("diff ", printable(d.old_side.label), " -> ", printable(d.new_side.label), "\n");
  out += str("\nsetuid, setgid and capability changes (", d.privileged.size(), ")\n");
  for (const auto& c : d.privileged) out += str("  ", kind_word(c.kind), " ", escape_bytes(c.path), ": ", join(c.changes, "; "), "\n");
  std::size_t added = 0, removed = 0, changed = 0;
  for (const auto& x : d.entries.differences) {
    added += x.kind == manifest::Difference::Kind::added;
    removed += x.kind == manifest::Difference::Kind::removed;
    changed += x.kind == manifest::Difference::Kind::changed;
  }
  out += str("\nentries: ", added, " added, ", removed, " removed, ", changed, " changed");
  if (d.mtime_only) out += str(" (", d.mtime_only, " with only a new mtime, not listed)");
  out += "\n";
  std::string entries = manifest::render_text(d.entries);
  for (const auto& line : split(entries, '\n'))
    if (!line.empty()) out += "  " + line + "\n";
  std::size_t padded = 0, premoved = 0, pchanged = 0;
  if (d.packages_available) {
    for (const auto& p : d.packages) {
      padded += p.kind == PackageChange::Kind::added;
      premoved += p.kind == PackageChange::Kind::removed;
      pchanged += p.kind == PackageChange::Kind::changed;
    }
    out += str("\npackages: ", padded, " added, ", premoved, " removed, ", pchanged, " changed version\n");
    for (const auto& p : d.packages) {
      const std::string arch = p.arch.empty() ? "" : str(" (", printable(p.arch), ")");
      switch (p.kind) {
        case PackageChange::Kind::added:
          out += str("  added ", printable(p.name), " ", printable(p.new_version), arch, "\n");
          break;
        case PackageChange::Kind::removed:
          out += str("  removed ", printable(p.name), " ", printable(p.old_version), arch, "\n");
          break;
        case PackageChange::Kind::changed:
          out += str("  changed ", printable(p.name), " ", printable(p.old_version), " -> ", printable(p.new_version), arch, "\n");
          break;
      }
    }
  } else {
    out += str("\npackages: ", printable(d.packages_note), "\n");
  }
  out += str("\n", printable(d.old_side.label), " -> ", printable(d.new_side.label), ": ", d.privileged.size(), " privilege ",
             d.privileged.size() == 1 ? "change" : "changes", ", ", added, " added, ", removed, " removed, ", changed, " changed");
  if (d.packages_available) out += str("; packages ", padded, " added, ", premoved, " removed, ", pchanged, " changed");
  else out += "; packages not compared";
  return out + "\n";
}

namespace {

void write_side(JsonWriter& w, const DiffSide& s) {
  w.begin_object();
  w.field("label", s.label);
  w.field("manifest", s.manifest);
  w.key("root");
  if (s.root.empty()) w.null();
  else w.value(s.root);
  w.end_object();
}

void write_state(JsonWriter& w, const std::optional<Entry>& e) {
  if (!e) {
    w.null();
    return;
  }
  w.begin_object();
  w.field("type", std::string(1, static_cast<char>(e->type)));  // the manifest's letter: f, d, l, c, b, p, s
  w.field("mode", mode_octal(e->mode));
  w.field("uid", static_cast<std::uint64_t>(e->uid));
  w.field("gid", static_cast<std::uint64_t>(e->gid));
  w.key("sha256");
  if (e->sha256.empty()) w.null();
  else w.value(e->sha256);
  w.key("capabilities");
  if (caps_xattr(*e)) w.value(caps_of(*e));
  else w.null();
  w.end_object();
}

}  // namespace

std::string render_json(const ImageDiff& d) {
  JsonWriter w;
  w.begin_object();
  w.field("format", "chrootctl-diff");
  w.field("version", 1);
  w.key("old");
  write_side(w, d.old_side);
  w.key("new");
  write_side(w, d.new_side);
  w.field("differs", d.differs());
  w.key("privileged").begin_array();
  for (const auto& c : d.privileged) {
    w.begin_object();
    w.field("kind", kind_word(c.kind));
    w.field("path", escape_bytes(c.path));
    w.key("changes").begin_array();
    for (const auto& s : c.changes) w.value(s);
    w.end_array();
    w.key("before");
    write_state(w, c.before);
    w.key("after");
    write_state(w, c.after);
    w.end_object();
  }
  w.end_array();
  w.key("entries");
  manifest::write_json(w, d.entries);
  w.field("mtime_only", d.mtime_only);
  w.key("packages").begin_object();
  w.field("available", d.packages_available);
  w.key("note");
  if (d.packages_note.empty()) w.null();
  else w.value(d.packages_note);
  w.key("changes").begin_array();
  for (const auto& p : d.packages) {
    w.begin_object();
    w.field("kind", kind_word(p.kind));
    w.field("name", p.name);
    w.field("arch", p.arch);
    w.key("old_version");
    if (p.old_version.empty()) w.null();
    else w.value(p.old_version);
    w.key("new_version");
    if (p.new_version.empty()) w.null();
    else w.value(p.new_version);
    w.end_object();
  }
  w.end_array();
  w.end_object();
  w.end_object();
  return w.str();
}

}  // namespace chrootctl::audit
