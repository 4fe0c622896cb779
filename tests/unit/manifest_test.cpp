// The manifest engine without privilege: round trips, detection of changes an ordinary user can
// make, parse errors. Changes that need root (owner, capabilities, devices) are in
// tests/privileged/manifest_privileged_test.cpp.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace mf = manifest;
using test::TempDirTest;

std::string Sha256Hex(std::string_view s) { return Sha256::hex(s); }

class ManifestTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    root = path("root");
    test::mkdirs(root + "/etc");
    test::mkdirs(root + "/usr/bin");
    test::write_file(root + "/etc/passwd", "root:x:0:0::/root:/bin/sh\n");
    test::write_file(root + "/usr/bin/tool", "#!/bin/sh\necho tool\n", 0755);
    test::write_file(root + "/usr/bin/data", std::string(100000, 'x'));
    ASSERT_EQ(::symlink("tool", (root + "/usr/bin/alias").c_str()), 0);
    ASSERT_EQ(::link((root + "/usr/bin/tool").c_str(), (root + "/usr/bin/tool2").c_str()), 0);
  }

  mf::Manifest make() {
    auto m = mf::create(root);
    EXPECT_TRUE(m) << (m ? "" : m.error().what());
    return m ? *m : mf::Manifest{};
  }

  // The single difference for `p`, asserting there is exactly one difference overall.
  static std::vector<std::string> fields_for(const mf::DiffResult& d, const std::string& p) {
    std::vector<std::string> out;
    for (const auto& x : d.differences)
      if (x.path == p)
        for (const auto& f : x.fields) out.push_back(f.field);
    return out;
  }

  mf::DiffResult recheck(const mf::Manifest& before) {
    auto r = mf::check(root, before);
    EXPECT_TRUE(r) << (r ? "" : r.error().what());
    return r ? *r : mf::DiffResult{};
  }

  std::string root;
};

TEST_F(ManifestTest, RecordsEveryFieldAndRoundTrips) {
  auto m = make();
  ASSERT_EQ(m.entries.size(), 9u);  // / /etc /etc/passwd /usr /usr/bin + 4 in bin
  const auto* tool = m.find("/usr/bin/tool");
  ASSERT_NE(tool, nullptr);
  EXPECT_EQ(tool->type, mf::Type::file);
  EXPECT_EQ(tool->mode, 0755u);
  EXPECT_EQ(tool->size, 20u);
  EXPECT_EQ(tool->sha256, Sha256Hex("#!/bin/sh\necho tool\n"));
  EXPECT_EQ(tool->link, "/usr/bin/tool");
  EXPECT_EQ(m.find("/usr/bin/tool2")->link, "/usr/bin/tool");
  EXPECT_EQ(m.find("/usr/bin/alias")->target, "tool");
  EXPECT_EQ(m.find("/usr/bin/alias")->type, mf::Type::symlink);

  const auto text = mf::serialize(m);
  auto back = mf::parse(text, "m");
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(mf::serialize(*back), text);
  EXPECT_EQ(mf::digest(*back), mf::digest(m));
  EXPECT_FALSE(mf::diff(m, *back).differs_beyond_mtime());
  EXPECT_TRUE(mf::diff(m, *back).differences.empty());
}

TEST_F(ManifestTest, DigestIgnoresMtime) {
  auto a = make();
  struct timespec ts[2] = {{1000, 0}, {2000, 5}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (root + "/etc/passwd").c_str(), ts, 0), 0);
  auto b = make();
  EXPECT_EQ(mf::digest(a), mf::digest(b));
  auto d = mf::diff(a, b);
  ASSERT_EQ(d.differences.size(), 1u);
  EXPECT_EQ(d.differences[0].kind, mf::Difference::Kind::mtime_only);
  EXPECT_FALSE(d.differs_beyond_mtime());
  const auto text = mf::render_text(d);
  EXPECT_TRUE(starts_with(text, "mtime-only /etc/passwd mtime ")) << text;
  EXPECT_NE(text.find(" -> 2000.000000005\n"), std::string::npos) << text;
}

