#pragma once
// Fixtures for the privileged tests of signing, export/import and publishing: root-owned builds
// made at test time (with hard links, a device node, a FIFO, xattrs, a file capability and
// awkward names), keys generated at test time, and trusted and revoked key directories.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "chrootctl/builder/extract.hpp"
#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/catalogue/registry.hpp"
#include "chrootctl/catalogue/resolve.hpp"
#include "chrootctl/catalogue/sign.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/tree_writer.hpp"
#include "chrootctl/distribution/export.hpp"
#include "chrootctl/distribution/publish.hpp"
#include "chrootctl/distribution/sign.hpp"
#include "test_support.hpp"

namespace chrootctl::test::sign {

namespace cat = catalogue;
namespace dist = distribution;
namespace mf = manifest;

class SignedImages : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    CHROOTCTL_REQUIRE_PRIVILEGE("root");
    s.store = path("store");
    mkdirs(s.store);
    trusted = path("etc/trusted.d");
    revoked = path("etc/revoked.d");
    mkdirs(trusted);
    s.trusted_keys = trusted;
  }

  /// STORE/RECIPE/ID as the builder makes it: root/, manifest, manifest.stat, recipe.toml, lock.
  /// `hosts` varies the tree between versions; `rich` adds hard links, a device, a FIFO,
  /// xattrs, a file capability, a setuid file, files owned by others and awkward names. Without
  /// `privileged`, the rich tree has the same files but nothing that gives privileges on a host
  /// (su without its setuid bit, ping without its capability, no device node), as a tree to
  /// publish must be.
  std::string make_build(const std::string& recipe, const std::string& id, const std::string& hosts = "127.0.0.1 localhost\n", bool rich = true,
                         bool privileged = true) {
    const std::string dir = str(s.store, "/", recipe, "/", id);
    const std::string r = dir + "/root";
    mkdirs(r + "/etc");
    mkdirs(r + "/usr/bin");
    mkdirs(r + "/usr/lib");
    mkdirs(r + "/dev");
    write_file(r + "/etc/hosts", hosts);
    write_file(r + "/etc/os-release", "ID=" + recipe + "\n");
    write_file(r + "/usr/bin/job", "#!/bin/sh\necho job\n", 0755);
    write_file(r + "/usr/lib/libbig.so", std::string(200000, 'x') + "end\n", 0644);
    if (rich) {
      EXPECT_EQ(::link((r + "/usr/bin/job").c_str(), (r + "/usr/bin/job-again").c_str()), 0);
      write_file(r + "/usr/bin/ping", "ping binary\n", 0755);
      if (privileged) {
        EXPECT_EQ(::setxattr((r + "/usr/bin/ping").c_str(), "security.capability", k_cap_net_raw, sizeof k_cap_net_raw, 0), 0);
      }
      write_file(r + "/usr/bin/su", "su binary\n", 0755);
      if (privileged) {
        EXPECT_EQ(::chmod((r + "/usr/bin/su").c_str(), 04755), 0);
      }
      write_file(r + "/etc/shadow", "root:*:19000:0:99999:7:::\n", 0640);
      EXPECT_EQ(::chown((r + "/etc/shadow").c_str(), 0, 42), 0);
      mkdirs(r + "/home/user");
      write_file(r + "/home/user/notes", "mine\n", 0600);
      EXPECT_EQ(::chown((r + "/home/user/notes").c_str(), 1000, 1000), 0);
      EXPECT_EQ(::chown((r + "/home/user").c_str(), 1000, 1000), 0);
      EXPECT_EQ(::setxattr((r + "/etc/hosts").c_str(), "user.origin", "test", 4, 0), 0);
      if (privileged) {
        EXPECT_EQ(::mknod((r + "/dev/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
      }
      EXPECT_EQ(::mkfifo((r + "/dev/initctl").c_str(), 0600), 0);
      EXPECT_EQ(::symlink("../etc/hosts", (r + "/usr/hosts-link").c_str()), 0);
      write_file(r + "/usr/lib/a name with spaces\nand a newline\xff", "odd\n");
    }
    write_file(dir + "/recipe.toml", str("name = \"", recipe, "\"\n"));
    write_file(dir + "/lock", str("format = 1\nname = \"", recipe, "\"\nbuild_id = \"", id, "\"\n"));
    write_manifest(dir);
    return dir;
  }
  void write_manifest(const std::string& dir) {
    auto m = mf::create(dir + "/root");
    ASSERT_TRUE(m) << m.error().what();
    auto rendered = mf::render(*m);
    ASSERT_TRUE(write_file_atomic(dir + "/manifest", rendered.text));
    ASSERT_TRUE(write_file_atomic(dir + "/manifest.stat", mf::serialize_stat(*m, rendered.digest)));
  }
  std::string digest_of(const std::string& dir) { return mf::read_digest(dir + "/manifest").value(); }

  cat::GeneratedKey make_key() {
    auto k = cat::generate_key_files(path("keys"));
    EXPECT_TRUE(k) << k.error().what();
    return *k;
  }
  void trust(const cat::GeneratedKey& k) { ASSERT_EQ(sh(str("cp '", k.public_file, "' '", trusted, "/'")).exit_code, 0); }
  void revoke(const cat::GeneratedKey& k) {
    mkdirs(revoked);
    ASSERT_EQ(::rename(str(trusted, "/", k.id, ".pub").c_str(), str(revoked, "/", k.id, ".pub").c_str()), 0);
  }
  dist::SignResult sign(const std::string& target, const cat::GeneratedKey& k) {
    auto r = dist::sign_image(s, target, k.private_file);
    EXPECT_TRUE(r) << r.error().what();
    return r ? *r : dist::SignResult{};
  }
  cat::AddResult add(const std::string& name, const std::string& dir) {
    auto r = cat::add(s, name, dir);
    EXPECT_TRUE(r) << r.error().what();
    return r ? *r : cat::AddResult{};
  }
  std::string resolve_error(const std::string& name, const Settings& with) {
    auto r = cat::resolve(with, name);
    if (r) return "resolved to " + r->root;
    EXPECT_TRUE(cat::is_refusal(r.error())) << r.error().what();
    return r.error().what();
  }
  cat::Catalogue load(const Settings& with) {
    auto c = cat::load(with);
    EXPECT_TRUE(c) << c.error().what();
    return c ? *c : cat::Catalogue{};
  }

  /// What the command line passes to import: the builder's extraction.
  static Result<dist::UnpackStats> unpack(const std::string& archive, const std::string& dir, UnpackCheck& check) {
    auto tree = TRY(TreeWriter::open(dir));
    auto st = TRY(builder::extract_archive(archive, tree, {}, {}, &check));
    TRY(tree.finish());
    return dist::UnpackStats{st.entries, st.bytes};
  }
  dist::ImportOptions import_options(bool allow_unsigned = false) {
    dist::ImportOptions o;
    o.unpack = unpack;
    o.allow_unsigned = allow_unsigned;
    return o;
  }
  /// Settings for another host: its own store, the same trusted keys.
  Settings other_host(const std::string& name) {
    Settings o = s;
    o.store = path(name);
    return o;
  }
  /// Everything under `dir` (relative paths, sorted), to show that nothing was left behind.
  std::string listing(const std::string& dir) { return sh(str("cd '", dir, "' 2>/dev/null && find . -mindepth 1 | LC_ALL=C sort")).out; }
  /// A config file for the command line: trusted keys and the signature policy.
  std::string write_config(bool require_signature) {
    const std::string cfg = path(require_signature ? "etc/config-required.toml" : "etc/config.toml");
    write_file(cfg, str("trusted_keys = \"", trusted, "\"\nrequire_signature = ", require_signature ? "true" : "false", "\n"));
    return cfg;
  }

  // VFS capability v2 for cap_net_raw (bit 13), permitted and effective.
  static constexpr unsigned char k_cap_net_raw[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

  Settings s;
  std::string trusted, revoked;
};

}  // namespace chrootctl::test::sign
