#include "chrootctl/common/settings.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/toml.hpp"

namespace chrootctl {

bool Settings::readable(std::string_view name) const {
  return std::any_of(readable_images.begin(), readable_images.end(), [&](const std::string& n) { return n == "*" || n == name; });
}

bool running_from_build_tree() {
  auto exe_link = sys::readlink_at(AT_FDCWD, "/proc/self/exe");
  if (!exe_link || exe_link->empty()) return false;
  const std::string& exe = *exe_link;
  const std::string bin = CHROOTCTL_BINARY_DIR;
  return starts_with(exe, bin + "/");
}

Settings default_settings() {
  Settings s;
  const bool checkout = running_from_build_tree();
  s.store = checkout ? str(CHROOTCTL_SOURCE_DIR, "/images") : "/var/lib/chrootctl";
  if (checkout) s.recipe_dirs.push_back(str(CHROOTCTL_SOURCE_DIR, "/recipes"));
  s.recipe_dirs.push_back("/etc/chrootctl/recipes");
  s.accounting.path = checkout ? str(CHROOTCTL_BINARY_DIR, "/accounting/launches.jsonl") : "/var/log/chrootctl/launches.jsonl";
  return s;
}

Result<Settings> load_settings(const std::optional<std::string>& store_override) {
  Settings s = default_settings();

  const char* env_cfg = std::getenv("CHROOTCTL_CONFIG");
  const std::string cfg = env_cfg && *env_cfg ? env_cfg : "/etc/chrootctl/config.toml";
  auto st = sys::stat_path(cfg);
  if (st) {
    // Whoever can write the configuration decides the store and the signature policy: it must
    // belong to root (or the user running chrootctl) and be writable by no one else.
    if (!S_ISREG(st->st_mode)) return fail(Errc::permission, str("configuration ", cfg, " is not a regular file"));
    if ((st->st_uid != 0 && st->st_uid != ::geteuid()) || (st->st_mode & 022))
      return fail(Errc::permission, str("refusing configuration ", cfg, ": owned by uid ", st->st_uid, " with mode ", mode_octal(st->st_mode & 07777),
                                        " (it must belong to root and be writable by no one else)"));
    auto doc = TRY(load_toml(cfg));
    Diagnostics diag(doc);
    TableReader r(diag, doc.table);
    if (auto v = r.string("store")) s.store = *v;
    if (auto v = r.string_array("recipe_dirs")) s.recipe_dirs = *v;
    if (auto v = r.integer("max_verify_age")) {
      if (*v <= 0) diag.error(r.key_pos("max_verify_age"), "'max_verify_age' must be a positive number of seconds");
      else s.max_verify_age = *v;
    }
    if (auto v = r.boolean("require_signature")) s.require_signature = *v;
    if (auto v = r.string("trusted_keys")) s.trusted_keys = *v;
    if (const auto* t = r.table("seccomp")) {
      TableReader sr(diag, *t, "seccomp");
      if (auto v = sr.string("policy")) {
        if (*v != "default" && *v != "none" && (v->empty() || (*v)[0] != '/'))
          diag.error(*t->get("policy"), "'seccomp.policy' must be \"default\", \"none\" or the absolute path of a policy file");
        else s.seccomp.policy = *v;
      }
      if (auto v = sr.string_array("allow")) s.seccomp.allow = *v;
      if (auto v = sr.string_array("deny")) s.seccomp.deny = *v;
      if (auto v = sr.string("errno")) s.seccomp.errno_name = *v;
      if (auto v = sr.boolean("allow_user_namespaces")) s.seccomp.allow_user_namespaces = *v;
      sr.finish();
    }
    if (auto v = r.string("shm_size")) {
      auto bytes = parse_size(*v);
      if (!bytes || *bytes == 0) diag.error(r.key_pos("shm_size"), str("'shm_size' must be a size like 64M, not ", quote(*v)));
      else s.shm_size = *bytes;
    }
    if (auto v = r.boolean("sealed_keep_mounted")) s.sealed_keep_mounted = *v;
    if (auto v = r.boolean("sealed_verity")) s.sealed_verity = *v;
    if (auto v = r.string("launch_check")) {
      if (*v == "metadata") s.launch_check = Settings::LaunchCheck::metadata;
      else if (*v == "periodic") s.launch_check = Settings::LaunchCheck::periodic;
      else diag.error(r.key_pos("launch_check"), str("'launch_check' must be \"metadata\" or \"periodic\", not ", quote(*v)));
    }
    if (const auto* ids = r.table("job_ids")) {
      TableReader t(diag, *ids, "job_ids");
      auto start = t.integer("start", true);
      auto count = t.integer("count", true);
      auto in_range = [&](const char* key, const std::optional<std::int64_t>& v) -> std::optional<std::uint32_t> {
        if (!v) return std::nullopt;
        if (*v <= 0 || *v > 0xFFFFFFFELL) {
          diag.error(t.key_pos(key), str("'job_ids.", key, "' must be between 1 and 4294967294"));
          return std::nullopt;
        }
        return static_cast<std::uint32_t>(*v);
      };
      s.job_ids_start = in_range("start", start);
      s.job_ids_count = in_range("count", count);
      t.finish();
    }
    if (const auto* acct = r.table("accounting")) {
      TableReader t(diag, *acct, "accounting");
      if (auto v = t.boolean("enabled")) s.accounting.enabled = *v;
      if (auto v = t.string("path")) {
        // The file's directory holds users/ for unprivileged launchers: a plain, absolute path.
        const auto parts = split(*v, '/');
        const bool plain = v->size() > 1 && (*v)[0] == '/' &&
                           std::none_of(parts.begin() + 1, parts.end(), [](const std::string& c) { return c.empty() || c == "." || c == ".."; });
        if (!plain) diag.error(*acct->get("path"), "'accounting.path' must be the absolute path of a file, without '.', '..' or '//'");
        else s.accounting.path = *v;
      }
      if (auto v = t.string("max_size")) {
        auto bytes = parse_size(*v);
        if (!bytes || *bytes < 4096)
          diag.error(t.key_pos("max_size"), str("'accounting.max_size' must be a size of at least 4K, like 64M, not ", quote(*v)));
        else s.accounting.max_bytes = *bytes;
      }
      if (auto v = t.integer("keep")) {
        if (*v < 0 || *v > 1000) diag.error(t.key_pos("keep"), "'accounting.keep' must be a number of files from 0 to 1000");
        else s.accounting.keep = static_cast<unsigned>(*v);
      }
      t.finish();
    }
    if (auto v = r.string_array("readable_images")) {
      const auto* arr = doc.table.get("readable_images")->as_array();
      for (std::size_t i = 0; i < v->size(); ++i) {
        const std::string& name = (*v)[i];
        // The catalogue's name rule (docs/catalogue.md), checked here without the catalogue.
        const bool ok =
            name == "*" || (!name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
              return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' || c == '+';
            }));
        if (!ok) diag.error(*arr->get(i), str("'readable_images' holds ", quote(name), ", which is not a catalogue name or \"*\""));
      }
      s.readable_images = *v;
    }
    if (const auto* strip = r.table("strip")) {
      TableReader t(diag, *strip, "strip");
      if (auto v = t.string("setuid")) {
        if (auto p = parse_setuid_policy(*v)) s.import_strip.setuid = *p;
        else diag.error(*t.node("setuid"), str("'strip.setuid' must be \"remove\", \"clear-bit\" or \"keep\", not ", quote(*v)));
      }
      auto paths = [&](const char* key, std::vector<std::string>& out) {
        auto v = t.string_array(key);
        if (!v) return;
        const auto* arr = strip->get(key)->as_array();
        for (std::size_t i = 0; i < v->size(); ++i)
          if (auto why = allow_path_problem((*v)[i])) diag.error(*arr->get(i), str("'strip.", key, "' holds ", quote((*v)[i]), ": ", *why));
        out = *v;
      };
      paths("allow_setuid", s.import_strip.allow_setuid);
      if (auto v = t.boolean("capabilities")) s.import_strip.capabilities = *v;
      paths("allow_capabilities", s.import_strip.allow_capabilities);
      if (auto v = t.boolean("devices")) s.import_strip.devices = *v;
      t.finish();
    }
    r.finish();
    TRY(diag.result());
    s.config_file = cfg;
    s.config_text = doc.text;
  } else if (env_cfg && *env_cfg) {
    return fail(std::move(st.error()).add_context("reading $CHROOTCTL_CONFIG"));
  }
  if (const char* env_store = std::getenv("CHROOTCTL_STORE"); env_store && *env_store) s.store = env_store;
  if (store_override) s.store = *store_override;
  while (s.store.size() > 1 && s.store.back() == '/') s.store.pop_back();
  return s;
}

}  // namespace chrootctl
