// Choosing a job's policy, its source and digest, and the compiled program's file as the
// launcher reads it (every refusal with its exact message).
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/sha256_builtin.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/launcher/seccomp_program.hpp"
#include "chrootctl/seccomp/compile.hpp"
#include "chrootctl/seccomp/source.hpp"
#include "test_support.hpp"

namespace chrootctl::seccomp {
namespace {

TEST(SeccompSha256, TheBuiltinDigestAgreesWithTheStandardAndWithOpenSSL) {
  EXPECT_EQ(BuiltinSha256::hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(BuiltinSha256::hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(BuiltinSha256::hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(BuiltinSha256::hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  std::mt19937 rng(7);
  for (std::size_t len = 0; len < 300; ++len) {
    std::string data(len, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    ASSERT_EQ(BuiltinSha256::hex(data), Sha256::hex(data)) << len;
  }
}

TEST(SeccompSource, TheRequestWinsOverTheImageOverTheSite) {
  Settings s;
  EXPECT_EQ(choose_job_policy(std::nullopt, "", s), "default");
  s.seccomp.policy = "/etc/chrootctl/site.toml";
  EXPECT_EQ(choose_job_policy(std::nullopt, "", s), "/etc/chrootctl/site.toml");
  EXPECT_EQ(choose_job_policy(std::nullopt, "none", s), "none");
  EXPECT_EQ(choose_job_policy(std::string("default"), "none", s), "default");
}

class SeccompSourceFiles : public test::TempDirTest {};

TEST_F(SeccompSourceFiles, DocumentsAndDigests) {
  Settings s;
  auto none = load_source("none", s);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());

  auto def = load_source("default", s);
  ASSERT_TRUE(def && *def);
  ASSERT_EQ((*def)->documents.size(), 1u);
  EXPECT_EQ((*def)->documents[0].name, "built-in policy 'default'");
  const std::string d0 = policy_digest(**def);
  EXPECT_TRUE(is_sha256_hex(d0));

  // The site's additions join job policies (and change the digest), never the build policies.
  s.config_file = "/etc/chrootctl/config.toml";
  s.config_text = "[seccomp]\ndeny = [\"ptrace\"]\n";
  s.seccomp.deny = {"ptrace"};
  auto with_site = load_source("default", s);
  ASSERT_TRUE(with_site && *with_site);
  ASSERT_EQ((*with_site)->documents.size(), 2u);
  EXPECT_TRUE((*with_site)->documents[1].site);
  EXPECT_NE(policy_digest(**with_site), d0);
  auto build = load_source("build", s);
  ASSERT_TRUE(build && *build);
  EXPECT_EQ((*build)->documents.size(), 1u);

  EXPECT_EQ(canonical_source(PolicySource{"p", {{"n", "t", "", false}, {"c", "xy", "", true}}}),
            "chrootctl seccomp source 2\nlibseccomp " CHROOTCTL_TEST_LIBSECCOMP_VERSION
            "\narch x86_64\npolicy 1\np\n"
            "document policy 1 sha256:" +
                BuiltinSha256::hex("t") +
                "\nn\n"
                "document site 1 sha256:" +
                BuiltinSha256::hex("xy") + "\nc\n");
  for (auto name : k_builtin_policies)
    EXPECT_EQ(builtin_policy_sha256(name), BuiltinSha256::hex(builtin_policy_text(name))) << name << ": the digest computed by CMake";

  auto bad = load_source("strict", s);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().what(), "system-call policy 'strict': expected default, none or the absolute path of a policy file");
}

TEST_F(SeccompSourceFiles, APolicyFileOthersCanWriteIsRefused) {
  const std::string f = path("site.toml");
  test::write_file(f, "base = \"default\"\n", 0644);
  auto ok = load_source(f, Settings{});
  ASSERT_TRUE(ok && *ok) << (ok ? "" : ok.error().what());
  EXPECT_EQ((*ok)->documents[0].name, f);
  EXPECT_EQ((*ok)->documents[0].text, "base = \"default\"\n");
  ASSERT_EQ(::chmod(f.c_str(), 0664), 0);
  auto bad = load_source(f, Settings{});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().what(), "refusing system-call policy " + f + ": owned by uid " + std::to_string(::geteuid()) +
                                    " with mode 0664 (it must belong to root and be writable by no one else)");
}

// The program file as the launcher reads it.
class SeccompProgramFile : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0);
    digest = std::string(64, 'a');
    program = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    file = path(digest + ".bpf");
  }
  void write(const std::string& bytes, mode_t mode = 0644) {
    test::write_file(file, bytes, mode);
    ASSERT_EQ(::chmod(file.c_str(), mode), 0);
  }
  std::string error() {
    auto r = launcher::read_seccomp_program(file, "default", digest);
    return r ? std::string("(read)") : r.error().what();
  }
  std::string digest, file;
  std::vector<sock_filter> program;
};

TEST_F(SeccompProgramFile, AValidProgramIsRead) {
  write(encode_program(digest, program));
  auto r = launcher::read_seccomp_program(file, "default", digest);
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->instructions.size(), 1u);
  EXPECT_EQ(r->instructions[0].k, SECCOMP_RET_ALLOW);
  EXPECT_EQ(r->policy, "default");
  const std::string bytes = encode_program(digest, program);
  ASSERT_EQ(bytes.size(), 64u);
  EXPECT_EQ(bytes.substr(0, 8), "CHRTSCMP");
}

