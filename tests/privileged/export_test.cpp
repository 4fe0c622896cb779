// export and import between two stores: a faithful round trip (owners, modes, hard links,
// devices, FIFOs, xattrs, capabilities, odd names), and refusals that leave nothing behind: a
// truncated archive, one byte flipped in one file, an unsigned or untrusted or revoked archive,
// escapes through symlinks and "..", and members that do not belong. Needs root.
#include <sys/stat.h>
#include <unistd.h>

#include "sign_fixture.hpp"

namespace chrootctl::test::sign {
namespace {

class ExportImport : public SignedImages {
 protected:
  void SetUp() override {
    SignedImages::SetUp();
    if (IsSkipped()) return;
    CHROOTCTL_REQUIRE_TOOL("zstd");
    key = make_key();
    trust(key);
    dir = make_build("el9", "b1");
    sign(dir, key);
    add("EL9", dir);
    archive = path("el9.tar.zst");
    auto e = dist::export_image(s, "EL9", archive);
    ASSERT_TRUE(e) << e.error().what();
    exported = *e;
    host2 = other_host("store2");
    // This site allows what the rich tree holds (its store is reachable by root only), so that
    // the round trip can be shown whole; what the default policy does is in boundary_test.cpp.
    host2.import_strip.allow_setuid = {"/usr/bin/su"};
    host2.import_strip.allow_capabilities = {"/usr/bin/ping"};
    host2.import_strip.devices = false;
  }
  std::string import_error(const std::string& file, const dist::ImportOptions& o, Errc code) {
    auto r = dist::import_image(host2, file, o);
    EXPECT_FALSE(r);
    if (r) return "imported";
    EXPECT_EQ(r.error().code(), code) << r.error().what();
    return r.error().what();
  }
  /// After a refusal: no image, no staging directory left, no catalogue.
  void expect_nothing_left() {
    EXPECT_FALSE(sys::lstat_path(host2.store + "/el9")) << listing(host2.store);
    EXPECT_EQ(listing(host2.store + "/.staging"), "");
    EXPECT_FALSE(sys::lstat_path(host2.store + "/catalogue.toml"));
  }
  /// Rewrites the archive's tar stream with a python snippet given `t` (the raw tar bytes).
  std::string rewrite(const std::string& name, const std::string& python) {
    std::string out = path(name);
    auto r = sh(str("zstd -q -d -c '", archive, "' > '", path("x.tar"), "' && python3 - '", path("x.tar"),
                    "' <<'PY'\nimport sys\np = sys.argv[1]\n"
                    "t = bytearray(open(p, 'rb').read())\n",
                    python, "\nopen(p, 'wb').write(t)\nPY\nzstd -q -f '", path("x.tar"), "' -o '", out, "'"));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return out;
  }
  // rewrite() of the tar stream member by member: `each` is the body of the loop over the
  // members `m` (copy(m) writes one out unchanged), `after` runs once after it; both write to `dst`.
  std::string repack(const std::string& name, const std::string& each, const std::string& after = "") {
    return rewrite(name, str("import io, tarfile\nsrc = tarfile.open(fileobj=io.BytesIO(bytes(t)))\nout = io.BytesIO()\n"
                             "dst = tarfile.open(fileobj=out, mode='w', format=tarfile.PAX_FORMAT)\n"
                             "def copy(m): dst.addfile(m, src.extractfile(m) if m.isfile() else None)\n"
                             "for m in src.getmembers():\n",
                             each, "\n", after, "\ndst.close()\nt[:] = out.getvalue()\n"));
  }
  cat::GeneratedKey key;
  std::string dir, archive;
  dist::ExportResult exported;
  Settings host2;
};

TEST_F(ExportImport, ExportPacksTheEntryManifestLockRecipeSignatureAndTheTreeInOrder) {
  EXPECT_EQ(exported.name, "EL9");
  EXPECT_EQ(exported.signer, key.id);
  EXPECT_EQ(exported.digest, digest_of(dir));
  auto names = sh(str("zstd -q -d -c '", archive, "' | tar -tf - 2>/dev/null | head -6"));
  EXPECT_EQ(names.out, "chrootctl-export.toml\nmanifest\nlock\nrecipe.toml\nsignature\nroot/\n");
  EXPECT_EQ(sh(str("zstd -q -d -c '", archive, "' | tar -tf - 2>/dev/null | grep -c manifest.stat")).out, "0\n");
  auto hard = sh(str("zstd -q -d -c '", archive, "' | tar -tvf - 2>/dev/null | grep '^h' | awk '{print $6, $7, $8, $9}'"));
  EXPECT_EQ(hard.out, "root/usr/bin/job-again link to root/usr/bin/job\n");
  auto entry = sh(str("zstd -q -d -c '", archive, "' | tar -xOf - chrootctl-export.toml"));
  EXPECT_NE(
      entry.out.find(str("name = \"EL9\"\nrecipe = \"el9\"\nbuild_id = \"b1\"\ndigest = \"", digest_of(dir), "\"\nsigner = \"", key.id, "\"\n")),
      std::string::npos)
      << entry.out;
  struct stat st {};
  ASSERT_EQ(::stat(archive.c_str(), &st), 0);
  EXPECT_EQ(static_cast<std::uint64_t>(st.st_size), exported.archive_size);
  EXPECT_EQ(sh(str("ls -a '", path(""), "' | grep -c '^\\.el9'")).out, "0\n") << "no temporary file is left";
}

TEST_F(ExportImport, ImportReproducesTheTreeExactlyAndRegistersItSigned) {
  auto r = dist::import_image(host2, archive, import_options());
  ASSERT_TRUE(r) << r.error().what();
  const std::string dest = host2.store + "/el9/b1";
  EXPECT_EQ(r->image, dest);
  EXPECT_EQ(r->name, "EL9");
  EXPECT_EQ(r->signature_state, "signed");
  EXPECT_EQ(r->signer, key.id);
  EXPECT_FALSE(r->already_present);
  const auto& v = r->added.entry.current;
  EXPECT_EQ(v.digest, digest_of(dir));
  EXPECT_EQ(v.signer, key.id);
  EXPECT_EQ(v.build_id, "b1");
  EXPECT_EQ(v.recipe, "el9");
  // Every entry as recorded: owners, modes, the setuid bit, the hard link, the device, the
  // FIFO, the capability and the user xattr, the odd name.
  auto m = mf::create(dest + "/root");
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(mf::digest(*m), digest_of(dir));
  EXPECT_EQ(read_file(dest + "/manifest"), read_file(dir + "/manifest"));
  EXPECT_EQ(read_file(dest + "/signature"), read_file(dir + "/signature"));
  EXPECT_EQ(read_file(dest + "/lock"), read_file(dir + "/lock"));
  EXPECT_FALSE(sys::lstat_path(dest + "/chrootctl-export.toml"));
  EXPECT_EQ(sh(str("getcap '", dest, "/root/usr/bin/ping'")).out, str(dest, "/root/usr/bin/ping cap_net_raw=ep\n"));
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat((dest + "/root/usr/bin/job").c_str(), &a), 0);
  ASSERT_EQ(::stat((dest + "/root/usr/bin/job-again").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  ASSERT_EQ(::lstat((dest + "/root/dev/null").c_str(), &a), 0);
  EXPECT_TRUE(S_ISCHR(a.st_mode));
  EXPECT_EQ(a.st_rdev, makedev(1, 3));
  // The stat record was rebuilt for this host: the fast path works at once.
  cat::ResolveOptions fast;
  fast.fast = true;
  Settings required = host2;
  required.require_signature = true;
  auto res = cat::resolve(required, "EL9", fast);
  ASSERT_TRUE(res) << res.error().what();
  EXPECT_EQ(res->root, dest + "/root");
  EXPECT_EQ(listing(host2.store + "/.staging"), "");

  // The same archive again, under another name: the build is already there, verified and registered.
  auto o = import_options();
  o.as = "RHEL9";
  auto again = dist::import_image(host2, archive, o);
  ASSERT_TRUE(again) << again.error().what();
  EXPECT_TRUE(again->already_present);
  EXPECT_EQ(again->image, dest);
  EXPECT_EQ(again->added.entry.current.signer, key.id);
}

TEST_F(ExportImport, ATruncatedArchiveIsRefusedAndLeavesNothing) {
  // Cut inside the first compressed block: refused while reading the entry, before anything is written.
  struct stat st {};
  ASSERT_EQ(::stat(archive.c_str(), &st), 0);
  const std::string cut = path("cut.tar.zst");
  ASSERT_EQ(sh(str("head -c ", st.st_size * 2 / 3, " '", archive, "' > '", cut, "'")).exit_code, 0);
  EXPECT_EQ(import_error(cut, import_options(), Errc::mismatch), str("refusing to import '", cut, "': '", cut, "': Truncated zstd input"));
  EXPECT_FALSE(sys::lstat_path(host2.store));
  // Cut inside the tree of a larger image: refused while unpacking, and the staging directory goes.
  const std::string big = make_build("big", "b1", "10.0.0.9 localhost\n", false);
  ASSERT_EQ(sh(str("head -c 3000000 /dev/urandom > '", big, "/root/usr/lib/random.bin'")).exit_code, 0);
  write_manifest(big);
  sign(big, key);
  add("BIG", big);
  const std::string big_archive = path("big.tar.zst");
  ASSERT_TRUE(dist::export_image(s, "BIG", big_archive));
  ASSERT_EQ(::stat(big_archive.c_str(), &st), 0);
  const std::string big_cut = path("big-cut.tar.zst");
  ASSERT_EQ(sh(str("head -c ", st.st_size / 2, " '", big_archive, "' > '", big_cut, "'")).exit_code, 0);
  const std::string err = import_error(big_cut, import_options(), Errc::parse);
  EXPECT_EQ(err.substr(0, str("refusing to import '", big_cut, "': extracting ", big_cut, ": ").size()),
            str("refusing to import '", big_cut, "': extracting ", big_cut, ": "));
  EXPECT_NE(err.find("runcated"), std::string::npos) << err;
  EXPECT_FALSE(sys::lstat_path(host2.store + "/big")) << listing(host2.store);
  expect_nothing_left();
}

TEST_F(ExportImport, OneFlippedByteInOneFileIsRefusedAndLeavesNothing) {
  const std::string bad = rewrite("flipped.tar.zst", "i = t.index(b'127.0.0.1 localhost')\nt[i] = ord('0')");
  const std::string err = import_error(bad, import_options(), Errc::mismatch);
  const std::string want = sh("printf '127.0.0.1 localhost\\n' | sha256sum | cut -c1-64 | tr -d '\\n'").out;
  const std::string got = sh("printf '027.0.0.1 localhost\\n' | sha256sum | cut -c1-64 | tr -d '\\n'").out;
  // Found as the file is written, before any later entry is.
  EXPECT_EQ(err, str("refusing to import '", bad, "': extracting ", bad, ": the archive's '/etc/hosts' has sha256 ", got, ", not the ", want,
                     " its manifest line gives"));
  expect_nothing_left();
}

TEST_F(ExportImport, ADamagedCompressedStreamIsRefusedAndLeavesNothing) {
  struct stat st {};
  ASSERT_EQ(::stat(archive.c_str(), &st), 0);
  const std::string bad = path("damaged.tar.zst");
  ASSERT_EQ(sh(str("cp '", archive, "' '", bad, "' && printf '\\377' | dd of='", bad, "' bs=1 seek=", st.st_size - 40, " conv=notrunc status=none"))
                .exit_code,
            0);
  auto r = dist::import_image(host2, bad, import_options());
  ASSERT_FALSE(r);
  // What libarchive reports depends on where in the stream the damage lands (the archive's
  // bytes vary with timestamps): a failed zstd checksum, or garbage where a header should be.
  const std::string what = r.error().what();
  const std::string head = str("refusing to import '", bad, "': '", bad, "': ");
  EXPECT_EQ(what.substr(0, head.size()), head) << what;
  const std::string tail = what.substr(std::min(what.size(), head.size()));
  EXPECT_TRUE(tail == "Zstd decompression failed: Data corruption detected" || tail == "Unrecognized archive format") << what;
  expect_nothing_left();
}

TEST_F(ExportImport, AnUnsignedArchiveIsRefusedUnlessAllowedAndNeverUnderRequireSignature) {
  const std::string udir = make_build("sl7", "u1", "10.0.0.7 localhost\n");
  add("SL7", udir);
  const std::string unsigned_archive = path("sl7.tar.zst");
  auto e = dist::export_image(s, "SL7", unsigned_archive);
  ASSERT_TRUE(e) << e.error().what();
  EXPECT_EQ(e->signer, "");
  EXPECT_EQ(import_error(unsigned_archive, import_options(), Errc::permission),
            str("refusing to import '", unsigned_archive, "': it is not signed (import it with --allow-unsigned to accept it unsigned)"));
  EXPECT_FALSE(sys::lstat_path(host2.store)) << "refused before anything was written";
  Settings required = host2;
  required.require_signature = true;
  required.config_file = "/etc/chrootctl/config.toml";
  auto r = dist::import_image(required, unsigned_archive, import_options(true));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what(),
            str("refusing to import '", unsigned_archive, "': it is not signed and require_signature is set in /etc/chrootctl/config.toml"));
  EXPECT_FALSE(sys::lstat_path(host2.store));
  auto ok = dist::import_image(host2, unsigned_archive, import_options(true));
  ASSERT_TRUE(ok) << ok.error().what();
  EXPECT_EQ(ok->signature_state, "unsigned");
  EXPECT_EQ(ok->added.entry.current.signer, "");
  EXPECT_TRUE(cat::resolve(host2, "SL7"));
}

TEST_F(ExportImport, UntrustedAndRevokedKeysAndAlteredSignaturesAreRefused) {
  Settings stranger = other_host("store3");
  stranger.import_strip = host2.import_strip;
  stranger.trusted_keys = path("etc2/trusted.d");
  mkdirs(stranger.trusted_keys);
  auto r = dist::import_image(stranger, archive, import_options());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what(), str("refusing to import '", archive, "': it is signed by key ", key.id,
                                  ", which is not trusted here: it is not one of the trusted keys in ", stranger.trusted_keys,
                                  " (import it with --allow-unsigned to accept it unsigned)"));
  // Allowed unsigned, it is registered without a signer.
  auto u = dist::import_image(stranger, archive, import_options(true));
  ASSERT_TRUE(u) << u.error().what();
  EXPECT_EQ(u->added.entry.current.signer, "");

