// The pure parts of the Slurm plugin: plugstack.conf arguments, --chroot and --chroot-scratch
// values, the resolver's JSON, the names of per-step directories.
#include <gtest/gtest.h>

#include "../../batch/slurm/spank_config.hpp"

namespace chrootctl::batch {
namespace {

std::string show(const launcher::BindSpec& b) { return b.source + " -> " + b.target + (b.read_only ? " ro" : ""); }

TEST(BatchSpankConfig, PlugstackArgumentsWithDefaults) {
  auto c = parse_plugstack_args({"chrootctl=/usr/bin/chrootctl"});
  ASSERT_TRUE(c) << c.error().what();
  EXPECT_EQ(c->chrootctl, "/usr/bin/chrootctl");
  EXPECT_FALSE(c->store);
  EXPECT_FALSE(c->config);
  EXPECT_EQ(c->jobdirs, "/var/spool/chrootctl/slurm");
  EXPECT_EQ(c->scratch, (std::vector<std::string>{"/tmp", "/var/tmp"}));
  EXPECT_TRUE(c->binds.empty());
  EXPECT_FALSE(c->fast);
  EXPECT_EQ(c->timeout_seconds, 60u);
}

TEST(BatchSpankConfig, EveryPlugstackArgument) {
  auto c = parse_plugstack_args({"chrootctl=/opt/c/bin/chrootctl", "store=/srv/images", "config=/etc/c.toml", "jobdirs=/local/jobs",
                                 "scratch=/tmp,/scratch", "bind=/cvmfs:/cvmfs:ro", "bind=/home", "bind=/data:/mnt/data", "fast", "timeout=5"});
  ASSERT_TRUE(c) << c.error().what();
  EXPECT_EQ(*c->store, "/srv/images");
  EXPECT_EQ(*c->config, "/etc/c.toml");
  EXPECT_EQ(c->jobdirs, "/local/jobs");
  EXPECT_EQ(c->scratch, (std::vector<std::string>{"/tmp", "/scratch"}));
  ASSERT_EQ(c->binds.size(), 3u);
  EXPECT_EQ(show(c->binds[0]), "/cvmfs -> /cvmfs ro");
  EXPECT_EQ(show(c->binds[1]), "/home -> /home");
  EXPECT_EQ(show(c->binds[2]), "/data -> /mnt/data");
  EXPECT_TRUE(c->fast);
  EXPECT_EQ(c->timeout_seconds, 5u);
}

TEST(BatchSpankConfig, PlugstackErrorsAreCollectedAndNamed) {
  auto c = parse_plugstack_args({"stor=/srv/images", "chrootctl=chrootctl", "bind=/a/../b", "timeout=0"});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(),
            "unknown argument 'stor=/srv/images' (known: chrootctl= store= config= jobdirs= scratch= bind= fast timeout=); "
            "chrootctl= needs an absolute path (got 'chrootctl=chrootctl'); "
            "bind=/a/../b: SRC and DST must be absolute paths without '.' or '..'; "
            "timeout=0: expected seconds, 1 to 3600");
  auto missing = parse_plugstack_args({"store=/srv/images"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "chrootctl=PATH is required (the chrootctl binary; it is never searched in PATH)");
}

TEST(BatchSpankConfig, ChrootNamesFollowTheCatalogueRules) {
  EXPECT_EQ(invalid_chroot_name("EL9"), std::nullopt);
  EXPECT_EQ(invalid_chroot_name("rhel-5.11+x86_64"), std::nullopt);
  EXPECT_EQ(*invalid_chroot_name(""), "the name is empty");
  EXPECT_EQ(*invalid_chroot_name("--store=/x"), "the name '--store=/x' does not start with a letter or a digit");
  EXPECT_EQ(*invalid_chroot_name("a b"), "the name 'a b' holds ' ' (allowed: letters, digits, _ - . +)");
  EXPECT_EQ(*invalid_chroot_name("a/b"), "the name 'a/b' holds '/' (allowed: letters, digits, _ - . +)");
  EXPECT_EQ(*invalid_chroot_name(std::string(65, 'a')), "the name '" + std::string(65, 'a') + "' is longer than 64 bytes");
  EXPECT_EQ(*invalid_chroot_name("Root"), "'Root' is reserved: it means the host's own root, where chrootctl never runs a job");
}

TEST(BatchSpankConfig, ScratchLists) {
  EXPECT_EQ(*parse_scratch_list("/tmp, /var/tmp,,/scratch/x", "--chroot-scratch"), (std::vector<std::string>{"/tmp", "/var/tmp", "/scratch/x"}));
  EXPECT_TRUE(parse_scratch_list("", "--chroot-scratch")->empty());
  EXPECT_EQ(parse_scratch_list("tmp", "--chroot-scratch").error().message(), "--chroot-scratch: 'tmp' is not an absolute path without '.' or '..'");
  EXPECT_EQ(parse_scratch_list("/tmp/../etc", "--chroot-scratch").error().message(),
            "--chroot-scratch: '/tmp/../etc' is not an absolute path without '.' or '..'");
  EXPECT_EQ(parse_scratch_list("/tmp,/", "--chroot-scratch").error().message(), "--chroot-scratch: '/' cannot be a scratch directory");
  std::string many;
  for (int i = 0; i < 17; ++i) many += "/d" + std::to_string(i) + ",";
  EXPECT_EQ(parse_scratch_list(many, "--chroot-scratch").error().message(), "--chroot-scratch: more than 16 directories");
}

TEST(BatchSpankConfig, ResolveJsonAsChrootctlPrintsIt) {
  const std::string json = R"({
  "name": "RHEL9",
  "entry": "EL9",
  "root": "/srv/images/el9/b\\x201/root",
  "image": "/srv/images/el9/b\\x201",
  "digest": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
  "build_id": "b 1",
  "verified_at": 1795436557,
  "sealed": false,
  "seccomp_policy": "default",
  "seccomp_digest": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
  "seccomp_program": "/run/chrootctl/seccomp/2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae.bpf"
}
)";
  auto r = parse_resolve_json(json);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->entry, "EL9");
  EXPECT_EQ(r->root, "/srv/images/el9/b 1/root");  // JSON, then escape_bytes, undone
  EXPECT_EQ(r->digest, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  EXPECT_EQ(r->seccomp_policy, "default");
  EXPECT_EQ(r->seccomp_digest, "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae");
  EXPECT_EQ(r->seccomp_program, "/run/chrootctl/seccomp/2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae.bpf");
}

