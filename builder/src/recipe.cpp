#include "chrootctl/builder/recipe.hpp"

#include <unistd.h>

#include <algorithm>

#include "chrootctl/builder/paths.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/tree_path.hpp"

namespace chrootctl::builder {

namespace {

const std::vector<std::string> k_base_kinds = {"archive", "oci", "mmdebstrap", "debootstrap", "dnf", "image", "directory", "scratch"};

std::string resolve_host_path(const std::string& dir, const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  return dir.empty() ? p : str(dir, "/", p);
}

// A value that goes on a command line of a host tool: no option injection, no control bytes.
bool plain_word(std::string_view s) {
  if (s.empty() || s[0] == '-') return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f && c != ',' && c != '\''; });
}

class Parser {
 public:
  Parser(const TomlDocument& doc, Diagnostics& diag, std::string dir) : m_doc(doc), m_diag(diag), m_dir(std::move(dir)) {}

  void parse(Recipe& r) {
    TableReader top(m_diag, m_doc.table);
    if (auto v = top.string("name", true)) {
      if (!valid_recipe_name(*v))
        m_diag.error(*top.node("name"),
                     str("recipe name ", quote(*v), " must be 1-64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"));
      r.name = *v;
    }
    if (auto v = top.string("description")) r.description = *v;
    if (auto v = top.integer("source_date_epoch")) {
      if (*v < 0) m_diag.error(*top.node("source_date_epoch"), "'source_date_epoch' must not be negative");
      r.source_date_epoch = *v;
    }
    if (const auto* b = top.table("base", true)) parse_base(*b, r);
    if (const auto* p = top.table("packages")) parse_packages(*p, r.packages);
    if (const auto* s = top.table("strip")) parse_strip(*s, r.strip);
    if (const auto* l = top.table("layout")) parse_layout(*l, r.layout);
    if (const auto* f = top.table_array("files")) {
      for (const auto& item : *f) parse_file(*item.as_table(), r.files);
    }
    if (const auto* x = top.table("run")) parse_run(*x, r.run);
    if (const auto* o = top.table("output")) parse_output(*o, r.output);
    top.finish();
  }

 private:
  // A path inside the tree: absolute, no empty, "." or ".." components, no trailing slash.
  bool tree_path(const toml::node& node, const std::string& key, const std::string& p) {
    if (auto why = tree_path_problem(p)) {
      m_diag.error(node, str(quote(key), ": ", *why));
      return false;
    }
    return true;
  }

  std::optional<std::string> sha256_of(TableReader& t, const std::string& ctx) {
    auto v = t.string("sha256", true);
    if (!v) return std::nullopt;
    if (!is_sha256_hex(*v)) {
      m_diag.error(*t.node("sha256"), str("'", ctx, ".sha256' must be 64 lowercase hex digits (the output of sha256sum)"));
      return std::nullopt;
    }
    return v;
  }

  void words(TableReader& t, const toml::table& tbl, const std::string& key, const std::string& ctx, std::vector<std::string>& out) {
    auto v = t.string_array(key);
    if (!v) return;
    const auto* arr = tbl.get(key)->as_array();
    for (std::size_t i = 0; i < v->size(); ++i) {
      if (!plain_word((*v)[i]))
        m_diag.error(*arr->get(i),
                     str("'", ctx, ".", key, "' item ", quote((*v)[i]), " is not a plain name (no spaces, commas, quotes or leading '-')"));
    }
    out = *v;
  }

