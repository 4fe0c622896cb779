#include "chrootctl/builder/sources.hpp"

#include <algorithm>
#include <map>

#include "chrootctl/common/strings.hpp"

namespace chrootctl::builder {

std::vector<std::string> contained(std::vector<std::string> argv) {
  std::vector<std::string> out = {"unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--"};
  out.insert(out.end(), std::make_move_iterator(argv.begin()), std::make_move_iterator(argv.end()));
  return out;
}

std::vector<std::string> mmdebstrap_argv(const DebootstrapBase& b, const std::string& target, const std::string& mirror_or_sources) {
  std::vector<std::string> a = {"mmdebstrap", "--mode=root", "--format=directory", "--variant=" + b.variant};
  if (!b.packages.empty()) a.push_back("--include=" + join(b.packages, ","));
  if (!b.components.empty()) a.push_back("--components=" + join(b.components, ","));
  a.push_back("--");
  a.push_back(b.suite);
  a.push_back(target);
  if (!mirror_or_sources.empty()) a.push_back(mirror_or_sources);
  return a;
}

std::vector<std::string> debootstrap_argv(const DebootstrapBase& b, const std::string& target, const std::string& mirror) {
  std::vector<std::string> a = {"debootstrap"};
  if (b.variant == "minbase" || b.variant == "buildd") a.push_back("--variant=" + b.variant);
  if (!b.packages.empty()) a.push_back("--include=" + join(b.packages, ","));
  if (!b.components.empty()) a.push_back("--components=" + join(b.components, ","));
  // debootstrap refuses "--" ("unrecognized or invalid option"), so none of the operands may
  // look like an option: the recipe refuses a suite starting with '-', the target is an
  // absolute path, and a mirror is a URL (scheme first).
  a.push_back(b.suite);
  a.push_back(target);
  if (!mirror.empty()) a.push_back(mirror);
  return a;
}

std::string dnf_config(const DnfBase& b, const std::string& reposdir) {
  return str("[main]\n", "gpgcheck=", b.gpgcheck ? 1 : 0, "\n", "install_weak_deps=", b.install_weak_deps ? "True" : "False", "\n", "best=True\n",
             "skip_if_unavailable=False\n", "keepcache=False\n", "reposdir=", reposdir, "\n");
}

std::string rpm_macros() { return "%_dbpath /var/lib/rpm\n"; }

std::vector<std::string> dnf_argv(const DnfBase& b, const std::string& root, const std::string& config, const std::string& verb,
                                  const std::vector<std::string>& packages) {
  std::vector<std::string> a = {"dnf", "-y", "--noplugins", "--config=" + config, "--installroot=" + root, "--releasever=" + b.releasever};
  if (!b.arch.empty()) a.push_back("--forcearch=" + b.arch);
  for (const auto& [id, url] : b.repos) {
    a.push_back(str("--repofrompath=", id, ",", url));
    a.push_back(str("--setopt=", id, ".gpgcheck=", b.gpgcheck ? 1 : 0));
    if (!b.gpgkeys.empty()) {
      std::vector<std::string> keys;
      for (const auto& k : b.gpgkeys) keys.push_back(k.find("://") == std::string::npos ? "file://" + k : k);
      a.push_back(str("--setopt=", id, ".gpgkey=", join(keys, " ")));
    }
  }
  a.push_back(verb);
  a.insert(a.end(), packages.begin(), packages.end());
  return a;
}

namespace {

struct Stanza {
  std::vector<std::pair<std::string, std::string>> fields;
  std::string get(const std::string& k) const {
    for (const auto& [key, v] : fields) {
      std::string lk = key, lq = k;
      std::transform(lk.begin(), lk.end(), lk.begin(), ::tolower);
      std::transform(lq.begin(), lq.end(), lq.begin(), ::tolower);
      if (lk == lq) return v;
    }
    return {};
  }
};

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::vector<Stanza> parse_deb822(const std::string& text) {
  std::vector<Stanza> out;
  Stanza cur;
  auto flush = [&] {
    if (!cur.fields.empty()) out.push_back(std::move(cur));
    cur = Stanza{};
  };
  for (const auto& raw : split(text, '\n')) {
    const auto line = std::string(trim(raw));
    if (!raw.empty() && raw[0] == '#') continue;
    if (line.empty()) {
      flush();
      continue;
    }
    if ((raw[0] == ' ' || raw[0] == '\t') && !cur.fields.empty()) {
      cur.fields.back().second += " " + line;
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    cur.fields.emplace_back(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  }
  flush();
  return out;
}

std::vector<Stanza> parse_one_line(const std::string& text) {
  std::vector<Stanza> out;
  for (const auto& raw : split(text, '\n')) {
    auto line = std::string(trim(raw));
    if (line.empty() || line[0] == '#') continue;
    if (auto hash = line.find('#'); hash != std::string::npos) line = std::string(trim(line.substr(0, hash)));
    Stanza s;
    std::string options;
    if (auto open = line.find('['); open != std::string::npos) {
      const auto close = line.find(']', open);
      if (close == std::string::npos) continue;
      options = line.substr(open + 1, close - open - 1);
      line = line.substr(0, open) + line.substr(close + 1);
    }
    auto w = words(line);
    if (w.size() < 3) continue;
    s.fields.emplace_back("Types", w[0]);
    s.fields.emplace_back("URIs", w[1]);
    s.fields.emplace_back("Suites", w[2]);
    std::vector<std::string> comps(w.begin() + 3, w.end());
    if (!comps.empty()) s.fields.emplace_back("Components", join(comps, " "));
    for (const auto& opt : words(options)) {
      const auto eq = opt.find('=');
      if (eq == std::string::npos) continue;
      const auto k = opt.substr(0, eq), v = opt.substr(eq + 1);
      if (k == "signed-by") s.fields.emplace_back("Signed-By", v);
      if (k == "arch") s.fields.emplace_back("Architectures", v);
    }
    out.push_back(std::move(s));
  }
  return out;
}

bool suite_matches(const std::string& s, const std::string& suite) {
  return s == suite || s == suite + "-updates" || s == suite + "-security" || s == suite + "/updates";
}

}  // namespace

std::string apt_sources_for_suite(const std::vector<std::pair<std::string, std::string>>& files, const std::string& suite) {
  std::string out;
  for (const auto& [name, text] : files) {
    const auto stanzas = name.ends_with(".sources") ? parse_deb822(text) : parse_one_line(text);
    for (const auto& s : stanzas) {
      std::string enabled = s.get("Enabled");
      std::transform(enabled.begin(), enabled.end(), enabled.begin(), ::tolower);
      if (enabled == "no" || enabled == "false") continue;
      const auto types = words(s.get("Types"));
      if (std::find(types.begin(), types.end(), "deb") == types.end()) continue;
      std::vector<std::string> suites;
      for (const auto& x : words(s.get("Suites")))
        if (suite_matches(x, suite)) suites.push_back(x);
      if (suites.empty()) continue;
      if (!out.empty()) out += "\n";
      out += "Types: deb\n";
      out += str("URIs: ", s.get("URIs"), "\n");
      out += str("Suites: ", join(suites, " "), "\n");
      const std::string comps = s.get("Components");
      out += str("Components: ", comps.empty() ? "main" : comps, "\n");
      if (auto v = s.get("Signed-By"); !v.empty()) out += str("Signed-By: ", v, "\n");
      if (auto v = s.get("Architectures"); !v.empty()) out += str("Architectures: ", v, "\n");
    }
  }
  return out;
}

std::string first_mirror_for_suite(const std::string& deb822, const std::string& suite) {
  for (const auto& s : parse_deb822(deb822)) {
    const auto suites = words(s.get("Suites"));
    if (std::find(suites.begin(), suites.end(), suite) == suites.end()) continue;
    const auto uris = words(s.get("URIs"));
    if (!uris.empty()) return uris[0];
  }
  return {};
}

}  // namespace chrootctl::builder
