// The audit checks over manifests built in memory: every check id once, exactly; allow-lists
// that suppress exactly their finding; the parsers behind the account and sudoers checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "chrootctl/audit/checks.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "test_support.hpp"

namespace chrootctl::audit {
namespace {

using manifest::Entry;
using manifest::Type;

std::string le32(std::uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}
std::string caps_v2(std::uint64_t permitted) {
  return le32(0x02000001u) + le32(static_cast<std::uint32_t>(permitted)) + le32(0) + le32(static_cast<std::uint32_t>(permitted >> 32)) + le32(0);
}

/// An image in memory: entries and the contents of its files.
class Image {
 public:
  Image() { dir("/"); }
  Entry& dir(const std::string& p, std::uint32_t mode = 0755, std::uint32_t uid = 0, std::uint32_t gid = 0) {
    return add(p, Type::dir, mode, uid, gid);
  }
  Entry& file(const std::string& p, const std::string& content, std::uint32_t mode = 0644, std::uint32_t uid = 0, std::uint32_t gid = 0) {
    Entry& e = add(p, Type::file, mode, uid, gid);
    e.size = content.size();
    e.sha256 = Sha256::hex(content);
    e.nlink = 1;
    m_files[p] = content;
    return e;
  }
  Entry& link(const std::string& p, const std::string& target) {
    Entry& e = add(p, Type::symlink, 0777, 0, 0);
    e.target = target;
    return e;
  }
  Entry& special(const std::string& p, Type t, std::uint32_t major = 0, std::uint32_t minor = 0) {
    Entry& e = add(p, t, 0666, 0, 0);
    e.rdev_major = major;
    e.rdev_minor = minor;
    return e;
  }
  manifest::Manifest manifest() const {
    manifest::Manifest m;
    for (const auto& [p, e] : m_entries) m.entries.push_back(e);
    return m;
  }
  MemoryFiles files() const { return MemoryFiles(m_files); }
  void erase(const std::string& p) {
    m_entries.erase(p);
    m_files.erase(p);
  }