  void parse_base(const toml::table& tbl, Recipe& r) {
    TableReader t(m_diag, tbl, "base");
    std::vector<std::string> present;
    for (const auto& k : k_base_kinds)
      if (t.has(k)) present.push_back(k);
    // Read every source present so their own errors are reported too; the last one wins, but
    // more than one is an error anyway.
    for (const auto& k : present) {
      const SourcePos pos = t.key_pos(k);
      if (k == "archive" || k == "oci") {
        const auto* sub = t.table(k);
        if (!sub) continue;
        TableReader s(m_diag, *sub, "base." + k);
        auto path = s.string("path", true);
        auto sha = sha256_of(s, "base." + k);
        std::string image;
        if (k == "oci") {
          if (auto v = s.string("image")) image = *v;
        }
        s.finish();
        if (k == "archive") r.base = ArchiveBase{resolve_host_path(m_dir, path.value_or("")), sha.value_or(""), pos};
        else r.base = OciBase{resolve_host_path(m_dir, path.value_or("")), sha.value_or(""), image, pos};
      } else if (k == "mmdebstrap" || k == "debootstrap") {
        const auto* sub = t.table(k);
        if (!sub) continue;
        TableReader s(m_diag, *sub, "base." + k);
        DebootstrapBase d;
        d.pos = pos;
        d.tool = k == "mmdebstrap" ? DebootstrapBase::Tool::mmdebstrap : DebootstrapBase::Tool::debootstrap;
        if (auto v = s.string("suite", true)) {
          if (!plain_word(*v)) m_diag.error(*s.node("suite"), str("'base.", k, ".suite' ", quote(*v), " is not a suite name"));
          d.suite = *v;
        }
        if (auto v = s.string("variant")) {
          static const std::vector<std::string> variants = {"minbase",   "buildd", "required", "important", "standard",
                                                            "essential", "apt",    "custom",   "extract"};
          if (std::find(variants.begin(), variants.end(), *v) == variants.end()) {
            std::string msg = str("unknown variant ", quote(*v));
            if (auto dm = did_you_mean(*v, variants)) msg += str(" (did you mean ", quote(*dm), "?)");
            m_diag.error(*s.node("variant"), msg);
          }
          d.variant = *v;
        }
        words(s, *sub, "packages", "base." + k, d.packages);
        words(s, *sub, "components", "base." + k, d.components);
        if (auto v = s.string("mirror")) {
          if (v->find("://") == std::string::npos || std::any_of(v->begin(), v->end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; }))
            m_diag.error(*s.node("mirror"), str("'base.", k, ".mirror' must be a URL like http://HOST/debian (no spaces)"));
          d.mirror = *v;
        }
        if (auto v = s.boolean("fallback")) d.fallback = *v;
        s.finish();
        r.base = std::move(d);
      } else if (k == "dnf") {
        const auto* sub = t.table(k);
        if (!sub) continue;
        TableReader s(m_diag, *sub, "base.dnf");
        DnfBase d;
        d.pos = pos;
        if (auto v = s.string("releasever", true)) {
          if (!plain_word(*v)) m_diag.error(*s.node("releasever"), str("'base.dnf.releasever' ", quote(*v), " is not a release version"));
          d.releasever = *v;
        }
        words(s, *sub, "packages", "base.dnf", d.packages);
        if (const auto* repos = s.table("repos")) {
          for (const auto& [id, url] : *repos) {
            const std::string sid(id.str());
            if (!plain_word(sid) || sid.find('=') != std::string::npos) m_diag.error(url, str("repo id ", quote(sid), " is not a plain name"));
            if (const auto* u = url.as_string()) {
              if (u->get().find("://") == std::string::npos || !plain_word(u->get()))
                m_diag.error(url, str("repo ", quote(sid), " must be a URL (file://, http:// or https://) without spaces"));
              d.repos[sid] = u->get();
            } else {
              m_diag.error(url, str("repo ", quote(sid), " must be a URL string"));
            }
          }
        }
        if (auto v = s.string("reposdir")) d.reposdir = resolve_host_path(m_dir, *v);
        if (d.repos.empty() && d.reposdir.empty() && sub->contains("releasever"))
          m_diag.error(*sub, "'base.dnf' needs 'repos' (id = URL) or 'reposdir' (a directory of .repo files)");
        if (!d.repos.empty() && !d.reposdir.empty()) m_diag.error(*s.node("reposdir"), "'base.dnf' takes 'repos' or 'reposdir', not both");
        if (auto v = s.boolean("gpgcheck")) d.gpgcheck = *v;
        if (auto v = s.string_array("gpgkeys")) {
          for (auto& key : *v) d.gpgkeys.push_back(key.find("://") == std::string::npos ? resolve_host_path(m_dir, key) : key);
        }
        if (auto v = s.string("arch")) {
          if (!plain_word(*v)) m_diag.error(*s.node("arch"), str("'base.dnf.arch' ", quote(*v), " is not an architecture"));
          d.arch = *v;
        }
        if (auto v = s.boolean("install_weak_deps")) d.install_weak_deps = *v;
        s.finish();
        r.base = std::move(d);
      } else if (k == "image") {
        if (auto v = t.string("image")) {
          if (v->empty()) m_diag.error(*t.node("image"), "'base.image' must name an image");
          r.base = ImageBase{*v, pos};
        }
      } else if (k == "directory") {
        const auto* n = t.node("directory");
        std::optional<std::string> p;
        if (const auto* s = n->as_string()) {
          p = s->get();
        } else if (const auto* sub = n->as_table()) {
          TableReader s2(m_diag, *sub, "base.directory");
          p = s2.string("path", true);
          s2.finish();
        } else {
          m_diag.error(*n, "'base.directory' must be a path or { path = \"...\" }");
        }
        if (p) {
          if (p->empty()) m_diag.error(*n, "'base.directory' must name a directory");
          r.base = DirectoryBase{resolve_host_path(m_dir, *p), pos};
        }
      } else if (k == "scratch") {
        if (auto v = t.boolean("scratch")) {
          if (!*v) m_diag.error(*t.node("scratch"), "'base.scratch' can only be true (leave it out otherwise)");
          r.base = ScratchBase{pos};
        }
      }
    }
    if (present.empty()) {
      m_diag.error(tbl, "[base] needs exactly one source: archive, oci, mmdebstrap, debootstrap, dnf, image, directory or scratch");
    } else if (present.size() > 1) {
      m_diag.error(t.key_pos(present[1]),
                   str("[base] has more than one source (", quote(present[0]), " and ", quote(present[1]), "); a recipe has exactly one"));
    }
    t.finish();
  }

  void parse_packages(const toml::table& tbl, Packages& p) {
    TableReader t(m_diag, tbl, "packages");
    words(t, tbl, "install", "packages", p.install);
    words(t, tbl, "remove", "packages", p.remove);
    if (auto v = t.string("manager")) {
      if (*v == "apt") p.manager = Packages::Manager::apt;
      else if (*v == "dnf") p.manager = Packages::Manager::dnf;
      else if (*v == "auto") p.manager = Packages::Manager::automatic;
      else m_diag.error(*t.node("manager"), str("'packages.manager' must be \"apt\", \"dnf\" or \"auto\", not ", quote(*v)));
    }
    t.finish();
  }

  void tree_paths(TableReader& t, const toml::table& tbl, const std::string& key, const std::string& ctx, std::vector<std::string>& out,
                  bool globs = false) {
    auto v = t.string_array(key);
    if (!v) return;
    const auto* arr = tbl.get(key)->as_array();
    for (std::size_t i = 0; i < v->size(); ++i) {
      const auto& p = (*v)[i];
      if (globs) {
        if (auto why = glob_problem(p)) m_diag.error(*arr->get(i), str("'", ctx, ".", key, "' pattern ", quote(p), ": ", *why));
      } else {
        tree_path(*arr->get(i), ctx + "." + key, p);
      }
    }
    out = *v;
  }

  void parse_strip(const toml::table& tbl, Strip& s) {
    TableReader t(m_diag, tbl, "strip");
    if (auto v = t.string("setuid")) {
      if (*v == "remove") s.setuid = SetuidPolicy::remove;
      else if (*v == "clear-bit") s.setuid = SetuidPolicy::clear_bit;
      else if (*v == "keep") s.setuid = SetuidPolicy::keep;
      else {
        std::string msg = str("'strip.setuid' must be \"remove\", \"clear-bit\" or \"keep\", not ", quote(*v));
        if (auto dm = did_you_mean(*v, {"remove", "clear-bit", "keep"})) msg += str(" (did you mean ", quote(*dm), "?)");
        m_diag.error(*t.node("setuid"), msg);
      }
    }
    tree_paths(t, tbl, "allow_setuid", "strip", s.allow_setuid);
    if (auto v = t.boolean("capabilities")) s.capabilities = *v;
    tree_paths(t, tbl, "allow_capabilities", "strip", s.allow_capabilities);
    if (auto v = t.boolean("devices")) s.devices = *v;
    if (auto v = t.boolean("shadow")) s.shadow = *v;
    tree_paths(t, tbl, "remove", "strip", s.remove, true);
    t.finish();
  }

  void parse_layout(const toml::table& tbl, Layout& l) {
    TableReader t(m_diag, tbl, "layout");
    tree_paths(t, tbl, "mkdir", "layout", l.mkdir);
    if (const auto* links = t.table("symlinks")) {
      for (const auto& [k, v] : *links) {
        const std::string path(k.str());
        tree_path(v, "layout.symlinks", path);
        if (const auto* s = v.as_string()) {
          if (s->get().empty() || s->get().find('\0') != std::string::npos) m_diag.error(v, str("symlink ", quote(path), " needs a target"));
          l.symlinks.emplace_back(path, s->get());
        } else {
          m_diag.error(v, str("symlink ", quote(path), " must have a string target"));
        }
      }
    }
    t.finish();
  }

  void parse_file(const toml::table& tbl, std::vector<FileSpec>& files) {
    TableReader t(m_diag, tbl, "files");
    FileSpec f;
    f.pos = pos_of(tbl);
    if (auto v = t.string("src")) {
      if (v->empty()) m_diag.error(*t.node("src"), "'files.src' must name a file");
      f.src = resolve_host_path(m_dir, *v);
    }
    if (auto v = t.string("content")) f.content = *v;
    if (f.src && f.content) m_diag.error(*t.node("content"), "a [[files]] entry takes 'src' or 'content', not both");
    if (!t.has("src") && !t.has("content")) m_diag.error(tbl, "a [[files]] entry needs 'src' (a host file) or 'content'");
    if (auto v = t.string("dst", true)) {
      tree_path(*t.node("dst"), "files.dst", *v);
      if (*v == "/") m_diag.error(*t.node("dst"), "'files.dst' cannot be the root");
      f.dst = *v;
    }
    if (auto v = t.string("mode")) {
      auto m = parse_u64(*v, 8);
      if (v->empty() || v->size() > 4 || !m || *m > 07777)
        m_diag.error(*t.node("mode"), str("'files.mode' must be octal like \"0644\", not ", quote(*v)));
      else f.mode = static_cast<std::uint32_t>(*m);
    }
    for (const char* key : {"uid", "gid"}) {
      if (auto v = t.integer(key)) {
        if (*v < 0 || *v >= 4294967295LL) m_diag.error(*t.node(key), str("'files.", key, "' must be a number from 0 to 4294967294"));
        else (std::string(key) == "uid" ? f.uid : f.gid) = static_cast<std::uint32_t>(*v);
      }
    }
    t.finish();
    files.push_back(std::move(f));
  }

  void parse_output(const toml::table& tbl, Output& o) {
    TableReader t(m_diag, tbl, "output");
    if (auto v = t.string("format")) {
      o.pos = pos_of(*t.node("format"));
      if (*v == "directory") o.format = Output::Format::directory;
      else if (*v == "sealed") o.format = Output::Format::sealed;
      else m_diag.error(*t.node("format"), str("'output.format' must be \"directory\" or \"sealed\", not ", quote(*v)));
    }
    t.finish();
  }

  void parse_run(const toml::table& tbl, Run& r) {
    TableReader t(m_diag, tbl, "run");
    if (auto v = t.string_array("commands")) r.commands = *v;
    if (auto v = t.boolean("network")) r.network = *v;
    t.finish();
  }

  const TomlDocument& m_doc;
  Diagnostics& m_diag;
  std::string m_dir;
};

}  // namespace

