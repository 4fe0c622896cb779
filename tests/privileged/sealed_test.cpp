// Sealed images (docs/sealed.md): built reproducibly, matching their manifest when mounted, run
// by name through one shared mount per node, checked without dm-verity by their SHA-256, and
// leaving nothing behind, also after a killed launcher. The suite runs on the development
// machine (no device-mapper: the SHA-256 path) and in the VM stage (Debian's 6.1 with dm-verity:
// the verity path, tests/vm/suites.txt), with the same expectations on what a job sees.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "chrootctl/launcher/idmap.hpp"
#include "sealed_fixture.hpp"

namespace chrootctl {
namespace {

using namespace test::sealed;
using test::read_file;

constexpr std::uint64_t k_erofs_magic = 0xE0F5E1E2;

// Whether this kernel can mount the image idmapped, by the launcher's table (which
// IdmapErofs checks against the kernel itself).
bool erofs_idmappable() {
  struct utsname u {};
  ::uname(&u);
  int major = 0, minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
  return !launcher::idmap_unsupported(k_erofs_magic, major, minor);
}

class SealedImage : public SealedFixture {
 protected:
  void SetUp() override {
    SealedFixture::SetUp();
    if (HasFatalFailure()) return;
    CHROOTCTL_REQUIRE_PRIVILEGE("root");
    CHROOTCTL_REQUIRE_PRIVILEGE("mount-ns");
    CHROOTCTL_REQUIRE_TOOL("mkfs.erofs");
    CHROOTCTL_REQUIRE_TOOL("busybox");
  }
  // "verified" with dm-verity, "none" without (the SHA-256 check when it was mounted).
  std::string expected_verity() const { return have_device_mapper() ? "verified" : "none"; }
};

TEST_F(SealedImage, TheSameRecipeGivesTheSameFileAndRootHash) {
  build("repro");
  const std::string first_image = image, first_sha = sha256, first_root = root_hash;
  ASSERT_FALSE(first_sha.empty());
  // Another store, so nothing is reused: a second build from the same recipe and inputs.
  const std::string other = path("store2");
  auto b = ctl({"build", path("repro.toml"), "--store", other, "--json"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(json_value(b.out, "cached"), "false");
  EXPECT_EQ(json_value(b.out, "sha256"), first_sha);
  EXPECT_EQ(json_value(b.out, "root_hash"), first_root);
  EXPECT_EQ(read_file(json_value(b.out, "file")), read_file(first_image)) << "the image files differ";
  // The manifest records both, and the lock too; the tree is gone, only the file is kept.
  const std::string manifest = read_file(build_dir + "/manifest");
  EXPECT_NE(manifest.find("\n#sealed erofs size="), std::string::npos) << manifest.substr(0, 300);
  EXPECT_NE(manifest.find(" sha256=" + first_sha + " "), std::string::npos);
  EXPECT_NE(manifest.find(" root-hash=" + first_root + " "), std::string::npos);
  const std::string lock = read_file(build_dir + "/lock");
  EXPECT_NE(lock.find("sealed_sha256 = \"sha256:" + first_sha + "\""), std::string::npos) << lock;
  EXPECT_NE(lock.find("sealed_root_hash = \"sha256:" + first_root + "\""), std::string::npos) << lock;
  struct stat st {};
  EXPECT_NE(::lstat((build_dir + "/root").c_str(), &st), 0) << "a sealed build keeps no tree";
  // The file's SHA-256 as an independent tool computes it.
  auto sum = test::run({"sha256sum", first_image});
  EXPECT_EQ(sum.out.substr(0, 64), first_sha);
}

TEST_F(SealedImage, TheMountedImageMatchesTheManifestExactly) {
  build("match");
  auto m = ctl({"mount", "match", "--store", store});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  const std::string root = m.out.substr(0, m.out.size() - 1);
  EXPECT_EQ(root, key_dir() + "/root");
  // Every entry, mtimes included: no difference at all, not even mtime-only.
  auto check = ctl({"manifest", "check", root, build_dir + "/manifest", "--json"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_EQ(json_value(check.out, "differences"), "[]") << check.out;
  auto u = ctl({"unmount", "match", "--store", store});
  EXPECT_EQ(u.exit_code, 0) << u.err;
  expect_nothing_left();
}

TEST_F(SealedImage, RunsByNameLikeADirectoryRootAndLeavesNothing) {
  build("plain");
  const std::string status = path("status.json");
  auto r = ctl({"run", "plain", "--store", store, "--sandbox", sandbox, "--user", "nobody", "--status-json", status, "--", "/bin/sh", "-c",
                "id -u; head -c 30 /srv/marker; echo; stat -c '%u %a' /bin/busybox; touch /srv/x 2>/dev/null || echo read-only"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string owner = erofs_idmappable() ? "0" : "65534";  // identity mode shows root's files as the overflow id
  EXPECT_EQ(r.out, "65534\nchrootctl sealed marker line 0\n" + owner + " 755\nread-only\n");
  const std::string json = read_file(status);
  EXPECT_EQ(json_value(json, "image"), image) << json;
  EXPECT_EQ(json_value(json, "mount"), key_dir() + "/root") << json;
  EXPECT_EQ(json_value(json, "verity"), expected_verity()) << json;
  expect_nothing_left();

  // A job as root: in its own id block where the kernel can idmap the image, else refused.
  auto root =
      ctl({"run", "plain", "--store", store, "--sandbox", sandbox, "--user", "root", "--", "/bin/sh", "-c", "id -u; stat -c %u /bin/busybox"});
  if (erofs_idmappable()) {
    EXPECT_EQ(root.exit_code, 0) << root.err;
    EXPECT_EQ(root.out, "0\n0\n");
  } else {
    EXPECT_EQ(root.exit_code, 125) << root.out;
    EXPECT_NE(root.err.find("a job as root needs its image mounted idmapped, and the image " + key_dir() + "/root is on erofs"), std::string::npos)
        << root.err;
  }
  expect_nothing_left();
}

TEST_F(SealedImage, TwentyConcurrentLaunchesShareOneMountAndLeaveNone) {
  build("shared");
  std::vector<pid_t> pids;
  pids.reserve(20);
  // Each job waits for SANDBOX/go (at most 60 s), so that all twenty run at once however slowly
  // a loaded machine starts them.
  const std::string wait_go = "i=0; while [ ! -e '" + sandbox + "/go' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done";
  for (int i = 0; i < 20; ++i)
    pids.push_back(spawn({"run", "shared", "--store", store, "--sandbox", sandbox, "--user", "nobody", "--", "/bin/sh", "-c", wait_go}));
  // Every launch holds the mount while its job runs: twenty holders, one mount.
  EXPECT_TRUE(wait_until([&] { return holders() == 20; }, 50)) << holders() << " holders";
  EXPECT_EQ(mounts_under(state).size(), 1u);
  EXPECT_EQ(loops_backed_by(image).size(), 1u);
  EXPECT_EQ(chrootctl_dm_devices().size(), have_device_mapper() ? 1u : 0u);
  test::write_file(sandbox + "/go", "");
  for (pid_t p : pids) {
    int st = 0;
    ASSERT_EQ(::waitpid(p, &st, 0), p);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "a launch ended with status " << st;
  }
  expect_nothing_left();
}

TEST_F(SealedImage, AKilledLauncherIsReclaimedByCleanup) {
  build("killed");
  const pid_t pid = spawn({"run", "killed", "--store", store, "--sandbox", sandbox, "--user", "nobody", "--", "/bin/sleep", "61"});
  // (The pattern does not match the shell that runs pgrep.)
  auto job_runs = [] { return test::sh("pgrep -f '^/bin/sleep 6[1]$' >/dev/null").exit_code == 0; };
  ASSERT_TRUE(wait_until([&] { return holders() == 1; }, 30));
  ASSERT_TRUE(wait_until(job_runs, 30)) << "the job did not start";
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  // The launcher is gone; its hold and the mount stay until cleanup.
  EXPECT_EQ(holders(), 1u);
  EXPECT_EQ(mounts_under(state).size(), 1u);
  auto c = ctl({"cleanup", "--json"});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  EXPECT_NE(c.out.find(key_dir() + "/holders/" + std::to_string(pid) + "."), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("\"unmounted_sealed\": [\n    \"" + key_dir() + "\""), std::string::npos) << c.out;
  expect_nothing_left();
  EXPECT_TRUE(wait_until([&] { return !job_runs(); }, 10)) << "the job survived";
}

TEST_F(SealedImage, WithoutVerityAChangedFileIsRefusedAtLaunch) {
  set_config("sealed_verity = false\n");
  build("flipped");
  auto ok = ctl({"run", "flipped", "--store", store, "--sandbox", sandbox, "--user", "nobody", "--", "/bin/true"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  // Checked once: the record of this boot's check names the file's identity.
  EXPECT_EQ(read_file(state + "/sealed/checked/" + sha256).empty(), false);
  ASSERT_GT(flip_byte_of(image, marker_text()), 0);
  auto refused = ctl({"run", "flipped", "--store", store, "--sandbox", sandbox, "--user", "nobody", "--", "/bin/true"});
  EXPECT_EQ(refused.exit_code, 125) << refused.out;
  EXPECT_NE(refused.err.find("the image file " + image + " has SHA-256 "), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find(", not the recorded " + sha256 + "; it was changed since it was verified"), std::string::npos) << refused.err;
  expect_nothing_left();
  // A full verification finds it too, and records the failure.
  auto v = ctl({"verify", "flipped", "--store", store});
  EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
  EXPECT_NE((v.out + v.err).find("has SHA-256"), std::string::npos) << v.out << v.err;
}

TEST_F(SealedImage, WithoutVerityAFileChangedWhileMountedIsRefused) {
  set_config("sealed_verity = false\n");
  build("changed");
  ASSERT_EQ(ctl({"mount", "changed", "--store", store}).exit_code, 0);
  ASSERT_EQ(::chmod(image.c_str(), 0644), 0);  // same bytes, but a new ctime: not the file that was checked
  auto refused = ctl({"run", "changed", "--store", store, "--sandbox", sandbox, "--user", "nobody", "--", "/bin/true"});
  EXPECT_EQ(refused.exit_code, 125) << refused.out;
  EXPECT_NE(refused.err.find("the sealed image " + image + " changed since it was checked and mounted"), std::string::npos) << refused.err;
  EXPECT_EQ(ctl({"unmount", "changed", "--store", store}).exit_code, 0);
  expect_nothing_left();
}

TEST_F(SealedImage, ALauncherWithoutRootUsesAMountedImageOrIsToldWhy) {
  // An image unprivileged launchers use is readable (docs/catalogue.md), sealed or not.
  set_config("readable_images = [\"user\"]\n");
  build("user");
  test::mkdirs(state);
  ASSERT_EQ(::chmod(state.c_str(), 0755), 0);
  const std::string as_nobody = "cd / && CHROOTCTL_STATE_DIR='" + state + "' CHROOTCTL_CONFIG='" + config +
                                "' setpriv --reuid 65534 --regid 65534 --clear-groups " CHROOTCTL_BIN " run user --store '" + store +
                                "' --sandbox '" + sandbox + "' -- /bin/sh -c 'head -c 30 /srv/marker'";
  auto refused = test::sh(as_nobody);
  EXPECT_EQ(refused.exit_code, 125) << refused.out;
  EXPECT_NE(refused.err.find("is not mounted on this node"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("mounting it needs root: ask the site to keep it mounted ('chrootctl mount NAME' as root), or to publish "
                             "a directory image for launches without root ('chrootctl publish')"),
            std::string::npos)
      << refused.err;
  ASSERT_EQ(ctl({"mount", "user", "--store", store}).exit_code, 0);
  auto ran = test::sh(as_nobody);
  EXPECT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_EQ(ran.out, "chrootctl sealed marker line 0");
  ASSERT_EQ(ctl({"unmount", "user", "--store", store}).exit_code, 0);
  expect_nothing_left();
}

TEST_F(SealedImage, VerifyChecksTheFileAndItsHashTree) {
  build("verified");
  auto v = ctl({"verify", "verified", "--store", store});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  auto fast = ctl({"verify", "--fast", "verified", "--store", store});
  EXPECT_EQ(fast.exit_code, 0) << fast.out << fast.err;
  // A byte of the hash tree changed: the file's SHA-256 and its tree both disagree.
  const std::string data = read_file(image);
  const auto hash_offset = std::stoul(test::sh("sed -n 2p '" + build_dir + "/manifest' | sed 's/.*hash-offset=\\([0-9]*\\).*/\\1/'").out);
  ASSERT_LT(hash_offset + 4096 + 10, data.size());
  const int fd = ::open(image.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const char b = static_cast<char>(data[hash_offset + 4096 + 10] ^ 0x40);  // a hash block, past the superblock
  ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(hash_offset + 4096 + 10)), 1);
  ::close(fd);
  auto bad = ctl({"verify", "verified", "--store", store});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  auto res = ctl({"resolve", "verified", "--store", store});
  EXPECT_EQ(res.exit_code, 1) << res.out;
  EXPECT_NE(res.err.find("failed"), std::string::npos) << res.err;
}

// The signature's tree digest, and what audit, diff and show read, are the manifest's: a
// manifest of another tree beside a genuine image file (its #sealed line copied) must not be
// signed or registered, though the file's SHA-256 and hash tree check out.
TEST_F(SealedImage, AManifestOfAnotherTreeBesideTheImageIsNeitherSignedNorAdded) {
  build("genuine");
  const std::string other = path("other");
  test::mkdirs(other + "/etc");
  test::write_file(other + "/etc/os-release", "ID=other\n");
  auto m = ctl({"manifest", "create", other, "-o", path("other.manifest")});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  const std::string fake = store + "/genuine/fake1";
  ASSERT_EQ(test::sh("cp -a '" + build_dir + "' '" + fake + "' && rm -f '" + fake + "/signature' && { sed -n 1p '" + path("other.manifest") +
                     "'; sed -n 2p '" + build_dir + "/manifest'; sed -n '2,$p' '" + path("other.manifest") + "'; } > '" + fake + "/manifest'")
                .exit_code,
            0);
  auto add = ctl({"add", "FAKE", fake, "--store", store});
  EXPECT_EQ(add.exit_code, 1) << add.out;
  EXPECT_NE(add.err.find("refusing to add '" + fake + "' as 'FAKE': the filesystem in " + fake +
                         "/image.erofs is not the tree its manifest "
                         "describes ("),
            std::string::npos)
      << add.err;
  auto g = ctl({"key", "generate", "--out", path("keys")});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  const std::string key = test::sh("ls '" + path("keys") + "'/*.key").out;
  auto sign = ctl({"sign", fake, "--key", key.substr(0, key.size() - 1), "--store", store});
  EXPECT_EQ(sign.exit_code, 1) << sign.out;
  EXPECT_NE(sign.err.find("refusing to sign '" + fake + "': the filesystem in " + fake + "/image.erofs is not the tree its manifest describes ("),
            std::string::npos)
      << sign.err;
  EXPECT_FALSE(test::sh("test -e '" + fake + "/signature'").exit_code == 0);
  // The genuine build, checked the same way, is added and signed.
  EXPECT_EQ(ctl({"add", "AGAIN", build_dir, "--store", store}).exit_code, 0);
  auto ok = ctl({"sign", build_dir, "--key", key.substr(0, key.size() - 1), "--store", store});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// A mount is named by its image file's SHA-256, which dm-verity never computes: a build
// directory claiming that SHA-256 with another hash tree must not be given, nor give, the mount.
TEST_F(SealedImage, AMountIsSharedOnlyWithImagesOfTheSameHashTree) {
  set_config("sealed_keep_mounted = true\n");
  build("shared");
  ASSERT_EQ(ctl({"mount", "shared", "--store", store}).exit_code, 0);
  const std::string fake = store + "/shared/other1";
  ASSERT_EQ(test::sh("cp -a '" + build_dir + "' '" + fake + "' && sed -i '2s/root-hash=[0-9a-f]*/root-hash=" + std::string(64, '0') + "/' '" + fake +
                     "/manifest'")
                .exit_code,
            0);
  auto a = ctl({"audit", fake});
  EXPECT_EQ(a.exit_code, 2) << a.out;
  EXPECT_NE(a.err.find("but another hash tree than " + fake + "/image.erofs describes (root hash " + std::string(64, '0') + "); it is not used"),
            std::string::npos)
      << a.err;
  EXPECT_EQ(ctl({"audit", build_dir}).exit_code, 0) << "the image's own build directory shares it";
  ASSERT_EQ(ctl({"unmount", "shared", "--store", store}).exit_code, 0);
}

// A full verify of a sealed image parses its manifest only when its bytes are not the ones that
// last passed: their SHA-256 is recorded in the catalogue at add and after each full pass.
TEST_F(SealedImage, VerifyParsesTheManifestOnlyWhenItsBytesChanged) {
  build("described");
  const std::string manifest = build_dir + "/manifest";
  const std::string catalogue = store + "/catalogue.toml";
  auto sha_of = [](const std::string& file) { return test::sh("sha256sum '" + file + "' | cut -c1-64").out.substr(0, 64); };
  auto recorded = [&] { return test::sh("sed -n 's/^manifest_sha256 = \"\\([0-9a-f]*\\)\"$/\\1/p' '" + catalogue + "'").out.substr(0, 64); };
  EXPECT_EQ(recorded(), sha_of(manifest)) << read_file(catalogue);

  // Other bytes with the same tree digest (an mtime is not part of it): parsed, passed, and
  // the new bytes recorded.
  ASSERT_EQ(test::sh("sed -i '4s/ mtime=[0-9]*\\./ mtime=1234./' '" + manifest + "'").exit_code, 0);
  ASSERT_NE(recorded(), sha_of(manifest));
  auto v = ctl({"verify", "described", "--store", store});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_EQ(recorded(), sha_of(manifest));

  // An entry changed: parsed, and refused.
  const std::string good = read_file(manifest);
  ASSERT_EQ(test::sh("sed -i '4s/ uid=0 / uid=7 /' '" + manifest + "'").exit_code, 0);
  ASSERT_NE(read_file(manifest), good);
  auto bad = ctl({"verify", "described", "--store", store});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_NE((bad.out + bad.err).find("do not match the digest on the end line"), std::string::npos) << bad.out << bad.err;

  // The record is what a full verify trusts: the same damaged bytes, recorded as having passed
  // (only root can write the catalogue), are not parsed again. This is the check the record
  // saves on a big image; the image file itself is still read in full.
  ASSERT_EQ(test::sh("sed -i 's/^manifest_sha256 = .*/manifest_sha256 = \"" + sha_of(manifest) + "\"/' '" + catalogue + "'").exit_code, 0);
  ::sleep(1);  // a pass clears only a failure recorded before it started
  auto trusted = ctl({"verify", "described", "--store", store});
  EXPECT_EQ(trusted.exit_code, 0) << trusted.out << trusted.err;
}

}  // namespace
}  // namespace chrootctl
