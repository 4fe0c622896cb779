// The signing, export/import and publishing verbs end to end through the chrootctl binary:
// outputs, exit codes, the config's require_signature and trusted_keys, and `run` refusing an
// image whose signature this host does not accept. Needs root.
#include <sys/stat.h>
#include <unistd.h>

#include "sign_fixture.hpp"

namespace chrootctl::test::sign {
namespace {

class SignCli : public SignedImages {
 protected:
  CommandResult ctl(std::vector<std::string> args, bool require_signature = false) {
    args.insert(args.begin() + 1, {"--store", s.store});
    return run_chrootctl(args, {{"CHROOTCTL_CONFIG", write_config(require_signature)}});
  }
  CommandResult ctl_store(const std::string& store, std::vector<std::string> args, bool require_signature = false) {
    args.insert(args.begin() + 1, {"--store", store});
    return run_chrootctl(args, {{"CHROOTCTL_CONFIG", write_config(require_signature)}});
  }
  /// Runs python code on the JSON document `json` (as `d`) and returns what it prints.
  std::string run_json(const std::string& json, const std::string& code) {
    auto r = run({"python3", "-c", "import json,sys; d=json.load(sys.stdin); " + code}, json);
    EXPECT_EQ(r.exit_code, 0) << json << r.err;
    return r.out;
  }
  std::size_t entries_of(const std::string& dir) { return mf::load(dir + "/manifest").value().entries.size(); }
  /// Bytes of file contents, each hard-link group once.
  std::uint64_t bytes_of(const std::string& dir) {
    std::uint64_t n = 0;
    const auto m = mf::load(dir + "/manifest").value();
    for (const auto& e : m.entries)
      if (e.type == mf::Type::file && (e.link.empty() || e.link == e.path)) n += e.size;
    return n;
  }
};

TEST_F(SignCli, KeyGenerateIdAndList) {
  auto g = run_chrootctl({"key", "generate", "--out", path("keys")});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  const auto lines = split(g.out, '\n');
  ASSERT_EQ(lines.size(), 4u) << g.out;
  ASSERT_EQ(lines[0].size(), 4u + 16u);
  const std::string id = lines[0].substr(4);
  EXPECT_EQ(g.out, str("key ", id, "\nprivate key: ", path("keys/" + id + ".key"), "\npublic key:  ", path("keys/" + id + ".pub"), "\n"));
  auto i = run_chrootctl({"key", "id", path("keys/" + id + ".pub"), path("keys/" + id + ".key")});
  EXPECT_EQ(i.out, str(id, "  ", path("keys/" + id + ".pub"), "\n", id, "  ", path("keys/" + id + ".key"), "\n"));
  ASSERT_EQ(sh(str("cp '", path("keys/" + id + ".pub"), "' '", trusted, "/'")).exit_code, 0);
  auto l = run_chrootctl({"key", "list", "--trusted", trusted});
  EXPECT_EQ(l.exit_code, 0) << l.err;
  EXPECT_EQ(l.out, str(id, "  trusted  ", trusted, "/", id, ".pub\n"));
  mkdirs(revoked);
  ASSERT_EQ(::rename(str(trusted, "/", id, ".pub").c_str(), str(revoked, "/", id, ".pub").c_str()), 0);
  l = run_chrootctl({"key", "list", "--trusted", trusted, "--json"});
  auto py = run({"python3", "-c", "import json,sys; d=json.load(sys.stdin); print([(k['id'], k['state']) for k in d['keys']])"}, l.out);
  EXPECT_EQ(py.out, str("[('", id, "', 'revoked')]\n")) << l.out;
  auto bad = run_chrootctl({"key", "generate"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "chrootctl key generate: --out DIR is required\nTry 'chrootctl key generate --help'.\n");
}

TEST_F(SignCli, SignThenRequireSignatureAtResolveAndRun) {
  const std::string dir = make_build("el9", "b1");
  auto a = ctl({"add", "-q", "EL9", dir});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.err, "");
  const std::string cfg = path("etc/config-required.toml");
  auto r = ctl({"resolve", "EL9"}, true);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, str("chrootctl: error: 'EL9' is not usable: it is not signed and require_signature is set in ", cfg, "\n"));
  mkdirs(path("sandbox"), 0755);
  auto run = ctl({"run", "EL9", "--sandbox", path("sandbox"), "--", "/usr/bin/job"}, true);
  EXPECT_EQ(run.exit_code, 125) << run.out;
  EXPECT_EQ(run.err, str("chrootctl: error: 'EL9' is not usable: it is not signed and require_signature is set in ", cfg, "\n"));