TEST_F(ManifestTest, DetectsSameSizeContentChange) {
  auto before = make();
  test::write_file(root + "/etc/passwd", "ROOT:x:0:0::/root:/bin/sh\n");
  auto d = recheck(before);
  EXPECT_TRUE(d.differs_beyond_mtime());
  EXPECT_EQ(fields_for(d, "/etc/passwd"), std::vector<std::string>{"sha256"});
}

TEST_F(ManifestTest, DetectsAppendedBytes) {
  auto before = make();
  ASSERT_EQ(test::sh("printf x >> " + root + "/etc/passwd").exit_code, 0);
  auto d = recheck(before);
  EXPECT_EQ(fields_for(d, "/etc/passwd"), (std::vector<std::string>{"size", "sha256"}));
}

TEST_F(ManifestTest, DetectsModeChangeAndSetuid) {
  auto before = make();
  ASSERT_EQ(::chmod((root + "/etc/passwd").c_str(), 0600), 0);
  ASSERT_EQ(::chmod((root + "/usr/bin/data").c_str(), 04644), 0);
  auto d = recheck(before);
  EXPECT_EQ(fields_for(d, "/etc/passwd"), std::vector<std::string>{"mode"});
  ASSERT_EQ(fields_for(d, "/usr/bin/data"), std::vector<std::string>{"mode"});
  EXPECT_NE(mf::render_text(d).find("changed /usr/bin/data mode 0644 -> 4644\n"), std::string::npos);
}

TEST_F(ManifestTest, DetectsUserXattrChange) {
  const std::string f = root + "/etc/passwd";
  if (::setxattr(f.c_str(), "user.test", "a", 1, 0) != 0) GTEST_SKIP() << "filesystem has no user xattrs";
  auto before = make();
  ASSERT_EQ(::setxattr(f.c_str(), "user.test", "b", 1, 0), 0);
  auto d = recheck(before);
  EXPECT_EQ(fields_for(d, "/etc/passwd"), std::vector<std::string>{"xattr:user.test"});
  ASSERT_EQ(::setxattr(f.c_str(), "user.other", "c", 1, 0), 0);
  d = recheck(before);
  EXPECT_EQ(fields_for(d, "/etc/passwd"), (std::vector<std::string>{"xattr:user.other", "xattr:user.test"}));
}

TEST_F(ManifestTest, DetectsNewAndRemovedFiles) {
  auto before = make();
  test::write_file(root + "/etc/new", "x");
  ASSERT_EQ(::unlink((root + "/usr/bin/data").c_str()), 0);
  auto d = recheck(before);
  // The two directories changed only their mtime, which is reported but not a failure.
  EXPECT_EQ(mf::render_text(d).substr(0, 4), "mtim");
  ASSERT_EQ(d.differences.size(), 4u) << mf::render_text(d);
  EXPECT_EQ(d.differences[0].path, "/etc");
  EXPECT_EQ(d.differences[0].kind, mf::Difference::Kind::mtime_only);
  EXPECT_EQ(d.differences[1].path, "/etc/new");
  EXPECT_EQ(d.differences[1].kind, mf::Difference::Kind::added);
  EXPECT_EQ(d.differences[2].path, "/usr/bin");
  EXPECT_EQ(d.differences[2].kind, mf::Difference::Kind::mtime_only);
  EXPECT_EQ(d.differences[3].path, "/usr/bin/data");
  EXPECT_EQ(d.differences[3].kind, mf::Difference::Kind::removed);
  EXPECT_TRUE(d.differs_beyond_mtime());
}

TEST_F(ManifestTest, DetectsRepointedSymlink) {
  auto before = make();
  ASSERT_EQ(::unlink((root + "/usr/bin/alias").c_str()), 0);
  ASSERT_EQ(::symlink("data", (root + "/usr/bin/alias").c_str()), 0);
  auto d = recheck(before);
  EXPECT_EQ(fields_for(d, "/usr/bin/alias"), std::vector<std::string>{"target"});
}

TEST_F(ManifestTest, DetectsFileReplacedBySymlinkToSameContent) {
  test::write_file(root + "/etc/copy", "root:x:0:0::/root:/bin/sh\n");
  auto before = make();
  ASSERT_EQ(::unlink((root + "/etc/copy").c_str()), 0);
  ASSERT_EQ(::symlink("passwd", (root + "/etc/copy").c_str()), 0);
  auto d = recheck(before);
  EXPECT_EQ(fields_for(d, "/etc/copy"), std::vector<std::string>{"type"});
}