TEST_F(SeccompProgramFile, EveryDamageIsRefused) {
  const std::string prefix = "system-call filter " + file + " (policy 'default'): ";
  std::string bytes = encode_program(digest, program);
  write(bytes.substr(0, 60));
  EXPECT_EQ(error(), prefix + "its size (60 bytes) is not a header and 1 to 4096 instructions");
  std::string magic = bytes;
  magic[0] = 'X';
  write(magic);
  EXPECT_EQ(error(), prefix + "not a chrootctl system-call filter (bad magic)");
  std::string arch = bytes;
  const std::uint32_t i386 = AUDIT_ARCH_I386;
  std::memcpy(arch.data() + 12, &i386, 4);
  write(arch);
  EXPECT_EQ(error(), prefix + "compiled for audit architecture 0x40000003, this machine is 0xc000003e");
  write(encode_program(std::string(64, 'b'), program));
  EXPECT_EQ(error(), prefix + "it was compiled from the policy sha256:" + std::string(64, 'b') + ", not sha256:" + digest);
  std::string count = bytes;
  const std::uint32_t two = 2;
  std::memcpy(count.data() + 16, &two, 4);
  write(count);
  EXPECT_EQ(error(), prefix + "the header counts 2 instructions, the file holds 1");
  write(bytes, 0664);
  EXPECT_EQ(error(), prefix + "the file is writable by group or others (mode 0664)");
  write(bytes, 0644);
  ASSERT_EQ(::chmod(m_dir.c_str(), 0777), 0);
  EXPECT_EQ(error(), prefix + "its directory " + m_dir + " is writable by group or others (mode 0777)");
  ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0);
  ASSERT_EQ(::unlink(file.c_str()), 0);
  test::write_file(path("elsewhere"), bytes);
  ASSERT_EQ(::symlink("elsewhere", file.c_str()), 0);
  EXPECT_NE(error().find("Too many levels of symbolic links"), std::string::npos) << error();
}

TEST_F(SeccompProgramFile, TheCacheCompilesOnceAndReadsItBack) {
  auto src = load_source("default", Settings{});
  ASSERT_TRUE(src && *src);
  const std::string dir = path("cache");
  auto first = compile_to_cache(**src, dir);
  ASSERT_TRUE(first) << first.error().what();
  EXPECT_TRUE(first->compiled);
  EXPECT_EQ(first->path, dir + "/" + policy_digest(**src) + ".bpf");
  struct stat st {};
  ASSERT_EQ(::stat(first->path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(static_cast<std::size_t>(st.st_size), 56 + 8 * first->instructions);
  auto again = compile_to_cache(**src, dir);
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->compiled);
  EXPECT_EQ(test::sh("ls -A '" + dir + "'").out, policy_digest(**src) + ".bpf\n") << "no temporary file left";
  // A damaged program is compiled again.
  test::write_file(first->path, "garbage", 0644);
  auto third = compile_to_cache(**src, dir);
  ASSERT_TRUE(third) << third.error().what();
  EXPECT_TRUE(third->compiled);
  ASSERT_EQ(::chmod(dir.c_str(), 0775), 0);
  auto refused = compile_to_cache(**src, dir);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().what(), "the system-call filter cache " + dir + " is writable by group or others (mode 0775)");
}

}  // namespace
}  // namespace chrootctl::seccomp