 private:
  Entry& add(const std::string& p, Type t, std::uint32_t mode, std::uint32_t uid, std::uint32_t gid) {
    Entry& e = m_entries[p];
    e = Entry{};
    e.path = p;
    e.type = t;
    e.mode = mode;
    e.uid = uid;
    e.gid = gid;
    return e;
  }
  std::map<std::string, Entry> m_entries;  // std::map orders by bytes, like a manifest
  std::map<std::string, std::string> m_files;
};

const std::string k_key_pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n";

/// A clean base: accounts, a few directories, allowed devices.
Image base_image() {
  Image img;
  for (const char* d : {"/dev", "/etc", "/home", "/opt", "/root", "/run", "/srv", "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/local/bin",
                        "/usr/sbin", "/var"})
    img.dir(d);
  img.dir("/tmp", 01777);
  img.dir("/root", 0700);
  img.file("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n");
  img.file("/etc/group", "root:x:0:\nshadow:x:42:\nusers:x:1000:\nstaff:x:50:\n");
  img.file("/etc/shadow", "root:*:19000:0:99999:7:::\nalice:!:19000:0:99999:7:::\n", 0640, 0, 42);
  img.file("/etc/gshadow", "root:*::\n", 0640, 0, 42);
  img.special("/dev/null", Type::chardev, 1, 3);
  img.special("/dev/zero", Type::chardev, 1, 5);
  return img;
}

struct Want {
  std::string check;
  std::string path;
  std::string account;
  Severity severity;
  friend bool operator<(const Want& a, const Want& b) { return std::tie(a.check, a.path, a.account) < std::tie(b.check, b.path, b.account); }
  friend bool operator==(const Want& a, const Want& b) {
    return a.check == b.check && a.path == b.path && a.account == b.account && a.severity == b.severity;
  }
};
std::ostream& operator<<(std::ostream& os, const Want& w) {
  return os << w.check << " " << w.path << (w.account.empty() ? "" : " [" + w.account + "]") << " " << severity_name(w.severity);
}

std::vector<Finding> run_checks(const Image& img, const Policy& policy, std::vector<Finding>* ignored = nullptr,
                                std::vector<std::string>* notes = nullptr) {
  auto m = img.manifest();
  auto files = img.files();
  auto a = analyse(m, files, policy);
  EXPECT_TRUE(a) << (a ? "" : a.error().what());
  if (!a) return {};
  std::vector<Finding> ign;
  finish(a->findings, ign, policy);
  if (ignored) *ignored = ign;
  if (notes) *notes = a->notes;
  return a->findings;
}

std::vector<Want> as_wants(const std::vector<Finding>& fs) {
  std::vector<Want> out;
  out.reserve(fs.size());
  for (const auto& f : fs) out.push_back({f.check, f.path, f.account, f.severity});
  std::sort(out.begin(), out.end());
  return out;
}

const Finding* find(const std::vector<Finding>& fs, std::string_view check, std::string_view path) {
  for (const auto& f : fs)
    if (f.check == check && f.path == path) return &f;
  return nullptr;
}

/// One instance of every check of groups 1-10 (drift is checked against a real walk elsewhere).
struct Seeded {
  Image img;
  Policy policy;
  std::vector<Want> want;
};

Seeded seeded() {
  Seeded s;
  Image& img = s.img;
  img = base_image();
  Policy& p = s.policy;
  p = default_policy();
  using S = Severity;
  auto& w = s.want;
  // 6. accounts
  img.file("/etc/passwd",
           "root:x:0:0:root:/root:/bin/bash\n"
           "toor:x:0:0::/root:/bin/sh\n"  // extra uid 0
           "alice:x:1000:1000::/home/alice:/bin/sh\n"
           "bob:x:1000:1000::/home/bob:/bin/sh\n"                                                        // duplicate uid
           "alice:x:1001:1000::/:/bin/sh\n"                                                              // duplicate name
           "carol::1002:1000::/:/bin/sh\n");                                                             // empty password field
  img.file("/etc/group", "root:x:0:\nshadow:x:42:\nusers:x:1000:\nstaff:x:50:\ndupg:x:1000:\n");         // duplicate gid
  img.file("/etc/shadow", "root:*:1::::::\nalice:$6$salt$hashhashhash:1::::::\ndave::1::::::\n", 0644);  // mode, hash, empty
  w.push_back({"account.extra-uid0", "/etc/passwd", "toor", S::high});
  w.push_back({"account.duplicate-uid", "/etc/passwd", "bob", S::medium});
  w.push_back({"account.duplicate-name", "/etc/passwd", "alice", S::medium});
  w.push_back({"account.empty-password", "/etc/passwd", "carol", S::high});
  w.push_back({"account.duplicate-gid", "/etc/group", "dupg", S::low});
  w.push_back({"account.password-hash", "/etc/shadow", "alice", S::high});
  w.push_back({"account.empty-password", "/etc/shadow", "dave", S::high});
  w.push_back({"account.shadow-mode", "/etc/shadow", "", S::medium});
  // 1. setuid and setgid
  img.file("/usr/bin/su",
           std::string("\x7f"
                       "ELF su"),
           04755);
  w.push_back({"setuid.unlisted", "/usr/bin/su", "", S::medium});
  img.file("/usr/bin/wall",
           "\x7f"
           "ELF wall",
           02755, 0, 50);
  w.push_back({"setgid.unlisted", "/usr/bin/wall", "", S::low});
  img.file("/usr/bin/passwd",
           "\x7f"
           "ELF passwd",
           04755);
  p.setuid.push_back({"/usr/bin/passwd", std::string(64, '0')});
  w.push_back({"setuid.allowlist-mismatch", "/usr/bin/passwd", "", S::high});
  const auto& tool = img.file("/opt/tool",
                              "\x7f"
                              "ELF tool",
                              04755);
  p.setuid.push_back({"/opt/tool", tool.sha256});
  w.push_back({"setuid.unexpected-location", "/opt/tool", "", S::high});
  const auto& mine = img.file("/usr/bin/mine",
                              "\x7f"
                              "ELF mine",
                              04755, 1000, 1000);
  p.setuid.push_back({"/usr/bin/mine", mine.sha256});
  w.push_back({"setuid.not-root-owned", "/usr/bin/mine", "", S::high});
  w.push_back({"owner.non-root", "/usr/bin/mine", "", S::low});
  const auto& script = img.file("/usr/bin/backup", "#!/bin/sh\nrm -rf /\n", 04755);
  p.setuid.push_back({"/usr/bin/backup", script.sha256});
  w.push_back({"setuid.script", "/usr/bin/backup", "", S::high});
  auto& linked = img.file("/usr/bin/linked",
                          "\x7f"
                          "ELF linked",
                          04755);
  linked.nlink = 2;
  p.setuid.push_back({"/usr/bin/linked", linked.sha256});
  w.push_back({"setuid.hardlinked", "/usr/bin/linked", "", S::medium});
  // 2. capabilities
  img.file("/usr/bin/ping",
           "\x7f"
           "ELF ping",
           0755)
      .xattrs = {{"security.capability", caps_v2(1ull << 13)}};
  w.push_back({"capability.file", "/usr/bin/ping", "", S::medium});
  auto& arping = img.file("/usr/bin/arping",
                          "\x7f"
                          "ELF arping",
                          0755);
  arping.xattrs = {{"security.capability", caps_v2(1ull << 13)}};
  p.capabilities.push_back({"/usr/bin/arping", arping.sha256, std::vector<std::string>{"cap_net_admin"}});
  w.push_back({"capability.allowlist-mismatch", "/usr/bin/arping", "", S::high});
  img.file("/usr/bin/odd",
           "\x7f"
           "ELF odd",
           0755)
      .xattrs = {{"security.capability", "garbage"}};
  w.push_back({"capability.malformed", "/usr/bin/odd", "", S::high});
  // 3. writable
  img.file("/etc/motd", "hello\n", 0666);
  w.push_back({"world-writable.file", "/etc/motd", "", S::medium});
  img.dir("/srv/drop", 0777);
  w.push_back({"world-writable.dir-no-sticky", "/srv/drop", "", S::high});
  img.dir("/usr/local/bin", 01777);
  w.push_back({"world-writable.path-dir", "/usr/local/bin", "", S::high});
  img.dir("/usr/lib/extra", 02775, 0, 50);
  w.push_back({"group-writable.path-dir", "/usr/lib/extra", "", S::medium});
  // 4. devices
  img.special("/dev/sda", Type::blockdev, 8, 0);
  w.push_back({"device.node", "/dev/sda", "", S::high});
  img.special("/run/fifo", Type::fifo);
  w.push_back({"device.fifo", "/run/fifo", "", S::low});
  img.special("/run/sock", Type::socket);
  w.push_back({"device.socket", "/run/sock", "", S::low});
  // 5. ownership (the home directory and everything in it is one finding)
  img.dir("/home/alice", 0755, 1000, 1000);
  img.file("/home/alice/.bash_history", "ssh root@10.0.0.1\n", 0600, 1000, 1000);
  w.push_back({"owner.non-root", "/home/alice", "", S::low});
  img.file("/srv/orphan", "x", 0644, 4242, 4343);
  w.push_back({"owner.non-root", "/srv/orphan", "", S::low});
  w.push_back({"owner.unknown-uid", "/srv/orphan", "", S::medium});
  w.push_back({"owner.unknown-gid", "/srv/orphan", "", S::medium});
  // 7. secrets
  img.dir("/etc/ssh");
  img.file("/etc/ssh/ssh_host_ed25519_key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n", 0600);
  img.file("/etc/ssh/ssh_host_ed25519_key.pub", "ssh-ed25519 AAAA root@build\n");
  w.push_back({"secret.ssh-host-key", "/etc/ssh/ssh_host_ed25519_key", "", S::high});
  img.dir("/root/.ssh", 0700);
  img.file("/root/.ssh/authorized_keys", "ssh-ed25519 AAAA admin@laptop\n", 0600);
  w.push_back({"secret.authorized-keys", "/root/.ssh/authorized_keys", "", S::medium});
  img.dir("/etc/ssl");
  img.file("/etc/ssl/site.key", k_key_pem, 0600);
  w.push_back({"secret.private-key", "/etc/ssl/site.key", "", S::high});
  img.file("/root/.netrc", "machine ftp login x password y\n", 0600);
  w.push_back({"secret.netrc", "/root/.netrc", "", S::high});
  img.file("/root/.git-credentials", "https://u:t@git.example\n", 0600);
  w.push_back({"secret.git-credentials", "/root/.git-credentials", "", S::high});
  w.push_back({"secret.shell-history", "/home/alice/.bash_history", "", S::medium});
  img.dir("/root/.aws", 0700);
  img.file("/root/.aws/credentials", "[default]\naws_secret_access_key = x\n", 0600);
  w.push_back({"secret.cloud-credentials", "/root/.aws/credentials", "", S::high});
  img.dir("/root/.docker", 0700);
  img.file("/root/.docker/config.json", "{\"auths\": {\"registry.example\": {\"auth\": \"dTpw\"}}}\n", 0600);
  w.push_back({"secret.docker-credentials", "/root/.docker/config.json", "", S::high});
  // 8. leftovers
  img.file("/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
  w.push_back({"leftover.machine-id", "/etc/machine-id", "", S::medium});
  img.file("/etc/resolv.conf", "nameserver 10.0.0.1\n");
  w.push_back({"leftover.resolv-conf", "/etc/resolv.conf", "", S::low});
  img.file("/etc/hostname", "buildhost\n");
  w.push_back({"leftover.hostname", "/etc/hostname", "", S::low});
  img.file("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0755);
  w.push_back({"leftover.policy-rc-d", "/usr/sbin/policy-rc.d", "", S::medium});
  img.file("/usr/bin/qemu-aarch64-static",
           "\x7f"
           "ELF qemu",
           0755);
  w.push_back({"leftover.qemu-static", "/usr/bin/qemu-aarch64-static", "", S::medium});
  // 9. hooks
  img.file("/etc/ld.so.preload", "/lib/libevil.so\n");
  w.push_back({"hook.ld-so-preload", "/etc/ld.so.preload", "", S::high});
  img.dir("/etc/sudoers.d", 0750);
  img.file("/etc/sudoers.d/ci", "# ci used to have NOPASSWD here\nci ALL=(ALL) NOPASSWD: ALL\n", 0440);
  w.push_back({"hook.sudoers-nopasswd", "/etc/sudoers.d/ci", "", S::high});
  // 10. symlinks
  img.link("/etc/alt", "/usr/bin/su");
  w.push_back({"symlink.absolute", "/etc/alt", "", S::info});
  img.link("/usr/bin/up", "../../../etc/shadow");
  w.push_back({"symlink.escapes-root", "/usr/bin/up", "", S::info});
  std::sort(w.begin(), w.end());
  return s;
}

TEST(AuditChecks, CleanImageHasNoFindings) {
  auto img = base_image();
  img.link("/usr/bin/awk", "mawk");  // relative, inside the tree
  img.link("/lib", "usr/lib");
  std::vector<std::string> notes;
  auto f = run_checks(img, default_policy(), nullptr, &notes);
  EXPECT_EQ(as_wants(f), std::vector<Want>{});
  EXPECT_EQ(notes, std::vector<std::string>{});
}

TEST(AuditChecks, SeededImageReportsEachFindingExactlyOnce) {
  auto s = seeded();
  const auto findings = run_checks(s.img, s.policy);
  EXPECT_EQ(as_wants(findings), s.want);
  // Every check of groups 1-10 is exercised by the seeded image (drift and store.* look at the
  // disk: audit_privileged_test.cpp and boundary_test.cpp; seccomp.none needs a catalogue
  // entry: tests/privileged/seccomp_images_test.cpp).
  std::set<std::string> seen;
  for (const auto& f : findings) seen.insert(f.check);
  for (const auto& c : checks())
    if (!starts_with(c.id, "drift.") && !starts_with(c.id, "store.") && c.id != "seccomp.none") {
      EXPECT_TRUE(seen.count(std::string(c.id))) << c.id << " is not seeded";
    }
}

TEST(AuditChecks, DetailsSayWhatWasFound) {
  auto s = seeded();
  const auto f = run_checks(s.img, s.policy);
  auto detail = [&](std::string_view check, std::string_view path) {
    const auto* x = find(f, check, path);
    return x ? x->detail : std::string("<none>");
  };
  EXPECT_EQ(detail("setuid.script", "/usr/bin/backup"), "setuid uid 0 (root), interpreter '#!/bin/sh'");
  EXPECT_EQ(detail("setuid.unexpected-location", "/opt/tool"), "setuid uid 0 (root) under /opt");
  EXPECT_EQ(detail("setuid.not-root-owned", "/usr/bin/mine"), "setuid to uid 1000 (alice)");
  EXPECT_EQ(detail("setgid.unlisted", "/usr/bin/wall"), "setgid gid 50 (staff), mode 2755, sha256 " + Sha256::hex("\x7f"
                                                                                                                  "ELF wall"));
  EXPECT_EQ(detail("setuid.hardlinked", "/usr/bin/linked"), "setuid uid 0 (root), 2 hard links (the others outside the tree)");
  EXPECT_EQ(detail("capability.file", "/usr/bin/ping"), "cap_net_raw=ep");
  EXPECT_EQ(detail("capability.allowlist-mismatch", "/usr/bin/arping"), "capabilities cap_net_raw=ep but the allow-list has cap_net_admin");
  EXPECT_EQ(detail("capability.malformed", "/usr/bin/odd"), "security.capability has unknown revision 0x62 (base64 Z2FyYmFnZQ==)");
  EXPECT_EQ(detail("device.node", "/dev/sda"), "block device 8,0");
  EXPECT_EQ(detail("owner.non-root", "/home/alice"), "owned by uid 1000 (alice), and 1 entry below it");
  EXPECT_EQ(detail("owner.unknown-uid", "/srv/orphan"), "uid 4242 has no account in /etc/passwd");
  EXPECT_EQ(detail("owner.unknown-gid", "/srv/orphan"), "gid 4343 has no group in /etc/group");
  EXPECT_EQ(detail("secret.private-key", "/etc/ssl/site.key"), "contains a 'RSA PRIVATE KEY' block");
  EXPECT_EQ(detail("hook.ld-so-preload", "/etc/ld.so.preload"), "preloads into every program: /lib/libevil.so");
  EXPECT_EQ(detail("hook.sudoers-nopasswd", "/etc/sudoers.d/ci"), "line 2: ci ALL=(ALL) NOPASSWD: ALL");
  EXPECT_EQ(detail("leftover.hostname", "/etc/hostname"), "hostname 'buildhost'");
  EXPECT_EQ(detail("account.shadow-mode", "/etc/shadow"), "mode 0644, others have access");
  EXPECT_EQ(detail("account.duplicate-uid", "/etc/passwd"), "account 'bob' (line 4) has uid 1000, like 'alice' (line 3)");
  EXPECT_EQ(detail("symlink.escapes-root", "/usr/bin/up"), "-> ../../../etc/shadow");
  const auto* cap = find(f, "capability.file", "/usr/bin/ping");
  ASSERT_TRUE(cap && cap->capabilities);
  EXPECT_EQ(cap->capabilities->permitted, 1ull << 13);
}

// Each allow-list entry removes exactly the one finding it is about.
TEST(AuditChecks, AllowListEntrySuppressesExactlyThatFinding) {
  auto s = seeded();
  const auto before = as_wants(run_checks(s.img, s.policy));
  ASSERT_EQ(before, s.want);
  auto without = [&](std::string_view check, std::string_view path, std::string_view account) {
    std::vector<Want> out;
    for (const auto& w : before)
      if (!(w.check == check && w.path == path && w.account == account)) out.push_back(w);
    EXPECT_EQ(out.size() + 1, before.size()) << check << " " << path;
    return out;
  };
  {
    auto p = s.policy;
    p.setuid.push_back({"/usr/bin/su", Sha256::hex("\x7f"
                                                   "ELF su")});
    EXPECT_EQ(as_wants(run_checks(s.img, p)), without("setuid.unlisted", "/usr/bin/su", ""));
  }
  {
    auto p = s.policy;
    p.setuid.push_back({"/usr/bin/su", std::string(64, 'f')});  // the wrong contents: a mismatch instead
    auto got = as_wants(run_checks(s.img, p));
    auto want = without("setuid.unlisted", "/usr/bin/su", "");
    want.push_back({"setuid.allowlist-mismatch", "/usr/bin/su", "", Severity::high});
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want);
  }
  {
    auto p = s.policy;
    p.capabilities.push_back({"/usr/bin/ping",
                              Sha256::hex("\x7f"
                                          "ELF ping"),
                              std::nullopt});
    EXPECT_EQ(as_wants(run_checks(s.img, p)), without("capability.file", "/usr/bin/ping", ""));
  }
  {
    auto p = s.policy;
    p.devices.push_back({"/dev/sda", Type::blockdev, 8, 0});
    EXPECT_EQ(as_wants(run_checks(s.img, p)), without("device.node", "/dev/sda", ""));
  }
  {
    auto p = s.policy;
    p.accounts.push_back({"toor", 0u, false});
    EXPECT_EQ(as_wants(run_checks(s.img, p)), without("account.extra-uid0", "/etc/passwd", "toor"));
  }
  {
    auto p = s.policy;
    p.accounts.push_back({"alice", std::nullopt, true});
    EXPECT_EQ(as_wants(run_checks(s.img, p)), without("account.password-hash", "/etc/shadow", "alice"));
  }
}

TEST(AuditChecks, WrongDeviceNumbersAreNotAllowed) {
  auto img = base_image();
  img.special("/dev/null", Type::chardev, 8, 0);  // a disk dressed up as /dev/null
  auto f = run_checks(img, default_policy());
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].check, "device.node");
  EXPECT_EQ(f[0].detail, "char device 8,0 but the allow-list has char device 1,3");
}

TEST(AuditChecks, PolicySeveritiesAndIgnores) {
  auto s = seeded();
  s.policy.severities["symlink.absolute"] = Severity::high;
  s.policy.ignores.push_back({"owner.non-root", std::string("/home/**"), std::nullopt, "home directories are provisioned"});
  s.policy.ignores.push_back({"owner.non-root", std::string("/home"), std::nullopt, "does not match /home/alice"});
  s.policy.ignores.push_back({"account.empty-password", std::nullopt, std::string("dave"), "dave is a locked service account"});
  std::vector<Finding> ignored;
  const auto f = run_checks(s.img, s.policy, &ignored);
  ASSERT_EQ(ignored.size(), 2u);
  EXPECT_EQ(ignored[0].check, "account.empty-password");
  EXPECT_EQ(ignored[0].account, "dave");
  EXPECT_EQ(ignored[0].ignored_because, "dave is a locked service account");
  EXPECT_EQ(ignored[1].path, "/home/alice");
  EXPECT_EQ(f.size() + 2, s.want.size());
  EXPECT_EQ(f.front().check, "setuid.allowlist-mismatch");  // high first, in catalogue order
  EXPECT_EQ(find(f, "symlink.absolute", "/etc/alt")->severity, Severity::high);
  EXPECT_NE(find(f, "account.empty-password", "/etc/passwd"), nullptr);  // carol is not dave
}

TEST(AuditChecks, MissingAndSymlinkedAccountFilesAreNotes) {
  auto img = base_image();
  img.erase("/etc/group");
  img.erase("/etc/gshadow");
  img.link("/etc/shadow", "/host/etc/shadow");
  img.file("/etc/data", "x", 0644, 0, 7);
  std::vector<std::string> notes;
  auto f = run_checks(img, default_policy(), nullptr, &notes);
  EXPECT_EQ(notes,
            (std::vector<std::string>{"/etc/group does not exist", "/etc/shadow is a symlink to '/host/etc/shadow', not a regular file: not read",
                                      "/etc/gshadow does not exist"}));
  // With no /etc/group every gid but 0 is unknown.
  std::vector<Want> want = {{"owner.unknown-gid", "/etc/data", "", Severity::medium}, {"symlink.absolute", "/etc/shadow", "", Severity::info}};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(as_wants(f), want);
}

TEST(AuditChecks, PrivateKeyMarkerSplitAcrossReadsIsFound) {
  // MemoryFiles hands out 7-byte chunks, so every marker here spans several.
  auto img = base_image();
  img.dir("/home/bob", 0755);
  img.file("/home/bob/notes.txt", std::string(1000, 'x') + "\n" + k_key_pem);
  img.file("/home/bob/readme", "How to make a PRIVATE KEY: run openssl genrsa\n-----END RSA PRIVATE KEY-----\n");
  img.dir("/usr/share");
  img.file("/usr/share/cert.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  img.file("/usr/share/leak.pem", "-----BEGIN EC PRIVATE KEY-----\nMHcC\n");
  img.file("/usr/share/other.txt", k_key_pem);  // not *.key/*.pem and not under /etc, /root, /home
  auto f = run_checks(img, default_policy());
  std::vector<Want> want = {{"secret.private-key", "/home/bob/notes.txt", "", Severity::high},
                            {"secret.private-key", "/usr/share/leak.pem", "", Severity::high}};
  EXPECT_EQ(as_wants(f), want);
  EXPECT_EQ(find(f, "secret.private-key", "/usr/share/leak.pem")->detail, "contains a 'EC PRIVATE KEY' block");
}

TEST(AuditChecks, SudoersCommentsContinuationsAndUidReferences) {
  auto img = base_image();
  img.dir("/etc/sudoers.d");
  img.file("/etc/sudoers",
           "Defaults env_reset # NOPASSWD is not used here\n"
           "#includedir /etc/sudoers.d\n"
           "#1000 ALL=(ALL) \\\n"
           "   NOPASSWD: /usr/bin/true\n"
           "%admin ALL=(ALL) ALL\n",
           0440);
  img.file("/etc/sudoers.d/README", "# NOPASSWD: examples in the manual\n", 0440);
  auto f = run_checks(img, default_policy());
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].path, "/etc/sudoers");
  EXPECT_EQ(f[0].detail, "line 3: #1000 ALL=(ALL)     NOPASSWD: /usr/bin/true");
}