  revoke(key);
  EXPECT_EQ(import_error(archive, import_options(true), Errc::permission),
            str("refusing to import '", archive, "': it is signed by key ", key.id, ", which is revoked (", revoked, "/", key.id, ".pub)"));
  expect_nothing_left();
  trust(key);
  ASSERT_EQ(::unlink(str(revoked, "/", key.id, ".pub").c_str()), 0);
  const std::string altered = rewrite("altered.tar.zst", "i = t.index(b'\\nbuild-id b1\\n')\nt[i + 10] = ord('2')");
  EXPECT_EQ(import_error(altered, import_options(true), Errc::permission),
            str("refusing to import '", altered, "': its signature by key ", key.id, " does not verify (", altered, ":signature was altered)"));
  expect_nothing_left();
}

TEST_F(ExportImport, EscapesAndStrayMembersAreRefusedAndLeaveNothing) {
  const std::string outside = path("outside");
  mkdirs(outside);
  // A symlink planted in the tree, then a file written through it.
  const std::string through_link =
      repack("link.tar.zst", "    if m.name.startswith('root'):\n        break\n    copy(m)",
             str("d = tarfile.TarInfo('root'); d.type = tarfile.DIRTYPE; d.mode = 0o755; dst.addfile(d)\n"
                 "l = tarfile.TarInfo('root/escape'); l.type = tarfile.SYMTYPE; l.linkname = '",
                 outside,
                 "'; dst.addfile(l)\n"
                 "f = tarfile.TarInfo('root/escape/evil'); data = b'pwned\\n'; f.size = len(data); dst.addfile(f, io.BytesIO(data))"));
  // The symlink is not in the manifest: refused before it is written (the builder's own
  // refusal to write through a symlink is tested in builder_extract_test.cpp).
  std::string err = import_error(through_link, import_options(), Errc::mismatch);
  EXPECT_EQ(err, str("refusing to import '", through_link, "': extracting ", through_link, ": the archive's '/escape' is not in its manifest"));
  EXPECT_EQ(listing(outside), "") << "nothing may be written outside the staging directory";
  expect_nothing_left();

  const std::string dotdot =
      repack("dotdot.tar.zst", "    copy(m)",
             "f = tarfile.TarInfo('root/../../evil'); data = b'pwned\\n'; f.size = len(data); dst.addfile(f, io.BytesIO(data))");
  err = import_error(dotdot, import_options(), Errc::permission);
  EXPECT_NE(err.find("refusing entry 'root/../../evil': '..' component (entries must stay inside the root)"), std::string::npos) << err;
  EXPECT_FALSE(sys::lstat_path(host2.store + "/evil"));
  expect_nothing_left();

  const std::string stray = repack("stray.tar.zst", "    copy(m)",
                                   "f = tarfile.TarInfo('manifest.stat'); data = b'forged\\n'; f.size = len(data); dst.addfile(f, io.BytesIO(data))");
  EXPECT_EQ(import_error(stray, import_options(), Errc::mismatch),
            str("refusing to import '", stray, "': extracting ", stray, ": the archive holds an unexpected 'manifest.stat' beside root/"));
  expect_nothing_left();

  const std::string early = repack("early.tar.zst",
                                   "    if m.name == 'lock':\n"
                                   "        f = tarfile.TarInfo('catalogue.toml'); data = b'x'; f.size = 1; dst.addfile(f, io.BytesIO(data))\n"
                                   "    copy(m)");
  EXPECT_EQ(import_error(early, import_options(), Errc::mismatch),
            str("refusing to import '", early, "': '", early, "': unexpected member 'catalogue.toml' before root/"));
  expect_nothing_left();
}

TEST_F(ExportImport, ExportRefusesATreeThatChangedSinceItWasVerified) {
  write_file(dir + "/root/usr/lib/libbig.so", std::string(200000, 'y') + "end\n");
  const std::string out = path("changed.tar.zst");
  auto e = dist::export_image(s, "EL9", out);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code(), Errc::mismatch);
  const std::string want = sh(str("python3 -c \"import hashlib; print(hashlib.sha256(b'x'*200000+b'end\\\\n').hexdigest(), end='')\"")).out;
  const std::string got = sh(str("sha256sum '", dir, "/root/usr/lib/libbig.so' | cut -c1-64 | tr -d '\\n'")).out;
  EXPECT_EQ(e.error().what(),
            str("exporting 'EL9' (run 'chrootctl verify EL9'): '/usr/lib/libbig.so' changed since it was verified: sha256 ", got, ", not ", want));
  EXPECT_FALSE(sys::lstat_path(out));
  EXPECT_EQ(sh(str("ls -a '", path(""), "' | grep -c '^\\.changed'")).out, "0\n") << "no temporary file is left";
  ASSERT_EQ(::chmod((dir + "/root/usr/bin/su").c_str(), 0755), 0);
  e = dist::export_image(s, "EL9", out);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().what(), "exporting 'EL9' (run 'chrootctl verify EL9'): '/usr/bin/su' changed since it was verified: mode 0755, not 4755");
}

