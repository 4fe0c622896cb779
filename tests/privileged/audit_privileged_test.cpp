// Audits of real images on disk, as root: an image seeded with one instance of every check
// (owners, setuid bits, capabilities, device nodes and drift need root), allow-lists on that
// image, capabilities cross-checked with getcap, the catalogue (--all, names), an rpm database
// built at test time, and a clean stripped debian12 build.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "chrootctl/audit/audit.hpp"
#include "chrootctl/audit/policy.hpp"
#include "chrootctl/common/sha256.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

using test::run_chrootctl;

const char* k_validate = R"PY(
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator(schema).validate(json.load(sys.stdin))
print("valid")
)PY";

const char* k_findings = R"PY(
import json, sys
doc = json.load(sys.stdin)
rows = []
for img in doc["images"]:
    for f in img.get("findings", []):
        rows.append(" ".join([f["check"], f["path"]] + ([f["account"]] if f["account"] else []) + [f["severity"]]))
print("\n".join(sorted(rows)))
)PY";

std::string le32(std::uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

class AuditPrivileged : public test::TempDirTest {
 protected:
  std::string validate(const std::string& json) {
    auto v = test::run({"python3", "-c", k_validate, test::source_dir() + "/docs/audit.schema.json"}, json);
    return v.out + v.err;
  }
  std::string findings(const std::string& json) { return test::run({"python3", "-c", k_findings}, json).out; }
  std::string empty_policy() {
    std::string p = path("empty-policy.toml");
    test::write_file(p, "", 0600);
    return p;
  }

  void file(const std::string& rel, const std::string& content, mode_t mode = 0644, uid_t uid = 0, gid_t gid = 0) {
    const std::string p = m_root + rel;
    test::write_file(p, content, mode);
    ASSERT_EQ(::chown(p.c_str(), uid, gid), 0) << p;
    ASSERT_EQ(::chmod(p.c_str(), mode), 0) << p;  // chown clears setuid bits
  }
  void dir(const std::string& rel, mode_t mode = 0755, uid_t uid = 0, gid_t gid = 0) {
    const std::string p = m_root + rel;
    test::mkdirs(p);
    ASSERT_EQ(::chown(p.c_str(), uid, gid), 0) << p;
    ASSERT_EQ(::chmod(p.c_str(), mode), 0) << p;
  }
  std::string sha(const std::string& rel) { return Sha256::hex(test::read_file(m_root + rel)); }

  /// Builds BUILD/root seeded with one instance of every check, and BUILD/manifest; then the
  /// drift. Returns the expected findings ("check path [account] severity", sorted) and writes
  /// the policy (allow-lists that keep each seeded case to its own check) to `policy`.
  std::string seed(const std::string& build, const std::string& policy) {
    m_root = build + "/root";
    for (const char* d :
         {"", "/dev", "/etc", "/home", "/opt", "/root", "/run", "/srv", "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/sbin", "/var"})
      dir(d);
    dir("/root", 0700);
    dir("/tmp", 01777);
    std::vector<std::string> w;
    // 6. accounts
    file("/etc/passwd",
         "root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
         "bob:x:1000:1000::/home/bob:/bin/sh\nalice:x:1001:1000::/:/bin/sh\ncarol::1002:1000::/:/bin/sh\n");
    file("/etc/group", "root:x:0:\nshadow:x:42:\nusers:x:1000:\nstaff:x:50:\ndupg:x:1000:\n");
    file("/etc/shadow", "root:*:1::::::\nalice:$6$salt$hashhashhash:1::::::\ndave::1::::::\n", 0644);
    file("/etc/gshadow", "root:*::\n", 0640, 0, 42);
    w.insert(w.end(), {"account.extra-uid0 /etc/passwd toor high", "account.duplicate-uid /etc/passwd bob medium",
                       "account.duplicate-name /etc/passwd alice medium", "account.empty-password /etc/passwd carol high",
                       "account.duplicate-gid /etc/group dupg low", "account.password-hash /etc/shadow alice high",
                       "account.empty-password /etc/shadow dave high", "account.shadow-mode /etc/shadow medium"});
    // 1. setuid and setgid
    std::string allow;
    auto allow_setuid = [&](const std::string& rel, const std::string& digest) {
      allow += "[[allow.setuid]]\npath = \"" + rel + "\"\nsha256 = \"" + digest + "\"\n";
    };
    file("/usr/bin/su",
         "\x7f"
         "ELF su",
         04755);
    w.push_back("setuid.unlisted /usr/bin/su medium");
    file("/usr/bin/wall",
         "\x7f"
         "ELF wall",
         02755, 0, 50);
    w.push_back("setgid.unlisted /usr/bin/wall low");
    file("/usr/bin/passwd",
         "\x7f"
         "ELF passwd",
         04755);
    allow_setuid("/usr/bin/passwd", std::string(64, '0'));
    w.push_back("setuid.allowlist-mismatch /usr/bin/passwd high");
    dir("/opt/vendor");
    file("/opt/vendor/tool",
         "\x7f"
         "ELF tool",
         04755);
    allow_setuid("/opt/vendor/tool", sha("/opt/vendor/tool"));
    w.push_back("setuid.unexpected-location /opt/vendor/tool high");
    file("/usr/bin/mine",
         "\x7f"
         "ELF mine",
         04755, 1000, 1000);
    allow_setuid("/usr/bin/mine", sha("/usr/bin/mine"));
    w.insert(w.end(), {"setuid.not-root-owned /usr/bin/mine high", "owner.non-root /usr/bin/mine low"});
    file("/usr/bin/backup", "#!/bin/sh\nexec tar -c /\n", 04755);
    allow_setuid("/usr/bin/backup", sha("/usr/bin/backup"));
    w.push_back("setuid.script /usr/bin/backup high");
    file("/usr/bin/linked",
         "\x7f"
         "ELF linked",
         04755);
    allow_setuid("/usr/bin/linked", sha("/usr/bin/linked"));
    EXPECT_EQ(::link((m_root + "/usr/bin/linked").c_str(), path("outside-link").c_str()), 0);
    w.push_back("setuid.hardlinked /usr/bin/linked medium");
    // 2. capabilities: v2 as setcap writes it, v3 with a namespace root, and garbage
    file("/usr/bin/ping",
         "\x7f"
         "ELF ping",
         0755);
    EXPECT_EQ(test::sh("setcap cap_net_raw+ep " + m_root + "/usr/bin/ping").exit_code, 0);
    w.push_back("capability.file /usr/bin/ping medium");
    file("/usr/bin/arping",
         "\x7f"
         "ELF arping",
         0755);
    EXPECT_EQ(test::sh("setcap -n 1000 cap_net_raw+ep " + m_root + "/usr/bin/arping").exit_code, 0);
    allow += "[[allow.capability]]\npath = \"/usr/bin/arping\"\nsha256 = \"" + sha("/usr/bin/arping") + "\"\ncapabilities = [\"cap_net_admin\"]\n";
    w.push_back("capability.allowlist-mismatch /usr/bin/arping high");
    file("/usr/bin/odd",
         "\x7f"
         "ELF odd",
         0755);
    const std::string bad = le32(0x02000000u) + le32(1) + le32(0);  // revision 2 with a revision 1 size
    // Linux refuses malformed values (EINVAL); on a kernel that stores one, it must be reported.
    (void)::lsetxattr((m_root + "/usr/bin/odd").c_str(), "security.capability", bad.data(), bad.size(), 0);
    // 3. writable
    file("/etc/motd", "hello\n", 0666);
    w.push_back("world-writable.file /etc/motd medium");
    dir("/srv/drop", 0777);
    w.push_back("world-writable.dir-no-sticky /srv/drop high");
    dir("/usr/local/bin", 01777);
    w.push_back("world-writable.path-dir /usr/local/bin high");
    dir("/usr/lib/extra", 02775, 0, 50);
    w.push_back("group-writable.path-dir /usr/lib/extra medium");
    // 4. devices
    EXPECT_EQ(::mknod((m_root + "/dev/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
    EXPECT_EQ(::mknod((m_root + "/dev/sda").c_str(), S_IFBLK | 0660, makedev(8, 0)), 0);
    w.push_back("device.node /dev/sda high");
    EXPECT_EQ(::mkfifo((m_root + "/run/fifo").c_str(), 0600), 0);
    w.push_back("device.fifo /run/fifo low");
    EXPECT_EQ(::mknod((m_root + "/run/sock").c_str(), S_IFSOCK | 0600, 0), 0);
    w.push_back("device.socket /run/sock low");
    // 5. ownership
    dir("/home/alice", 0755, 1000, 1000);
    file("/home/alice/.bash_history", "ssh root@10.0.0.1\n", 0600, 1000, 1000);
    w.insert(w.end(), {"owner.non-root /home/alice low", "secret.shell-history /home/alice/.bash_history medium"});
    file("/srv/orphan", "x", 0644, 4242, 4343);
    w.insert(w.end(), {"owner.non-root /srv/orphan low", "owner.unknown-uid /srv/orphan medium", "owner.unknown-gid /srv/orphan medium"});
    // 7. secrets
    dir("/etc/ssh");
    file("/etc/ssh/ssh_host_ed25519_key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n", 0600);
    w.push_back("secret.ssh-host-key /etc/ssh/ssh_host_ed25519_key high");
    dir("/root/.ssh", 0700);
    file("/root/.ssh/authorized_keys", "ssh-ed25519 AAAA admin@laptop\n", 0600);
    w.push_back("secret.authorized-keys /root/.ssh/authorized_keys medium");
    dir("/etc/ssl");
    file("/etc/ssl/site.key", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", 0600);
    w.push_back("secret.private-key /etc/ssl/site.key high");
    file("/root/.netrc", "machine ftp login x password y\n", 0600);
    w.push_back("secret.netrc /root/.netrc high");
    file("/root/.git-credentials", "https://u:t@git.example\n", 0600);
    w.push_back("secret.git-credentials /root/.git-credentials high");
    dir("/root/.aws", 0700);
    file("/root/.aws/credentials", "[default]\naws_secret_access_key = x\n", 0600);
    w.push_back("secret.cloud-credentials /root/.aws/credentials high");
    dir("/root/.docker", 0700);
    file("/root/.docker/config.json", "{\"auths\": {\"registry.example\": {\"auth\": \"dTpw\"}}}\n", 0600);
    w.push_back("secret.docker-credentials /root/.docker/config.json high");
    // 8. leftovers
    file("/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
    w.push_back("leftover.machine-id /etc/machine-id medium");
    file("/etc/resolv.conf", "nameserver 10.0.0.1\n");
    w.push_back("leftover.resolv-conf /etc/resolv.conf low");
    file("/etc/hostname", "buildhost\n");
    w.push_back("leftover.hostname /etc/hostname low");
    file("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0755);
    w.push_back("leftover.policy-rc-d /usr/sbin/policy-rc.d medium");
    file("/usr/bin/qemu-aarch64-static",
         "\x7f"
         "ELF qemu",
         0755);
    w.push_back("leftover.qemu-static /usr/bin/qemu-aarch64-static medium");
    // 9. hooks
    file("/etc/ld.so.preload", "/lib/libevil.so\n");
    w.push_back("hook.ld-so-preload /etc/ld.so.preload high");
    dir("/etc/sudoers.d", 0750);
    file("/etc/sudoers.d/ci", "ci ALL=(ALL) NOPASSWD: ALL\n", 0440);
    w.push_back("hook.sudoers-nopasswd /etc/sudoers.d/ci high");
    // 10. symlinks
    EXPECT_EQ(::symlink("/usr/bin/su", (m_root + "/etc/alt").c_str()), 0);
    w.push_back("symlink.absolute /etc/alt info");
    EXPECT_EQ(::symlink("../../../etc/shadow", (m_root + "/usr/bin/up").c_str()), 0);
    w.push_back("symlink.escapes-root /usr/bin/up info");
    // 11. drift, after the manifest: one entry added, one removed, one changed in place, and
    // /srv whose mtime alone changed with them.
    file("/srv/removed", "bye\n");
    file("/srv/changed", "before\n");
    auto m = run_chrootctl({"manifest", "create", "-q", m_root, "-o", build + "/manifest"});
    EXPECT_EQ(m.exit_code, 0) << m.err;
    file("/srv/added", "new\n");
    EXPECT_EQ(::unlink((m_root + "/srv/removed").c_str()), 0);
    test::write_file(m_root + "/srv/changed", "after!\n");
    w.insert(w.end(),
             {"drift.added /srv/added high", "drift.removed /srv/removed high", "drift.changed /srv/changed high", "drift.mtime-only /srv info"});
    test::write_file(policy, allow, 0600);
    std::sort(w.begin(), w.end());
    std::string out;
    for (const auto& x : w) out += x + "\n";
    // capability.malformed is checked separately: the kernel refuses to store a malformed value.
    return out;
  }

  std::string m_root;
};

TEST_F(AuditPrivileged, SeededImageReportsEachFindingOnceWithItsSeverity) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_PRIVILEGE("mknod");
  CHROOTCTL_REQUIRE_TOOL("setcap");
  const std::string build = path("b"), policy = path("policy.toml");
  std::string want = seed(build, policy);
  // The kernel stores only well-formed capability values; whether it kept ours decides
  // whether capability.malformed can be seen on disk (it is covered in memory by unit tests).
  const bool malformed_stored = ::lgetxattr((m_root + "/usr/bin/odd").c_str(), "security.capability", nullptr, 0) > 0;
  if (malformed_stored) {
    want += "capability.malformed /usr/bin/odd high\n";
    std::vector<std::string> lines;
    for (std::size_t p = 0; p < want.size();) {
      const auto nl = want.find('\n', p);
      lines.push_back(want.substr(p, nl - p));
      p = nl + 1;
    }
    std::sort(lines.begin(), lines.end());
    want.clear();
    for (const auto& l : lines) want += l + "\n";
  }

  auto r = run_chrootctl({"audit", "-q", "--json", "--policy", policy, build});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(validate(r.out), "valid\n") << r.out;
  EXPECT_EQ(findings(r.out), want);

  // Every check id is seeded (the malformed capability where the kernel keeps one), but
  // seccomp.none, which is about a catalogue entry, not a tree (seccomp_images_test.cpp).
  // store.reachable-privileged: the seeded tree lies in the test's 0700 directory, which keeps
  // host users out (boundary_test.cpp opens one and sees it reported).
  std::set<std::string> seen;
  for (std::size_t p = 0; p < want.size();) {
    const auto nl = want.find('\n', p);
    seen.insert(want.substr(p, want.find(' ', p) - p));
    p = nl + 1;
  }
  for (const auto& c : audit::checks())
    if ((c.id != "capability.malformed" || malformed_stored) && c.id != "seccomp.none" && c.id != "store.reachable-privileged") {
      EXPECT_TRUE(seen.count(std::string(c.id))) << c.id;
    }

  // The library's view: decoded capabilities, v3 with its namespace root.
  auto pol = audit::load_policy(policy);
  ASSERT_TRUE(pol) << pol.error().what();
  auto target = audit::target_from_build_dir(build);
  ASSERT_TRUE(target) << target.error().what();
  auto report = audit::audit(*target, *pol);
  ASSERT_TRUE(report) << report.error().what();
  const audit::Finding* v2 = nullptr;
  const audit::Finding* v3 = nullptr;
  for (const auto& f : report->findings) {
    if (f.path == "/usr/bin/ping") v2 = &f;
    if (f.path == "/usr/bin/arping") v3 = &f;
  }
  ASSERT_TRUE(v2 && v2->capabilities && v3 && v3->capabilities);
  EXPECT_EQ(v2->capabilities->version, 2);
  EXPECT_EQ(v3->capabilities->version, 3);
  EXPECT_EQ(v3->capabilities->rootid, 1000u);
  // The same text as libcap's getcap -n.
  EXPECT_EQ(test::run({"getcap", "-n", m_root + "/usr/bin/ping"}).out, m_root + "/usr/bin/ping " + v2->detail + "\n");
  EXPECT_EQ(v3->detail, "capabilities cap_net_raw=ep [rootid=1000] but the allow-list has cap_net_admin");
  EXPECT_EQ(test::run({"getcap", "-n", m_root + "/usr/bin/arping"}).out, m_root + "/usr/bin/arping cap_net_raw=ep [rootid=1000]\n");
  EXPECT_EQ(report->drift_differences, 3u);
  ::unlink(path("outside-link").c_str());
}

TEST_F(AuditPrivileged, PolicyAllowListEntrySuppressesExactlyThatFindingOnDisk) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_PRIVILEGE("mknod");
  CHROOTCTL_REQUIRE_TOOL("setcap");
  const std::string build = path("b"), policy = path("policy.toml");
  seed(build, policy);
  const std::string before = findings(run_chrootctl({"audit", "-q", "--json", "--policy", policy, build}).out);
  auto without = [&](const std::string& line) {
    std::string s = before;
    const auto at = s.find(line + "\n");
    EXPECT_NE(at, std::string::npos) << line << " not in\n" << before;
    return at == std::string::npos ? s : s.erase(at, line.size() + 1);
  };
  const std::string base = test::read_file(policy);
  struct Case {
    std::string extra;
    std::string removed;
  };
  const std::vector<Case> cases = {
      {"[[allow.setuid]]\npath = \"/usr/bin/su\"\nsha256 = \"" + sha("/usr/bin/su") + "\"\n", "setuid.unlisted /usr/bin/su medium"},
      {"[[allow.setuid]]\npath = \"/usr/bin/wall\"\nsha256 = \"" + sha("/usr/bin/wall") + "\"\n", "setgid.unlisted /usr/bin/wall low"},
      {"[[allow.capability]]\npath = \"/usr/bin/ping\"\nsha256 = \"" + sha("/usr/bin/ping") + "\"\ncapabilities = [\"cap_net_raw\"]\n",
       "capability.file /usr/bin/ping medium"},
      {"[[allow.device]]\npath = \"/dev/sda\"\ntype = \"block\"\nmajor = 8\nminor = 0\n", "device.node /dev/sda high"},
      {"[[allow.device]]\npath = \"/run/sock\"\ntype = \"socket\"\n", "device.socket /run/sock low"},
      {"[[allow.account]]\nname = \"toor\"\nuid = 0\n", "account.extra-uid0 /etc/passwd toor high"},
      {"[[allow.account]]\nname = \"bob\"\nuid = 1000\n", "account.duplicate-uid /etc/passwd bob medium"},
      {"[[allow.account]]\nname = \"alice\"\npassword = true\n", "account.password-hash /etc/shadow alice high"},
  };
  for (const auto& c : cases) {
    const std::string p = path("case.toml");
    test::write_file(p, base + c.extra, 0600);
    auto r = run_chrootctl({"audit", "-q", "--json", "--policy", p, build});
    EXPECT_EQ(findings(r.out), without(c.removed)) << c.extra;
  }
  ::unlink(path("outside-link").c_str());
}

// Two images registered in a catalogue: audited by name, by --all, and compared by name.
TEST_F(AuditPrivileged, CatalogueNamesAndAll) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  const std::string store = path("store");
  for (const char* name : {"alpha", "beta"}) {
    const std::string b = store + "/" + name + "/1";
    test::mkdirs(b + "/root/etc");
    test::write_file(b + "/root/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    test::write_file(b + "/root/etc/group", "root:x:0:\n");
    test::write_file(b + "/root/etc/shadow", "root:*:1::::::\n", 0600);
    test::write_file(b + "/root/etc/gshadow", "root:*::\n", 0600);
    if (std::string(name) == "beta") test::write_file(b + "/root/etc/motd", "hi\n", 0666);
    ASSERT_EQ(run_chrootctl({"manifest", "create", "-q", b + "/root", "-o", b + "/manifest"}).exit_code, 0);
    auto add = run_chrootctl({"add", "-q", name, b, "--store", store});
    ASSERT_EQ(add.exit_code, 0) << add.out << add.err;
  }
  auto one = run_chrootctl({"audit", "-q", "alpha", "--store", store});
  EXPECT_EQ(one.exit_code, 0) << one.out << one.err;
  EXPECT_EQ(one.out, "audit of alpha (" + store +
                         "/alpha/1/root): 6 entries\n\nalpha: 0 high, 0 medium, 0 low, 0 info; matches its manifest; no package database\n");

  auto all = run_chrootctl({"audit", "-q", "--all", "--store", store});
  EXPECT_EQ(all.exit_code, 1) << all.err;
  EXPECT_NE(all.out.find("\nbeta: 0 high, 1 medium, 0 low, 0 info; matches its manifest; no package database\n"), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("\n\n2 images: 0 high, 1 medium, 0 low, 0 info\n"), std::string::npos) << all.out;
  auto json = run_chrootctl({"audit", "-q", "--all", "--json", "--store", store});
  EXPECT_EQ(validate(json.out), "valid\n");
  EXPECT_EQ(findings(json.out), "world-writable.file /etc/motd medium\n");
  EXPECT_NE(json.out.find("\"name\": \"alpha\""), std::string::npos);

  auto unknown = run_chrootctl({"audit", "-q", "alpah", "--store", store});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_EQ(unknown.err,
            "chrootctl: error: 'alpah' is not in the catalogue " + store + "/catalogue.toml and is not a build directory (did you mean 'alpha'?)\n");

  auto d = run_chrootctl({"diff", "alpha", "beta", "--store", store});
  EXPECT_EQ(d.exit_code, 1) << d.err;
  EXPECT_NE(d.out.find("\nentries: 1 added, 0 removed, 0 changed"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("  added /etc/motd\n"), std::string::npos) << d.out;

  test::mkdirs(path("empty-store"));
  auto empty = run_chrootctl({"audit", "--all", "--store", path("empty-store")});
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_EQ(empty.err, "chrootctl: error: the catalogue has no images to audit\n");
}

// An rpm database made at test time (rpmbuild, then rpm --root -i) is read through a private
// copy, and the image is not written.
TEST_F(AuditPrivileged, PackagesFromAnRpmDatabase) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_TOOL("rpmbuild");
  CHROOTCTL_REQUIRE_TOOL("rpm");
  const std::string top = path("rpmbuild");
  test::mkdirs(top + "/SPECS");
  test::write_file(top + "/SPECS/hello.spec",
                   "Name: chrootctl-hello\nVersion: 1.2\nRelease: 3\nEpoch: 4\nSummary: test\nLicense: MIT\nBuildArch: noarch\n"
                   "%description\ntest\n%install\nmkdir -p %{buildroot}/usr/share/hello\necho hi > %{buildroot}/usr/share/hello/hi\n"
                   "%files\n/usr/share/hello/hi\n");
  auto b = test::sh("HOME=" + path("") + " rpmbuild -bb --quiet --define '_topdir " + top + "' " + top + "/SPECS/hello.spec 2>&1");
  ASSERT_EQ(b.exit_code, 0) << b.out;
  const std::string build = path("el"), root = build + "/root";
  test::mkdirs(root);
  auto i = test::sh("rpm --root " + root + " --dbpath /var/lib/rpm --initdb && rpm --root " + root +
                    " --dbpath /var/lib/rpm -i --nodeps --nosignature " + top + "/RPMS/noarch/chrootctl-hello-1.2-3.noarch.rpm 2>&1");
  ASSERT_EQ(i.exit_code, 0) << i.out;
  ASSERT_EQ(run_chrootctl({"manifest", "create", "-q", root, "-o", build + "/manifest"}).exit_code, 0);

  auto r = run_chrootctl({"audit", "-q", "--json", "--policy", empty_policy(), build});
  EXPECT_EQ(validate(r.out), "valid\n") << r.out;
  auto py = test::run(
      {"python3", "-c", "import json,sys; p=json.load(sys.stdin)['images'][0]['packages']; print(p['source'], p['database'], p['list'])"}, r.out);
  EXPECT_EQ(py.out, "rpm /var/lib/rpm/rpmdb.sqlite [{'name': 'chrootctl-hello', 'version': '4:1.2-3', 'arch': 'noarch'}]\n") << r.out;
  // rpm ran on a copy: the image still matches its manifest, and no copy is left behind.
  auto check = run_chrootctl({"manifest", "check", "-q", root, build + "/manifest"});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  EXPECT_EQ(test::sh("ls /tmp | grep -c '^chrootctl-rpmdb\\.' || true").out, "0\n");

  // Without rpm on the host the packages are unknown, with the reason, and that is no error.
  auto none = run_chrootctl({"audit", "-q", "--policy", empty_policy(), build}, {{"CHROOTCTL_RPM", path("no-rpm")}});
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_NE(none.out.find("\n  packages unknown: the image has an rpm database (/var/lib/rpm/rpmdb.sqlite) but this host has no rpm "
                          "(install the Debian package 'rpm')\n"),
            std::string::npos)
      << none.out;
  EXPECT_NE(none.out.find("; packages unknown\n"), std::string::npos) << none.out;

  // A database rpm cannot read is unknown too, with rpm's own words.
  test::write_file(root + "/var/lib/rpm/rpmdb.sqlite", "this is not a database");
  ASSERT_EQ(run_chrootctl({"manifest", "create", "-q", root, "-o", build + "/manifest"}).exit_code, 0);
  auto broken = run_chrootctl({"audit", "-q", "--policy", empty_policy(), build});
  EXPECT_EQ(broken.exit_code, 0) << broken.err;
  EXPECT_NE(broken.out.find("  packages unknown: rpm could not read /var/lib/rpm/rpmdb.sqlite (exited with status 1: "), std::string::npos)
      << broken.out;
}

// rpm parses the image's database without privileges: under a transient uid and gid no other
// process has, without supplementary groups or new privileges, with a clean environment. A
// probe stands in for rpm and reports what it runs as, in rpm's output format.
TEST_F(AuditPrivileged, RpmRunsUnderATransientUidWithoutPrivileges) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  const std::string build = path("el"), root = build + "/root";
  test::mkdirs(root + "/var/lib/rpm");
  test::write_file(root + "/var/lib/rpm/rpmdb.sqlite", "not read by the probe");
  ASSERT_EQ(run_chrootctl({"manifest", "create", "-q", root, "-o", build + "/manifest"}).exit_code, 0);
  ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0);  // the probe must be reachable by the transient uid
  const std::string probe = path("rpm-probe");
  test::write_file(probe,
                   "#!/bin/sh\n"
                   "printf 'uid\\t%s\\tx\\n' \"$(id -u)\"\n"
                   "printf 'gid\\t%s\\tx\\n' \"$(id -g)\"\n"
                   "printf 'groups\\t%s\\tx\\n' \"$(id -G)\"\n"
                   "printf 'nnp\\t%s\\tx\\n' \"$(awk '/^NoNewPrivs/ {print $2}' /proc/self/status)\"\n"
                   "printf 'env\\t%s\\tx\\n' \"$(env | cut -d= -f1 | grep -v '^PWD$' | sort | tr '\\n' ' ')\"\n"
                   "printf 'cwd-mode\\t%s\\tx\\n' \"$(stat -c '%a %u' .)\"\n",
                   0755);
  auto r = run_chrootctl({"audit", "-q", "--json", "--policy", empty_policy(), build}, {{"CHROOTCTL_RPM", probe}, {"SECRET_TOKEN", "x"}});
  ASSERT_EQ(validate(r.out), "valid\n") << r.out << r.err;
  auto py = test::run({"python3", "-c",
                       "import json,sys; p=json.load(sys.stdin)['images'][0]['packages']\n"
                       "v={x['name']: x['version'] for x in p['list']}\n"
                       "uid=int(v['uid']); print(p['source'], 0x70000000 <= uid < 0x7ffff000, v['gid'] == v['uid'], v['groups'] == v['gid'],"
                       " v['nnp'], repr(v['env']), v['cwd-mode'] == '700 ' + v['uid'])"},
                      r.out);
  EXPECT_EQ(py.out, "rpm True True True 1 'HOME LC_ALL PATH ' True\n") << r.out;
}

// RHEL 5-8 images keep a Berkeley DB hash database (/var/lib/rpm/Packages), which the host's rpm
// reads with its read-only bdb_ro backend. The database is made here from an sqlite one, with
// db5.3_load, the way librpm lays it out: key = header number, value = header blob, and key 0
// holding the last header number.
TEST_F(AuditPrivileged, PackagesFromABerkeleyDbRpmDatabase) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_TOOL("rpmbuild");
  CHROOTCTL_REQUIRE_TOOL("rpm");
  CHROOTCTL_REQUIRE_TOOL("db5.3_load");
  const std::string top = path("rpmbuild");
  test::mkdirs(top + "/SPECS");
  test::write_file(top + "/SPECS/old.spec",
                   "Name: chrootctl-old\nVersion: 0.9\nRelease: 1.el5\nSummary: test\nLicense: MIT\nBuildArch: noarch\n"
                   "%description\ntest\n%install\nmkdir -p %{buildroot}/usr/share/old\necho hi > %{buildroot}/usr/share/old/hi\n"
                   "%files\n/usr/share/old/hi\n");
  auto b = test::sh("HOME=" + path("") + " rpmbuild -bb --quiet --define '_topdir " + top + "' " + top + "/SPECS/old.spec 2>&1");
  ASSERT_EQ(b.exit_code, 0) << b.out;
  const std::string staging = path("staging");
  auto i = test::sh("rpm --root " + staging + " --dbpath /var/lib/rpm --initdb && rpm --root " + staging +
                    " --dbpath /var/lib/rpm -i --nodeps --nosignature " + top + "/RPMS/noarch/chrootctl-old-0.9-1.el5.noarch.rpm 2>&1");
  ASSERT_EQ(i.exit_code, 0) << i.out;
  const std::string build = path("el5"), root = build + "/root";
  test::mkdirs(root + "/var/lib/rpm");
  auto dump = test::run({"python3", "-c", R"PY(
import sqlite3, struct, sys
rows = list(sqlite3.connect(sys.argv[1]).execute("select hnum, blob from Packages"))
out = ["VERSION=3", "format=bytevalue", "type=hash", "HEADER=END"]
for k, v in [(0, struct.pack("<I", max(h for h, _ in rows)))] + [(h, bytes(b)) for h, b in rows]:
    out += [" " + struct.pack("<I", k).hex(), " " + v.hex()]
print("\n".join(out + ["DATA=END"]))
)PY",
                         staging + "/var/lib/rpm/rpmdb.sqlite"});
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  test::write_file(path("load.txt"), dump.out);
  auto load = test::run({"db5.3_load", "-f", path("load.txt"), root + "/var/lib/rpm/Packages"});
  ASSERT_EQ(load.exit_code, 0) << load.err;
  ASSERT_EQ(run_chrootctl({"manifest", "create", "-q", root, "-o", build + "/manifest"}).exit_code, 0);

  auto r = run_chrootctl({"audit", "-q", "--json", "--policy", empty_policy(), build});
  EXPECT_EQ(validate(r.out), "valid\n") << r.out;
  auto py = test::run(
      {"python3", "-c", "import json,sys; p=json.load(sys.stdin)['images'][0]['packages']; print(p['source'], p['database'], p['list'])"}, r.out);
  EXPECT_EQ(py.out, "rpm /var/lib/rpm/Packages [{'name': 'chrootctl-old', 'version': '0.9-1.el5', 'arch': 'noarch'}]\n") << r.out;
  EXPECT_EQ(run_chrootctl({"manifest", "check", "-q", root, build + "/manifest"}).exit_code, 0);
}

// A clean stripped debian12 build, made with `chrootctl build debian12`, reports nothing high.
TEST_F(AuditPrivileged, CleanStrippedDebian12HasNothingHigh) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  CHROOTCTL_REQUIRE_TOOL("mmdebstrap");
  const std::string store = path("store");
  auto b = run_chrootctl({"build", "-q", "debian12", "--store", store});
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  // "path BUILD-DIR" names the build; registering it is the catalogue's job.
  const auto at = b.out.find("\npath ");
  ASSERT_NE(at, std::string::npos) << b.out;
  const std::string dir = b.out.substr(at + 6, b.out.find('\n', at + 6) - at - 6);
  auto add = run_chrootctl({"add", "-q", "debian12", dir, "--store", store});
  ASSERT_EQ(add.exit_code, 0) << add.out << add.err;

  auto r = run_chrootctl({"audit", "-q", "--severity", "high", "--policy", empty_policy(), "debian12", "--store", store});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("debian12: 0 high, "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("; matches its manifest; "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" packages (dpkg)\n"), std::string::npos) << r.out;

  auto j = run_chrootctl({"audit", "-q", "--json", "--policy", empty_policy(), "debian12", "--store", store});
  EXPECT_EQ(validate(j.out), "valid\n");
  auto counts = test::run({"python3", "-c",
                           "import json,sys; i=json.load(sys.stdin)['images'][0]; print(i['counts']['high'], len(i['packages']['list']) > 50,"
                           " [f['check'] for f in i['findings'] if f['severity'] == 'high'])"},
                          j.out);
  EXPECT_EQ(counts.out, "0 True []\n") << j.out;
}

}  // namespace
}  // namespace chrootctl