TEST(AuditChecks, LeftoversOnlyWhenTheyCarryContent) {
  auto img = base_image();
  img.file("/etc/machine-id", "uninitialized\n");
  img.file("/etc/resolv.conf", "");
  img.file("/etc/hostname", "");
  img.dir("/var/lib");
  img.dir("/var/lib/dbus");
  img.link("/var/lib/dbus/machine-id", "/etc/machine-id");
  img.file("/etc/ld.so.preload", "  \n");
  img.dir("/root/.docker");
  img.file("/root/.docker/config.json", "{\"credsStore\": \"pass\"}\n");
  img.file("/root/.bash_history", "");
  auto f = run_checks(img, default_policy());
  EXPECT_EQ(as_wants(f), (std::vector<Want>{{"symlink.absolute", "/var/lib/dbus/machine-id", "", Severity::info}}));
}

TEST(AuditChecks, ExecDirectories) {
  for (const char* p : {"/", "/usr", "/usr/local", "/usr/bin", "/usr/lib/x86_64-linux-gnu", "/usr/local/lib/python3/dist-packages", "/lib64"})
    EXPECT_TRUE(is_exec_dir(p)) << p;
  for (const char* p : {"/var", "/usr/share", "/usr/local/share", "/usr/binx", "/home", "/opt"}) EXPECT_FALSE(is_exec_dir(p)) << p;
}