TEST_F(ManifestTest, DetectsBrokenHardLink) {
  auto before = make();
  ASSERT_EQ(test::sh("cd " + root + "/usr/bin && cp tool2 t && mv t tool2").exit_code, 0);
  auto d = recheck(before);
  EXPECT_EQ(fields_for(d, "/usr/bin/tool"), std::vector<std::string>{"link"});
  EXPECT_EQ(fields_for(d, "/usr/bin/tool2"), std::vector<std::string>{"link"});
}

TEST_F(ManifestTest, HostileNamesRoundTrip) {
  const std::vector<std::string> names = {"new\nline",           "back\\slash", "sp ace", "tab\tx", std::string("bad\xff\xfe", 5),
                                          std::string(255, 'n'), "=eq",         "#hash"};
  for (const auto& n : names) test::write_file(root + "/etc/" + n, n);
  // A path of about 4000 bytes: 20 levels of 199-byte names.
  std::string deep = root;
  std::string rel;
  for (int i = 0; i < 20; ++i) {
    const std::string part(199, static_cast<char>('a' + i));
    rel += "/" + part;
    ASSERT_EQ(::mkdir((root + rel).c_str(), 0755), 0) << rel.size();
  }
  test::write_file(root + rel + "/leaf", "deep");
  auto m = make();
  for (const auto& n : names) {
    const auto* e = m.find("/etc/" + n);
    ASSERT_NE(e, nullptr) << escape_bytes(n);
    EXPECT_EQ(e->sha256, Sha256Hex(n));
  }
  ASSERT_NE(m.find(rel + "/leaf"), nullptr);
  EXPECT_GT(rel.size(), 3990u);
  const auto text = mf::serialize(m);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), static_cast<long>(m.entries.size() + 2));
  auto back = mf::parse(text, "m");
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(mf::serialize(*back), text);
  auto d = recheck(*back);
  EXPECT_TRUE(d.differences.empty()) << mf::render_text(d);
}

TEST_F(ManifestTest, DeepTreesBeyondTheOpenDescriptorLimitWalk) {
  // Deeper than the walker keeps open at once (128), so it must come back through "..".
  std::string rel;
  for (int i = 0; i < 300; ++i) {
    rel += "/d";
    ASSERT_EQ(::mkdir((root + rel).c_str(), 0755), 0);
  }
  test::write_file(root + rel + "/f", "x");
  test::write_file(root + "/zz-after", "y");
  auto m = make();
  EXPECT_NE(m.find(rel + "/f"), nullptr);
  EXPECT_NE(m.find("/zz-after"), nullptr);
}

TEST_F(ManifestTest, SparseAndLargeFiles) {
  const std::string f = root + "/sparse";
  const int fd = ::open(f.c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  // Past 4 GiB (sizes and offsets must not be 32-bit anywhere), mostly a hole.
  ASSERT_EQ(::pwrite(fd, "end", 3, (4ll << 30) + 4096), 3);
  ASSERT_EQ(::pwrite(fd, "mid", 3, 1ll << 20), 3);
  ::close(fd);
  auto m = make();
  const auto* e = m.find("/sparse");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->size, (4ull << 30) + 4096 + 3);
  // The same bytes hashed independently (Python's hashlib over the layout we wrote).
  auto r = test::run({"python3", "-c",
                      "import hashlib\n"
                      "h=hashlib.sha256(); z=bytes(1<<22)\n"
                      "h.update(bytes(1<<20)); h.update(b'mid')\n"
                      "left=(4<<30)+4096-(1<<20)-3\n"
                      "while left>0:\n  n=min(left,len(z)); h.update(z[:n]); left-=n\n"
                      "h.update(b'end'); print(h.hexdigest())"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, 64), e->sha256);
}