std::string base_kind(const Base& b) {
  struct V {
    std::string operator()(const ArchiveBase&) const { return "archive"; }
    std::string operator()(const OciBase&) const { return "oci"; }
    std::string operator()(const DebootstrapBase& d) const { return d.tool == DebootstrapBase::Tool::mmdebstrap ? "mmdebstrap" : "debootstrap"; }
    std::string operator()(const DnfBase&) const { return "dnf"; }
    std::string operator()(const ImageBase&) const { return "image"; }
    std::string operator()(const DirectoryBase&) const { return "directory"; }
    std::string operator()(const ScratchBase&) const { return "scratch"; }
  };
  return std::visit(V{}, b);
}

bool valid_recipe_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '-'; });
}

Result<Recipe> parse_recipe(std::string text, const std::string& display_name, const std::string& dir) {
  Recipe r;
  r.doc = TRY(parse_toml(text, display_name));
  r.text = std::move(text);
  r.display_name = display_name;
  r.dir = dir;
  r.base = ScratchBase{};
  Diagnostics diag(r.doc);
  Parser(r.doc, diag, dir).parse(r);
  TRY(diag.result());
  return r;
}

Result<Recipe> load_recipe(const std::string& path, const std::string& display_name) {
  auto text = TRY(sys::read_file(path, 1u << 20));
  const auto slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  if (!dir.empty() && dir[0] != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd)) dir = dir == "." ? std::string(cwd) : str(cwd, "/", dir);
  }
  auto r = TRY(parse_recipe(std::move(text), display_name.empty() ? path : display_name, dir));
  r.path = path;
  return r;
}