TEST(AuditChecks, AccountFileParsers) {
  std::vector<std::string> problems;
  auto pw = parse_passwd("root:x:0:0:root:/root:/bin/bash\n+nis::::::\n# comment\nbad:x:zero:0::/:/bin/sh\nshort:x:1\n\n", "/etc/passwd", problems);
  ASSERT_EQ(pw.size(), 1u);
  EXPECT_EQ(pw[0].line, 1u);
  EXPECT_EQ(problems, (std::vector<std::string>{"/etc/passwd:4: no name or a bad uid or gid: line ignored",
                                                "/etc/passwd:5: 3 fields instead of 7: line ignored"}));
  EXPECT_TRUE(usable_password_hash("$6$salt$abcdef"));
  EXPECT_TRUE(usable_password_hash("$y$j9T$salt$hash"));
  EXPECT_TRUE(usable_password_hash("abJnggxhB/yWI"));  // DES
  EXPECT_FALSE(usable_password_hash("!$6$salt$abcdef"));
  EXPECT_FALSE(usable_password_hash("*"));
  EXPECT_FALSE(usable_password_hash("!!"));
  EXPECT_FALSE(usable_password_hash("x"));
  EXPECT_FALSE(usable_password_hash("*LK*"));
  EXPECT_FALSE(usable_password_hash(""));
}