  const auto key = make_key();
  trust(key);
  auto sg = ctl({"sign", "-q", "EL9", "--key", key.private_file});
  ASSERT_EQ(sg.exit_code, 0) << sg.err;
  EXPECT_EQ(sg.out, str("signed ", dir, " with key ", key.id, " (", entries_of(dir), " entries checked, tree sha256:", digest_of(dir),
                        ")\nEL9: signer ", key.id, " recorded\n"));
  r = ctl({"resolve", "EL9"}, true);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, dir + "/root\n");
  auto l = ctl({"list", "--json"}, true);
  auto py = run_json(l.out, "e=d['entries'][0]; print(e['state'], e['current']['signer'])");
  EXPECT_EQ(py, str("verified ", key.id, "\n"));

  revoke(key);
  r = ctl({"resolve", "EL9"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            str("chrootctl: error: 'EL9' is not usable: it is signed by key ", key.id, ", which is revoked (", revoked, "/", key.id, ".pub)\n"));
  run = ctl({"run", "EL9", "--sandbox", path("sandbox"), "--", "/usr/bin/job"});
  EXPECT_EQ(run.exit_code, 125);
  EXPECT_EQ(run.err, r.err);
  auto sh_ = ctl({"show", "EL9"});
  EXPECT_NE(sh_.out.find("state:     revoked (it is signed by key "), std::string::npos) << sh_.out;

  // Signing with a world-readable private key is refused (exit 1), a missing --key is a usage error.
  ASSERT_EQ(::chmod(key.private_file.c_str(), 0644), 0);
  sg = ctl({"sign", "-q", "EL9", "--key", key.private_file});
  EXPECT_EQ(sg.exit_code, 1);
  EXPECT_EQ(sg.err, str("chrootctl: error: private key '", key.private_file, "' is accessible by group or others (mode 0644); make it mode 0600\n"));
  EXPECT_EQ(ctl({"sign", "EL9"}).exit_code, 2);
}

TEST_F(SignCli, ExportImportAndTheirRefusals) {
  CHROOTCTL_REQUIRE_TOOL("zstd");
  const auto key = make_key();
  trust(key);
  // Nothing privileged: the default strip policy of import refuses that (boundary_test.cpp).
  const std::string dir = make_build("el9", "b1", "127.0.0.1 localhost\n", true, false);
  ASSERT_EQ(ctl({"add", "-q", "EL9", dir}).exit_code, 0);
  ASSERT_EQ(ctl({"sign", "-q", "EL9", "--key", key.private_file}).exit_code, 0);
  const std::string archive = path("el9.tar.zst");
  auto e = ctl({"export", "-q", "EL9", "-o", archive});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(e.out.substr(0, e.out.find(" to ")),
            str("EL9: exported ", entries_of(dir), " entries (", human_size(bytes_of(dir)), ", sha256:", digest_of(dir), ")"));
  EXPECT_NE(e.out.find(str(", signed by key ", key.id, ")\n")), std::string::npos) << e.out;

  const std::string store2 = path("store2");
  auto i = ctl_store(store2, {"import", "-q", archive, "--as", "WORKER9"}, true);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(i.out, str("WORKER9: imported build b1 (", entries_of(dir), " entries, sha256:", digest_of(dir), ", signed by key ", key.id,
                       ")\nWORKER9 -> ", store2, "/el9/b1/root\n"));
  EXPECT_EQ(i.err, "");
  auto r = ctl_store(store2, {"resolve", "--fast", "WORKER9"}, true);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, store2 + "/el9/b1/root\n");