TEST_F(ManifestTest, SymlinkedRootIsFollowedButInnerLinksNeverAre) {
  ASSERT_EQ(::symlink("/etc", (root + "/etc/hostlink").c_str()), 0);
  auto m = make();
  const auto* e = m.find("/etc/hostlink");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->type, mf::Type::symlink);
  EXPECT_EQ(m.find("/etc/hostlink/passwd"), nullptr);
}

TEST_F(ManifestTest, RootThatIsNotADirectory) {
  auto r = mf::create(root + "/etc/passwd");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what(), "walking " + root + "/etc/passwd: '" + root + "/etc/passwd' is not a directory");
  auto missing = mf::create(root + "/nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::not_found);
}

TEST_F(ManifestTest, FilesUnreadableByModeAreHashedAsRoot) {
  CHROOTCTL_REQUIRE_PRIVILEGE("root");
  ASSERT_EQ(::chmod((root + "/etc/passwd").c_str(), 0), 0);
  auto m = make();
  EXPECT_EQ(m.find("/etc/passwd")->sha256, Sha256Hex("root:x:0:0::/root:/bin/sh\n"));
}

// ---- parsing ----

class ManifestParse : public ManifestTest {
 protected:
  std::string text() { return mf::serialize(make()); }
  std::string error_of(const std::string& t) {
    auto r = mf::parse(t, "m.txt");
    return r ? "" : r.error().what();
  }
};

TEST_F(ManifestParse, TruncatedAtALineBoundary) {
  auto t = text();
  t = t.substr(0, t.rfind("#end"));
  EXPECT_EQ(error_of(t), "m.txt:11: truncated: no end line (the manifest is incomplete)");
}

TEST_F(ManifestParse, TruncatedMidLine) {
  auto t = text();
  t = t.substr(0, 200);
  auto e = error_of(t);
  EXPECT_TRUE(starts_with(e, "m.txt:")) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
}

TEST_F(ManifestParse, EditedHashBreaksTheDigest) {
  auto t = text();
  const auto pos = t.find("sha256=") + 7;
  t[pos] = t[pos] == 'a' ? 'b' : 'a';
  EXPECT_EQ(error_of(t), "m.txt:11: the entries do not match the digest on the end line (the manifest was edited or damaged)");
}

TEST_F(ManifestParse, RemovedLine) {
  auto t = text();
  const auto start = t.find("\n/etc/passwd") + 1;
  t.erase(start, t.find('\n', start) - start + 1);
  EXPECT_EQ(error_of(t), "m.txt:10: the end line says 9 entries but the manifest has 8 (lines were added or removed)");
}

TEST_F(ManifestParse, BadFieldNamesItsLine) {
  auto t = text();
  const auto pos = t.find("mode=0644");
  t.replace(pos, 9, "mode=9999");
  EXPECT_EQ(error_of(t), "m.txt:4: bad value for mode: '9999'");
  t = text();
  t.replace(t.find(" uid="), 5, " uud=");
  EXPECT_EQ(error_of(t), "m.txt:2: unknown field 'uud'");
}

TEST_F(ManifestParse, OutOfOrderEntries) {
  auto t = text();
  // swap lines 3 and 4
  auto lines = split(t, '\n');
  ASSERT_EQ(lines[6].substr(0, 15), "/usr/bin/alias ");
  std::swap(lines[6], lines[7]);
  EXPECT_EQ(error_of(join(lines, "\n")), "m.txt:8: entry '/usr/bin/alias' is out of order or duplicated");
  lines = split(t, '\n');
  std::swap(lines[2], lines[3]);
  EXPECT_EQ(error_of(join(lines, "\n")), "m.txt:3: entry '/etc/passwd' has no parent directory entry");
}

TEST_F(ManifestParse, NotAManifest) {
  EXPECT_EQ(error_of("hello\n"), "m.txt:1: not a chrootctl manifest (expected '#chrootctl-manifest 1' on the first line)");
  EXPECT_EQ(error_of(""), "m.txt:1: empty file");
}