TEST(BatchSpankConfig, ResolveJsonWithoutAUsableFilterIsRefused) {
  // A resolver that printed no policy (an older chrootctl) would let the job run unfiltered.
  EXPECT_EQ(parse_resolve_json(R"({"entry": "EL9", "root": "/r", "digest": "d"})").error().message(),
            "'chrootctl resolve --json --with-seccomp' printed no \"seccomp_policy\" (is chrootctl= an older chrootctl?)");
  const std::string bad = "'chrootctl resolve --json --with-seccomp' printed a system-call filter that cannot be used (policy 'default')";
  EXPECT_EQ(parse_resolve_json(R"({"entry": "EL9", "root": "/r", "digest": "d", "seccomp_policy": "default"})").error().message(), bad);
  EXPECT_EQ(parse_resolve_json(R"({"entry": "EL9", "root": "/r", "digest": "d", "seccomp_policy": "default", "seccomp_digest": "x",
      "seccomp_program": "/p.bpf"})")
                .error()
                .message(),
            bad);
  EXPECT_EQ(parse_resolve_json(R"({"entry": "EL9", "root": "/r", "digest": "d", "seccomp_policy": "default",
      "seccomp_digest": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", "seccomp_program": "relative.bpf"})")
                .error()
                .message(),
            bad);
  auto none = parse_resolve_json(R"({"entry": "EL9", "root": "/r", "digest": "d", "seccomp_policy": "none", "seccomp_digest": null,
      "seccomp_program": null})");
  ASSERT_TRUE(none) << none.error().what();
  EXPECT_EQ(none->seccomp_policy, "none");
  EXPECT_EQ(none->seccomp_program, "");
}

TEST(BatchSpankConfig, ResolveJsonThatCannotBeTrusted) {
  EXPECT_EQ(parse_resolve_json("").error().message(), "unreadable output of 'chrootctl resolve --json' at byte 0: expected '{'");
  EXPECT_EQ(parse_resolve_json(R"({"seccomp_policy": "none", "entry": "EL9", "root": "/x"})").error().message(),
            "unreadable output of 'chrootctl resolve --json': \"entry\", \"root\" or \"digest\" is missing");
  EXPECT_EQ(parse_resolve_json(R"({"seccomp_policy": "none", "entry": "EL9", "root": "relative", "digest": "d"})").error().message(),
            "'chrootctl resolve --json' printed a root that is not an absolute path: 'relative'");
  EXPECT_EQ(parse_resolve_json(R"({"seccomp_policy": "none", "entry": "EL9", "root": "/a/../b", "digest": "d"})").error().message(),
            "'chrootctl resolve --json' printed a root that is not an absolute path: '/a/../b'");
  EXPECT_EQ(parse_resolve_json(R"({"seccomp_policy": "none", "entry": {"x": 1}})").error().message(),
            "unreadable output of 'chrootctl resolve --json' at byte 36: unexpected value");
  EXPECT_EQ(parse_resolve_json(R"({"seccomp_policy": "none", "entry": "EL9", "root": "/r", "digest": "d"} extra)").error().message(),
            "unreadable output of 'chrootctl resolve --json' at byte 72: trailing data");
  auto escaped = parse_resolve_json(R"({"seccomp_policy": "none", "entry": "E\u004c9", "root": "/r\/s", "digest": "d"})");
  ASSERT_TRUE(escaped) << escaped.error().what();
  EXPECT_EQ(escaped->entry, "EL9");
  EXPECT_EQ(escaped->root, "/r/s");
}

