// chrootctl key generate|id|list
#include <cstdio>

#include "chrootctl/catalogue/sign.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/settings.hpp"
#include "chrootctl/common/strings.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace cat = chrootctl::catalogue;

int generate(std::span<char* const> argv) {
  const Spec spec{"key generate",
                  "--out DIR",
                  "Make an Ed25519 key pair for signing images.",
                  "Writes DIR/KEYID.key (the private key, PEM, mode 0600) and DIR/KEYID.pub (the public key),\n"
                  "creating DIR with mode 0700 if needed; nothing is overwritten. KEYID is the first 16 hex\n"
                  "digits of the SHA-256 of the raw public key. Keep the private key on the image host only;\n"
                  "copy KEYID.pub into /etc/chrootctl/trusted.d/ (root-owned, mode 0644) on every node that\n"
                  "should run images signed with it.\n\n"
                  "Exit status: 0 written, 2 error.",
                  {{"out", 'o', true, false, "DIR", "directory for the key files (required)"}},
                  0,
                  0};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto dir = a.value("out");
  if (!dir) return usage_error(spec, "--out DIR is required");
  auto k = cat::generate_key_files(*dir);
  if (!k) return report(k.error());
  out(str("key ", k->id, "\nprivate key: ", k->private_file, "\npublic key:  ", k->public_file, "\n"));
  return k_ok;
}

int id(std::span<char* const> argv) {
  const Spec spec{"key id", "FILE...", "Print the key id of each public or private key file.", "Exit status: 0 printed, 2 error.", {}, 1, 1000};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  for (const auto& f : a.positional) {
    auto k = cat::load_public_key(f);
    if (!k) return report(k.error());
    out(str(k->id(), "  ", f, "\n"));
  }
  return k_ok;
}

int list(std::span<char* const> argv) {
  const Spec spec{"key list",
                  "[--trusted DIR] [--json]",
                  "List the trusted and the revoked signing keys.",
                  "Trusted keys are the *.pub files in the trusted directory; revoked keys are the *.pub files\n"
                  "in revoked.d beside it. A revoked key refuses every image it signed, even if it is still\n"
                  "trusted. Both directories and every key file must be owned by root and not writable by\n"
                  "group or others.\n\n"
                  "Exit status: 0 listed, 2 error (a directory or key file is not safe to trust).",
                  {trusted_option(), json_option()},
                  0,
                  0};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto settings = load_settings();
  if (!settings) return report(settings.error());
  const std::string dir = a.value("trusted").value_or(settings->trusted_keys);
  auto t = cat::load_trust_store(dir);
  if (!t) return report(t.error());
  auto state = [&](const cat::Key& k) { return t->revoked_key(k) ? "revoked" : "trusted"; };
  if (a.flag("json")) {
    JsonWriter w;
    w.begin_object();
    w.field("trusted_dir", t->trusted_dir);
    w.field("revoked_dir", t->revoked_dir);
    w.key("keys").begin_array();
    for (const auto& k : t->trusted) {
      w.begin_object().field("id", k.id()).field("state", state(k)).field("file", escape_bytes(k.source())).end_object();
    }
    for (const auto& k : t->revoked) {
      w.begin_object().field("id", k.id()).field("state", "revoked").field("file", escape_bytes(k.source())).end_object();
    }
    w.end_array();
    w.end_object();
    out(w.str());
    return k_ok;
  }
  if (!t->trusted_dir_exists) err(str("chrootctl: warning: ", dir, " does not exist: no key is trusted\n"));
  for (const auto& k : t->trusted) out(str(k.id(), "  ", state(k), "  ", escape_bytes(k.source()), "\n"));
  for (const auto& k : t->revoked) out(str(k.id(), "  revoked  ", escape_bytes(k.source()), "\n"));
  return k_ok;
}

int key_main(std::span<char* const> argv) {
  static const char* k_usage =
      "Usage: chrootctl key generate|id|list ...\n\n"
      "  generate --out DIR          make an Ed25519 key pair (DIR/KEYID.key, DIR/KEYID.pub)\n"
      "  id FILE...                  print the key id of key files\n"
      "  list [--trusted DIR]        list trusted and revoked keys\n";
  return dispatch(argv, "key", k_usage, {{"generate", generate}, {"id", id}, {"list", list}});
}

}  // namespace

CHROOTCTL_VERB("key", "generate, identify and list image signing keys", key_main);

}  // namespace chrootctl::cli