// Every space separates fields, as written: a doubled or trailing space, an empty line and an
// uppercase digest are not canonical, however a lenient reader would take them.
TEST_F(ManifestParse, OnlyTheCanonicalSpellingOfALineIsRead) {
  auto t = text();
  t.replace(t.find(" uid="), 5, "  uid=");
  EXPECT_EQ(error_of(t), "m.txt:2: bad field '' (expected key=value)");
  t = text();
  const auto eol = t.find('\n', t.find("\n/etc/passwd") + 1);
  t.insert(eol, " ");
  EXPECT_EQ(error_of(t), "m.txt:4: bad field '' (expected key=value)");
  t = text();
  t.insert(t.find("\n/etc") + 1, "\n");
  EXPECT_EQ(error_of(t), "m.txt:3: bad path ''");
  t = text();
  const auto hex = t.find("sha256=") + 7;
  for (std::size_t i = hex; i < hex + 64; ++i) t[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(t[i])));
  auto e = error_of(t);
  EXPECT_NE(e.find("bad value for sha256"), std::string::npos) << e;
}

TEST_F(ManifestParse, TheEndLineIsReadAloneAndTheDigestIsGivenBack) {
  const auto t = text();
  std::string digest;
  auto m = mf::parse(t, "m.txt", &digest);
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(digest, mf::digest(*m));
  auto end = mf::parse_end_line(t, "m.txt");
  ASSERT_TRUE(end) << end.error().what();
  EXPECT_EQ(end->entries, m->entries.size());
  EXPECT_EQ(end->digest, digest);
  EXPECT_EQ(mf::parse_end_line(t.substr(0, t.rfind("#end")), "m.txt").error().what(), "m.txt: no end line (the manifest is incomplete)");
  EXPECT_EQ(mf::parse_end_line(t.substr(0, t.size() - 1), "m.txt").error().what(), "m.txt: no end line (the manifest is incomplete)");
  auto bad = t;
  bad.replace(bad.rfind("entries="), 8, "entries=x");
  EXPECT_EQ(mf::parse_end_line(bad, "m.txt").error().what(), "m.txt: malformed end line (expected '#end entries=N sha256=HEX')");
}

// ---- fast check ----

TEST_F(ManifestTest, FastCheckPassesUntouchedAndCatchesMetadataChanges) {
  auto m = make();
  const auto digest = mf::digest(m);
  auto rec = mf::parse_stat(mf::serialize_stat(m, digest), "s");
  ASSERT_TRUE(rec) << rec.error().what();
  EXPECT_EQ(rec->manifest_digest, digest);
  auto ok = mf::check_fast(root, *rec);
  ASSERT_TRUE(ok) << ok.error().what();
  EXPECT_TRUE(ok->differences.empty()) << mf::render_text(*ok);

  // Same size, same mode: only ctime tells.
  test::write_file(root + "/etc/passwd", "ROOT:x:0:0::/root:/bin/sh\n");
  auto d = mf::check_fast(root, *rec);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->differs_beyond_mtime());
  EXPECT_EQ(fields_for(*d, "/etc/passwd"), std::vector<std::string>{"ctime"});

  test::write_file(root + "/usr/bin/new", "");
  d = mf::check_fast(root, *rec);
  ASSERT_TRUE(d);
  bool added = false;
  for (const auto& x : d->differences) added |= x.path == "/usr/bin/new" && x.kind == mf::Difference::Kind::added;
  EXPECT_TRUE(added) << mf::render_text(*d);
}