TEST(BatchSpankConfig, ResolveJsonNamesTheImageAndTheAccountingLog) {
  auto r = parse_resolve_json(R"({"seccomp_policy": "none", "name": "EL9", "entry": "EL9", "root": "/r", "digest": "d", "build_id": "b1",
      "signer": "0123456789abcdef", "accounting_log": "/var/log/chrootctl/launches.jsonl",
      "accounting_max_bytes": 1048576, "accounting_keep": 3})");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->build_id, "b1");
  EXPECT_EQ(r->signer, "0123456789abcdef");
  ASSERT_TRUE(r->accounting);
  EXPECT_EQ(r->accounting->path, "/var/log/chrootctl/launches.jsonl");
  EXPECT_EQ(r->accounting->max_bytes, 1048576u);
  EXPECT_EQ(r->accounting->keep, 3u);
  // Unsigned, accounting off.
  r = parse_resolve_json(R"({"seccomp_policy": "none", "entry": "EL9", "root": "/r", "digest": "d", "signer": null, "accounting_log": null,
      "accounting_max_bytes": 1048576, "accounting_keep": 3})");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->signer, "");
  EXPECT_FALSE(r->accounting);
  EXPECT_EQ(
      parse_resolve_json(R"({"seccomp_policy": "none", "entry": "E", "root": "/r", "digest": "d", "accounting_log": "log", "accounting_max_bytes": 1,
      "accounting_keep": 3})")
          .error()
          .message(),
      "'chrootctl resolve --json' printed an accounting log that cannot be used: 'log'");
}

TEST(BatchSpankConfig, SealedImagesAreMountedForTheStep) {
  auto r = parse_resolve_json(
      R"({"seccomp_policy": "none", "name": "EL9", "entry": "EL9", "root": "/srv/el9/b1/image.erofs", "digest": "d", "sealed": true})");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_TRUE(r->sealed);
  EXPECT_FALSE(
      parse_resolve_json(R"({"seccomp_policy": "none", "entry": "EL9", "root": "/srv/el9/b1/root", "digest": "d", "sealed": false})")->sealed);
  EXPECT_FALSE(parse_resolve_json(R"({"seccomp_policy": "none", "entry": "EL9", "root": "/srv/el9/b1/root", "digest": "d"})")->sealed);
  auto m = parse_mount_json(R"({"name": "EL9", "root": "/run/chrootctl/sealed/ab\\x20c/root", "dev": 64768, "ino": 36, "verity": "none"})");
  ASSERT_TRUE(m) << m.error().what();
  EXPECT_EQ(m->root, "/run/chrootctl/sealed/ab c/root");
  EXPECT_EQ(m->dev, 64768u);
  EXPECT_EQ(m->ino, 36u);
  EXPECT_EQ(parse_mount_json(R"({"root": "/r", "dev": 1})").error().message(),
            "unreadable output of 'chrootctl mount --json': \"root\", \"dev\" or \"ino\" is missing");
  EXPECT_EQ(parse_mount_json(R"({"root": "r", "dev": 1, "ino": 2})").error().message(),
            "'chrootctl mount --json' printed an unreadable mount: 'r' 1 2");
  EXPECT_EQ(parse_mount_json(R"({"root": "/r", "dev": "x", "ino": 2})").error().message(),
            "'chrootctl mount --json' printed an unreadable mount: '/r' x 2");
}

TEST(BatchSpankConfig, StepDirectoryNames) {
  EXPECT_EQ(step_dir_name(42, 0), "42.0");
  EXPECT_EQ(step_dir_name(42, 0xfffffffbu), "42.batch");
  EXPECT_EQ(step_dir_name(42, 0xfffffffau), "42.interactive");
  EXPECT_TRUE(is_step_dir_of("42.0", 42));
  EXPECT_TRUE(is_step_dir_of("42.batch", 42));
  EXPECT_TRUE(is_step_dir_of("42.17", 42));
  EXPECT_FALSE(is_step_dir_of("420.0", 42));
  EXPECT_FALSE(is_step_dir_of("4.0", 42));
  EXPECT_FALSE(is_step_dir_of("42.", 42));
  EXPECT_FALSE(is_step_dir_of("42.x", 42));
  EXPECT_FALSE(is_step_dir_of("42.0/..", 42));
}

}  // namespace
}  // namespace chrootctl::batch