TEST(AuditChecks, DriftFindingsNameFieldsAndSeverity) {
  manifest::DiffResult d;
  d.differences.push_back({manifest::Difference::Kind::added, "/new", {}});
  d.differences.push_back({manifest::Difference::Kind::changed, "/etc/hosts", {{"mode", "0644", "0666"}, {"uid", "0", "1000"}}});
  d.differences.push_back({manifest::Difference::Kind::removed, "/gone", {}});
  d.differences.push_back({manifest::Difference::Kind::mtime_only, "/touched", {{"mtime", "1.000000000", "2.000000000"}}});
  auto f = drift_findings(d);
  std::vector<Finding> ignored;
  finish(f, ignored, default_policy());
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[0].check, "drift.added");
  EXPECT_EQ(f[1].check, "drift.removed");
  EXPECT_EQ(f[2].check, "drift.changed");
  EXPECT_EQ(f[2].detail, "mode 0644 -> 0666; uid 0 -> 1000");
  EXPECT_EQ(f[2].severity, Severity::high);
  EXPECT_EQ(f[3].check, "drift.mtime-only");
  EXPECT_EQ(f[3].severity, Severity::info);
}

// docs/audit.md documents every check and docs/audit.schema.json enumerates every id.
TEST(AuditChecks, EveryCheckIsDocumented) {
  const std::string doc = test::read_file(test::source_dir() + "/docs/audit.md");
  const std::string schema = test::read_file(test::source_dir() + "/docs/audit.schema.json");
  ASSERT_FALSE(doc.empty());
  ASSERT_FALSE(schema.empty());
  std::set<std::string> ids;
  for (const auto& c : checks()) {
    ids.insert(std::string(c.id));
    EXPECT_NE(doc.find(str("| `", c.id, "` | ", severity_name(c.severity), " |")), std::string::npos) << c.id << " is not in docs/audit.md";
    EXPECT_NE(schema.find(str("\"", c.id, "\"")), std::string::npos) << c.id << " is not in docs/audit.schema.json";
  }
  EXPECT_EQ(ids.size(), checks().size()) << "check ids must be unique";
}

}  // namespace
}  // namespace chrootctl::audit