// A tree large enough for the fast check to share it out in chunks between threads; the
// directories' children cross chunk boundaries, so threads open directories mid-way.
TEST_F(ManifestTest, FastCheckOnThreadsCatchesAChangeAnywhereInTheTree) {
  // Hard links to one file make the entries without each costing an inode; the three files
  // changed below are files of their own.
  const std::vector<std::string> changed_files{"/d00/f000", "/d05/f150", "/d11/f299"};
  test::write_file(root + "/filler", "x");
  for (int d = 0; d < 12; ++d) {
    test::mkdirs(root + str("/d", d < 10 ? "0" : "", d));
    for (int f = 0; f < 300; ++f) {
      const std::string p = str("/d", d < 10 ? "0" : "", d, "/f", f < 10 ? "00" : f < 100 ? "0" : "", f);
      if (std::find(changed_files.begin(), changed_files.end(), p) != changed_files.end()) test::write_file(root + p, "x");
      else ASSERT_EQ(::link((root + "/filler").c_str(), (root + p).c_str()), 0) << p;
    }
  }
  auto record = [&] {
    auto m = make();
    EXPECT_GT(m.entries.size(), 3600u);
    auto rec = mf::parse_stat(mf::serialize_stat(m, mf::digest(m)), "s");
    EXPECT_TRUE(rec);
    return *rec;
  };
  auto rec = record();
  for (unsigned threads : {1u, 2u, 3u}) {
    auto ok = mf::check_fast(root, rec, threads);
    ASSERT_TRUE(ok) << ok.error().what();
    EXPECT_FALSE(ok->differs_beyond_mtime()) << threads << " threads: " << mf::render_text(*ok);
  }
  // The first entries, a file in the middle of a directory that spans chunks, the last entry.
  for (const std::string& changed : changed_files) {
    rec = record();
    ASSERT_EQ(::chmod((root + changed).c_str(), 0600), 0);
    for (unsigned threads : {1u, 2u, 3u}) {
      auto d = mf::check_fast(root, rec, threads);
      ASSERT_TRUE(d) << d.error().what();
      EXPECT_TRUE(d->differs_beyond_mtime()) << changed << ", " << threads << " threads";
      EXPECT_EQ(fields_for(*d, changed), (std::vector<std::string>{"mode", "ctime"})) << threads << " threads: " << mf::render_text(*d);
    }
  }
  rec = record();
  test::write_file(root + "/d07/new", "");
  for (unsigned threads : {1u, 2u, 3u}) {
    auto d = mf::check_fast(root, rec, threads);
    ASSERT_TRUE(d) << d.error().what();
    bool added = false;
    for (const auto& x : d->differences) added |= x.path == "/d07/new" && x.kind == mf::Difference::Kind::added;
    EXPECT_TRUE(added) << threads << " threads: " << mf::render_text(*d);
  }
}

TEST_F(ManifestTest, RenderWithStatIsRenderPlusTheStatRecordNamingItsDigest) {
  auto m = make();
  const auto both = mf::render_with_stat(m);
  const auto alone = mf::render(m);
  EXPECT_EQ(both.manifest.text, alone.text);
  EXPECT_EQ(both.manifest.digest, alone.digest);
  EXPECT_EQ(both.stat, mf::serialize_stat(m, alone.digest));
  auto rec = mf::parse_stat(both.stat, "s");
  ASSERT_TRUE(rec) << rec.error().what();
  EXPECT_EQ(rec->manifest_digest, alone.digest);
}

TEST_F(ManifestTest, LoadStatMapsTheFileAndRefusesDamageAndSymlinks) {
  auto m = make();
  const auto both = mf::render_with_stat(m);
  const std::string file = path("m.stat");
  test::write_file(file, both.stat);
  auto rec = mf::load_stat(file);
  ASSERT_TRUE(rec) << rec.error().what();
  EXPECT_EQ(rec->manifest_digest, both.manifest.digest);
  EXPECT_EQ(rec->items.size(), m.entries.size());
  auto ok = mf::check_fast(root, *rec);
  ASSERT_TRUE(ok) << ok.error().what();
  EXPECT_FALSE(ok->differs_beyond_mtime()) << mf::render_text(*ok);

  test::write_file(file, both.stat.substr(0, both.stat.size() - 1));
  EXPECT_EQ(mf::load_stat(file).error().what(), file + ": truncated or damaged (sizes do not add up)");
  test::write_file(file, "");
  EXPECT_EQ(mf::load_stat(file).error().what(), file + ": not a chrootctl stat record (too short)");
  test::write_file(path("real.stat"), both.stat);
  ::unlink(file.c_str());
  ASSERT_EQ(::symlink("real.stat", file.c_str()), 0);
  EXPECT_FALSE(mf::load_stat(file));
}

TEST_F(ManifestTest, StatRecordRejectsDamage) {
  auto m = make();
  auto text = mf::serialize_stat(m, mf::digest(m));
  EXPECT_EQ(mf::parse_stat(text.substr(0, text.size() - 3), "s").error().what(), "s: truncated or damaged (sizes do not add up)");
  EXPECT_EQ(mf::parse_stat("nonsense", "s").error().what(), "s: not a chrootctl stat record (too short)");
}