  // One byte flipped in one file: exit 1 with the difference, nothing left.
  ASSERT_EQ(sh(str("zstd -q -d -c '", archive, "' > '", path("x.tar"),
                   "' && python3 -c \"import sys; p=sys.argv[1]; t=bytearray(open(p,'rb').read()); "
                   "i=t.index(b'127.0.0.1 localhost'); t[i]=48; open(p,'wb').write(t)\" '",
                   path("x.tar"), "' && zstd -q '", path("x.tar"), "' -o '", path("bad.tar.zst"), "'"))
                .exit_code,
            0);
  const std::string store3 = path("store3");
  i = ctl_store(store3, {"import", "-q", path("bad.tar.zst")});
  EXPECT_EQ(i.exit_code, 1);
  EXPECT_EQ(i.err.substr(0, i.err.find(" has sha256 ")), str("chrootctl: error: refusing to import '", path("bad.tar.zst"), "': extracting ",
                                                             path("bad.tar.zst"), ": the archive's '/etc/hosts'"));
  EXPECT_EQ(sh(str("cd '", store3, "' && find . -mindepth 1 | LC_ALL=C sort")).out, "./.locks\n./.locks/staging.lock\n./.staging\n");

  // Unsigned: refused without --allow-unsigned, accepted with it, never under require_signature.
  const std::string udir = make_build("sl7", "u1", "10.7.7.7 localhost\n", false);
  ASSERT_EQ(ctl({"add", "-q", "SL7", udir}).exit_code, 0);
  ASSERT_EQ(ctl({"export", "-q", "SL7", "-o", path("sl7.tar.zst")}).exit_code, 0);
  i = ctl_store(store3, {"import", "-q", path("sl7.tar.zst")});
  EXPECT_EQ(i.exit_code, 1);
  EXPECT_EQ(i.err, str("chrootctl: error: refusing to import '", path("sl7.tar.zst"),
                       "': it is not signed (import it with --allow-unsigned to accept it unsigned)\n"));
  i = ctl_store(store3, {"import", "-q", "--allow-unsigned", path("sl7.tar.zst")}, true);
  EXPECT_EQ(i.exit_code, 1);
  EXPECT_EQ(i.err, str("chrootctl: error: refusing to import '", path("sl7.tar.zst"), "': it is not signed and require_signature is set in ",
                       path("etc/config-required.toml"), "\n"));
  i = ctl_store(store3, {"import", "-q", "--allow-unsigned", path("sl7.tar.zst")});
  EXPECT_EQ(i.exit_code, 0) << i.err;
  EXPECT_NE(i.out.find(", unsigned)\n"), std::string::npos) << i.out;
  EXPECT_EQ(ctl_store(store3, {"import", path("missing.tar.zst")}).exit_code, 2);
  // A truncated archive is refused (exit 1), like any other damage to its contents.
  ASSERT_EQ(sh(str("head -c 100 '", archive, "' > '", path("cut.tar.zst"), "'")).exit_code, 0);
  i = ctl_store(path("store4"), {"import", "-q", path("cut.tar.zst")});
  EXPECT_EQ(i.exit_code, 1);
  EXPECT_EQ(i.err, str("chrootctl: error: refusing to import '", path("cut.tar.zst"), "': '", path("cut.tar.zst"), "': Truncated zstd input\n"));
}