Result<Recipe> find_recipe(const std::string& name_or_path, const std::vector<std::string>& dirs) {
  const bool is_path = name_or_path.size() > 5 && name_or_path.ends_with(".toml");
  if (is_path) {
    if (auto st = sys::stat_path(name_or_path); !st) return fail(std::move(st.error()).add_context("reading the recipe"));
    return load_recipe(name_or_path);
  }
  if (!valid_recipe_name(name_or_path))
    return fail(Errc::invalid_argument, str(quote(name_or_path), " is neither a recipe name nor a path ending in .toml"));
  for (const auto& d : dirs) {
    const std::string p = str(d, "/", name_or_path, ".toml");
    auto st = sys::stat_path(p);
    if (!st) continue;
    // Name the file as an administrator sees it: relative to the checkout's recipes/ parent.
    const auto slash = d.find_last_of('/');
    const std::string shown = str(slash == std::string::npos ? d : d.substr(slash + 1), "/", name_or_path, ".toml");
    auto r = TRY(load_recipe(p, shown));
    if (r.name != name_or_path) {
      SourcePos pos{1, 1};
      if (const auto* n = r.doc.table.get("name")) pos = pos_of(*n);
      return fail(recipe_error(
          r, pos, str("recipe ", quote(shown), " is named ", quote(r.name), "; a recipe found by name must say name = \"", name_or_path, "\"")));
    }
    return r;
  }
  return fail(Errc::not_found, str("no recipe named ", quote(name_or_path), " in ", join(dirs, ", ")));
}

Error recipe_error(const Recipe& r, SourcePos pos, const std::string& message) {
  std::string msg = render_diagnostic(r.doc, pos, message);
  if (!msg.empty() && msg.back() == '\n') msg.pop_back();
  return Error(Errc::invalid_argument, std::move(msg));
}

}  // namespace chrootctl::builder