// The #sealed line of a sealed build (docs/manifest.md): second line, strict, outside the digest.
TEST_F(ManifestTest, TheSealedLineIsCanonicalAndOutsideTheDigest) {
  auto m = make();
  const std::string plain = mf::serialize(m);
  const std::string digest = mf::digest(m);
  mf::Sealed s;
  s.format = "erofs";
  s.size = 2015232;
  s.sha256 = std::string(64, 'a');
  s.hash_offset = 1990656;
  s.root_hash = std::string(64, 'b');
  s.salt = std::string(64, 'c');
  m.sealed = s;
  const std::string text = mf::serialize(m);
  const std::string line = "#sealed erofs size=2015232 sha256=" + std::string(64, 'a') + " hash-offset=1990656 root-hash=" + std::string(64, 'b') +
                           " salt=" + std::string(64, 'c');
  EXPECT_EQ(text, "#chrootctl-manifest 1\n" + line + "\n" + plain.substr(plain.find('\n') + 1));
  EXPECT_EQ(mf::render(m).digest, digest) << "the tree digest is the tree's, sealed or not";
  auto back = mf::parse(text, "m");
  ASSERT_TRUE(back) << back.error().what();
  ASSERT_TRUE(back->sealed);
  EXPECT_EQ(*back->sealed, s);
  EXPECT_EQ(mf::digest(*back), digest);
  const std::string file = root + "/../sealed.manifest";
  test::write_file(file, text);
  auto read = mf::read_sealed(file);
  ASSERT_TRUE(read) << read.error().what();
  EXPECT_EQ(read->value_or(mf::Sealed{}), s);
  test::write_file(file, plain);
  EXPECT_FALSE(mf::read_sealed(file).value());

  auto refused = [&](const std::string& bad) {
    std::string t = text;
    t.replace(t.find(line), line.size(), bad);
    auto r = mf::parse(t, "m");
    return r ? std::string("parsed") : r.error().what();
  };
  const std::string why = "m:2: malformed #sealed line (expected '#sealed erofs size=N sha256=HEX hash-offset=N root-hash=HEX salt=HEX')";
  EXPECT_EQ(refused(line + " extra=1"), why);
  EXPECT_EQ(refused(std::string(line).replace(8, 5, "squashfs")), why) << "only EROFS";
  EXPECT_EQ(refused(std::string(line).replace(line.find("size=2015232"), 12, "size=02015232")), why) << "canonical numbers";
  EXPECT_EQ(refused(std::string(line).replace(line.find("hash-offset=1990656"), 19, "hash-offset=1990657")), why) << "whole blocks";
  EXPECT_EQ(refused(std::string(line).replace(line.find("hash-offset=1990656"), 19, "hash-offset=3000000")), why) << "below the size";
  std::string upper = line;
  upper[upper.find("sha256=") + 7] = 'A';
  EXPECT_EQ(refused(upper), why) << "lowercase hex";
  // Anywhere but the second line it is no entry either.
  std::string third = text;
  third.erase(third.find(line), line.size() + 1);
  third.insert(third.find('\n', third.find('\n') + 1) + 1, line + "\n");
  auto r = mf::parse(third, "m");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what(), "m:3: bad path '#sealed'");
}

// A header whose item count and path-table size add up to the record's size only by wrapping
// around 2^64: the items would end past the record. Parsing threw std::out_of_range.
TEST(StatRecord, SizesThatAddUpOnlyByOverflowingAreDamage) {
  std::string record(88 + 56, '\0');
  std::memcpy(record.data(), "CCSTAT02", 8);
  const std::uint64_t count = 2;                           // 88 + 2 * 56 = 200 bytes, more than there are
  const std::uint64_t paths_size = std::uint64_t{0} - 56;  // 200 + paths_size wraps to 144
  std::memcpy(record.data() + 72, &count, 8);
  std::memcpy(record.data() + 80, &paths_size, 8);
  auto r = mf::parse_stat(record, "s");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what(), "s: truncated or damaged (sizes do not add up)");
}

}  // namespace
}  // namespace chrootctl