// The name an archive carries is not signed, nor is which build it holds: an older signed build
// of the same recipe, or a signed build of another recipe, must not silently take a name.
TEST_F(SignCli, ImportRefusesAnOlderBuildOrAnotherRecipeUnderANameWithoutAllowDowngrade) {
  CHROOTCTL_REQUIRE_TOOL("zstd");
  const auto key = make_key();
  trust(key);
  auto signed_export = [&](const std::string& recipe, const std::string& id, std::int64_t epoch, const std::string& hosts) {
    const std::string dir = make_build(recipe, id, hosts, true, false);
    write_file(dir + "/lock", read_file(dir + "/lock") + str("source_date_epoch = ", epoch, "\n"));
    const std::string name = str("X", recipe, id);
    EXPECT_EQ(ctl({"add", "-q", name, dir}).exit_code, 0);
    EXPECT_EQ(ctl({"sign", "-q", name, "--key", key.private_file}).exit_code, 0);
    std::string archive = path(name + ".tar.zst");
    EXPECT_EQ(ctl({"export", "-q", name, "-o", archive}).exit_code, 0);
    return archive;
  };
  const std::string old_el9 = signed_export("el9", "b1", 1700000000, "10.0.0.1 localhost\n");
  const std::string new_el9 = signed_export("el9", "b2", 1700100000, "10.0.0.2 localhost\n");
  const std::string sl7 = signed_export("sl7", "c1", 1700200000, "10.0.0.3 localhost\n");
  const std::string worker = path("worker");
  auto i = ctl_store(worker, {"import", "-q", new_el9, "--as", "PROD"}, true);
  ASSERT_EQ(i.exit_code, 0) << i.err;
  i = ctl_store(worker, {"import", "-q", old_el9, "--as", "PROD"}, true);
  EXPECT_EQ(i.exit_code, 1);
  EXPECT_EQ(i.err, str("chrootctl: error: refusing to import '", old_el9,
                       "': refusing to replace build b2 of 'PROD' by the older build b1 (its inputs are of 2023-11-14T22:13:20Z, the current "
                       "build's of 2023-11-16T02:00:00Z) (give --allow-downgrade to replace it all the same)\n"));
  i = ctl_store(worker, {"import", "-q", sl7, "--as", "PROD"}, true);
  EXPECT_EQ(i.exit_code, 1);
  EXPECT_EQ(i.err,
            str("chrootctl: error: refusing to import '", sl7,
                "': refusing to replace 'PROD', a build of recipe 'el9', by build c1 of recipe 'sl7' (give --allow-downgrade to replace it all "
                "the same)\n"));
  EXPECT_EQ(ctl_store(worker, {"resolve", "PROD"}, true).out, worker + "/el9/b2/root\n") << "PROD was not changed";
  EXPECT_EQ(sh(str("cd '", worker, "' && ls -d */*")).out, "el9/b2\n") << "a refused import wrote nothing";
  // A newer build of the same recipe needs nothing; the site may choose an older one.
  i = ctl_store(worker, {"import", "-q", old_el9, "--as", "PROD", "--allow-downgrade"}, true);
  EXPECT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(ctl_store(worker, {"resolve", "PROD"}, true).out, worker + "/el9/b1/root\n");
  i = ctl_store(worker, {"import", "-q", new_el9, "--as", "PROD"}, true);
  EXPECT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(ctl_store(worker, {"resolve", "PROD"}, true).out, worker + "/el9/b2/root\n");
  // The same time: neither can be shown to be newer (a recipe that pins source_date_epoch).
  const std::string same_time = signed_export("el9", "b3", 1700100000, "10.0.0.4 localhost\n");
  i = ctl_store(worker, {"import", "-q", same_time, "--as", "PROD"}, true);
  EXPECT_EQ(i.exit_code, 1);
  EXPECT_NE(i.err.find("refusing to replace build b2 of 'PROD' by build b3: their inputs are of the same time (2023-11-16T02:00:00Z), so "
                       "neither can be shown to be newer"),
            std::string::npos)
      << i.err;
  // Builds whose locks record no time: one the name had before is not taken back silently.
  auto unsigned_export = [&](const std::string& id, const std::string& hosts) {
    const std::string dir = make_build("sl6", id, hosts, true, false);
    const std::string name = str("Xsl6", id);
    EXPECT_EQ(ctl({"add", "-q", name, dir}).exit_code, 0);
    std::string archive = path(name + ".tar.zst");
    EXPECT_EQ(ctl({"export", "-q", name, "-o", archive}).exit_code, 0);
    return archive;
  };
  const std::string u1 = unsigned_export("u1", "10.6.0.1 localhost\n");
  const std::string u2 = unsigned_export("u2", "10.6.0.2 localhost\n");
  EXPECT_EQ(ctl_store(worker, {"import", "-q", "--allow-unsigned", u1, "--as", "OLD"}).exit_code, 0);
  EXPECT_EQ(ctl_store(worker, {"import", "-q", "--allow-unsigned", u2, "--as", "OLD"}).exit_code, 0);
  i = ctl_store(worker, {"import", "-q", "--allow-unsigned", u1, "--as", "OLD"});
  EXPECT_EQ(i.exit_code, 1);
  EXPECT_NE(i.err.find("refusing to make build u1, an earlier build of 'OLD', current again (it is at build u2; 'chrootctl rollback' does that "
                       "on purpose)"),
            std::string::npos)
      << i.err;
  auto misuse = ctl_store(worker, {"add", "PROD", worker + "/el9/b1", "--allow-downgrade"});
  EXPECT_EQ(misuse.exit_code, 2);
  EXPECT_EQ(misuse.err, "chrootctl add: --allow-downgrade applies to --from\nTry 'chrootctl add --help'.\n");
}