TEST_F(ExportImport, StripDefusesASignedImageAndItsSignatureStillHolds) {
  // A node that requires signatures and allows nothing privileged (the builder's defaults).
  Settings node = other_host("node");
  node.require_signature = true;
  auto refused = dist::import_image(node, archive, import_options());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::permission);
  EXPECT_FALSE(sys::lstat_path(node.store)) << "refused before anything was written";
  auto o = import_options();
  o.strip = true;
  auto r = dist::import_image(node, archive, o);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->signature_state, "signed");
  ASSERT_EQ(r->stripped.size(), 3u);
  const auto& v = r->added.entry.current;
  EXPECT_EQ(v.signer, key.id);
  EXPECT_EQ(v.signed_digest, digest_of(dir)) << "the signature covers the manifest the tree was made from";
  EXPECT_NE(v.digest, digest_of(dir));
  // resolve (require_signature), a full verification and a re-export all accept it.
  auto res = cat::resolve(node, "EL9");
  ASSERT_TRUE(res) << res.error().what();
  auto ver = cat::verify(node, {"EL9"});
  ASSERT_TRUE(ver);
  EXPECT_TRUE((*ver)[0].passed) << (*ver)[0].error;
  const std::string again = path("again.tar.zst");
  auto e = dist::export_image(node, "EL9", again);
  ASSERT_TRUE(e) << e.error().what();
  Settings third = other_host("third");
  third.require_signature = true;
  auto r3 = dist::import_image(third, again, import_options());
  ASSERT_TRUE(r3) << r3.error().what();
  EXPECT_EQ(r3->signature_state, "signed");
  EXPECT_TRUE(r3->stripped.empty()) << "nothing left to strip";
  // A strip record edited to hide a change of contents breaks the manifest: refused.
  const std::string mpath = v.image + "/manifest";
  std::string text = read_file(mpath);
  const auto at = text.find("#stripped setuid-cleared /usr/bin/su ");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(text.find("sha256=", at) + 7, 8, "00000000");
  write_file(mpath, text);
  ver = cat::verify(node, {"EL9"});
  ASSERT_TRUE(ver);
  EXPECT_FALSE((*ver)[0].passed);
  EXPECT_NE((*ver)[0].error.find("the entries do not match the digest on the end line"), std::string::npos) << (*ver)[0].error;
  EXPECT_FALSE(cat::resolve(node, "EL9"));
}

TEST_F(ExportImport, GcRemovesAnImportedBuildOnlyWhenNothingReferencesIt) {
  auto r = dist::import_image(host2, archive, import_options());
  ASSERT_TRUE(r) << r.error().what();
  cat::GcOptions now;
  now.min_age = 0;
  auto g = cat::gc(host2, now);
  ASSERT_TRUE(g) << g.error().what();
  EXPECT_TRUE(g->removed.empty());
  EXPECT_TRUE(sys::lstat_path(host2.store + "/el9/b1/root"));
  ASSERT_TRUE(cat::remove(host2, "EL9"));
  g = cat::gc(host2, now);
  ASSERT_TRUE(g) << g.error().what();
  EXPECT_EQ(g->removed, std::vector<std::string>{host2.store + "/el9/b1"});
  EXPECT_FALSE(sys::lstat_path(host2.store + "/el9/b1"));
}

}  // namespace
}  // namespace chrootctl::test::sign