TEST_F(SignCli, PublishAndAddFrom) {
  const auto key = make_key();
  trust(key);
  // Published trees hold nothing privileged (publish refuses them: boundary_test.cpp).
  const std::string dir = make_build("el9", "b1", "127.0.0.1 localhost\n", true, false);
  write_file(dir + "/lock", read_file(dir + "/lock") + "source_date_epoch = 1700000000\n");
  ASSERT_EQ(ctl({"add", "-q", "EL9", dir}).exit_code, 0);
  const std::string pub = path("pub");
  auto p = ctl({"publish", "-q", "EL9", pub});
  EXPECT_EQ(p.exit_code, 1);
  EXPECT_EQ(p.err,
            "chrootctl: error: refusing to publish 'EL9': it is not signed (sign it with 'chrootctl sign EL9 --key KEY', or publish it with "
            "--allow-unsigned)\n");
  ASSERT_EQ(ctl({"sign", "-q", "EL9", "--key", key.private_file}).exit_code, 0);
  p = ctl({"publish", "-q", "EL9", pub});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(p.out, str("EL9: published build b1 at ", pub, "/EL9/b1 (", entries_of(dir), " entries; 0 of 9 files hard-linked to earlier builds, ",
                       human_size(bytes_of(dir)), " copied)\nEL9: ", pub, "/catalogue.d/EL9.toml names it\n"));
  const std::string b2 = make_build("el9", "b2", "10.0.0.2 localhost\n", true, false);
  write_file(b2 + "/lock", read_file(b2 + "/lock") + "source_date_epoch = 1700100000\n");
  ASSERT_EQ(ctl({"sign", "-q", b2, "--key", key.private_file}).exit_code, 0);
  ASSERT_EQ(ctl({"add", "-q", "EL9", b2}).exit_code, 0);
  p = ctl({"publish", "--json", "EL9", pub});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(run_json(p.out, "print(d['build_id'], d['files'], d['files_linked'], d['signer'] != '')"), "b2 9 8 True\n");

  const std::string worker = path("worker");
  auto a = ctl_store(worker, {"add", "-q", "--from", pub}, true);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, str("EL9: added build b2 (", entries_of(b2), " entries, sha256:", digest_of(b2), ", signed by key ", key.id, ")\nEL9 -> ", pub,
                       "/EL9/b2/root\n"));
  auto r = ctl_store(worker, {"resolve", "EL9"}, true);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, pub + "/EL9/b2/root\n");
  a = ctl_store(worker, {"add", "--from", pub, "NOPE"});
  EXPECT_EQ(a.exit_code, 2);
  EXPECT_EQ(a.err, str("chrootctl: error: 'NOPE' is not published in ", pub, " (no ", pub, "/catalogue.d/NOPE.toml)\n"));
  EXPECT_EQ(ctl_store(worker, {"add", "EL9"}).exit_code, 2) << "NAME without BUILD-DIR is a usage error";
  // The fragment is not signed: pointed back at the older build b1 (still published), it does
  // not replace b2 unless the site says so.
  const std::string fragment = pub + "/catalogue.d/EL9.toml";
  std::string text = read_file(fragment);
  for (const auto& [from, to] : {std::pair{std::string("b2"), std::string("b1")}, std::pair{digest_of(b2), digest_of(dir)}})
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) text.replace(at, from.size(), to);
  write_file(fragment, text);
  a = ctl_store(worker, {"add", "-q", "--from", pub}, true);
  EXPECT_EQ(a.exit_code, 1);
  EXPECT_NE(a.err.find("refusing to replace build b2 of 'EL9' by the older build b1 (its inputs are of 2023-11-14T22:13:20Z, the current "
                       "build's of 2023-11-16T02:00:00Z) (give --allow-downgrade to replace it all the same)"),
            std::string::npos)
      << a.err;
  EXPECT_EQ(ctl_store(worker, {"resolve", "EL9"}, true).out, pub + "/EL9/b2/root\n");
  EXPECT_EQ(sh(str("cd '", worker, "/EL9' && ls -d from-*")).out, "from-b2\n") << "a refused add --from wrote nothing";
  a = ctl_store(worker, {"add", "-q", "--from", pub, "--allow-downgrade"}, true);
  EXPECT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(ctl_store(worker, {"resolve", "EL9"}, true).out, pub + "/EL9/b1/root\n");
}

}  // namespace
}  // namespace chrootctl::test::sign
