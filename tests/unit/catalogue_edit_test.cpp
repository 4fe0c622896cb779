// Changing the catalogue: concurrent writers lose no update, a writer killed at any moment
// leaves the old or the new file, and a damaged file is never overwritten.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "test_support.hpp"

namespace chrootctl {
namespace {

namespace cat = catalogue;

cat::Entry entry(const std::string& name, std::size_t failure_bytes = 0) {
  cat::Entry e;
  e.name = name;
  e.current.image = "/srv/images/" + name + "/b1";
  e.current.root = e.current.image + "/root";
  e.current.digest = std::string(64, 'b');
  e.current.build_id = "b1";
  e.current.added_at = 1700000000;
  e.current.verified_at = 1700000000;
  e.current.identity = {1, 2, 0, 0, 0755};
  if (failure_bytes) {
    e.current.failed_at = 1700000001;
    e.current.failure = std::string(failure_bytes, 'x');
  }
  return e;
}

Status erase(cat::Catalogue& c, const std::string& name) {
  const cat::Entry* e = c.find(name);
  if (!e) return fail(Errc::not_found, name + " vanished: an update was lost");
  c.entries.erase(c.entries.begin() + (e - c.entries.data()));
  return {};
}

int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class CatalogueEdit : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    s.store = path("store");
  }
  std::set<std::string> names() {
    auto c = cat::load(s);
    EXPECT_TRUE(c) << c.error().what();
    std::set<std::string> out;
    if (c)
      for (const auto& e : c->entries) out.insert(e.name);
    return out;
  }
  Settings s;
};

TEST_F(CatalogueEdit, MissingFileIsEmptyAndFirstEditCreatesStoreAndFile) {
  auto c = cat::load(s);
  ASSERT_TRUE(c) << c.error().what();
  EXPECT_TRUE(c->entries.empty());
  ASSERT_TRUE(cat::edit(s, [](cat::Catalogue& x) -> Status {
    x.insert(entry("EL9"));
    return {};
  }));
  EXPECT_EQ(names(), (std::set<std::string>{"EL9"}));
  struct stat st {};
  ASSERT_EQ(::stat(cat::catalogue_path(s).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST_F(CatalogueEdit, TwentyProcessesAddingAndRemovingDifferentNamesLoseNoUpdate) {
  ASSERT_TRUE(cat::edit(s, [](cat::Catalogue& c) -> Status {
    for (int i = 0; i < 10; ++i) c.insert(entry(str("OLD", i)));
    return {};
  }));
  constexpr int k_procs = 20, k_ops = 10;
  std::vector<pid_t> pids;
  for (int p = 0; p < k_procs; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      bool ok = true;
      for (int k = 0; k < k_ops; ++k) {
        const std::string name = str("P", p, "_", k);
        ok = ok && cat::edit(s, [&](cat::Catalogue& c) -> Status {
                     c.insert(entry(name));
                     return {};
                   }).has_value();
        // Half of the processes also remove one of the names that existed before, and one of their own.
        if (p >= 10 && k == 0) ok = ok && cat::edit(s, [&](cat::Catalogue& c) -> Status { return erase(c, str("OLD", p - 10)); }).has_value();
        if (p >= 10 && k == 5) ok = ok && cat::edit(s, [&](cat::Catalogue& c) -> Status { return erase(c, str("P", p, "_0")); }).has_value();
      }
      ::_exit(ok ? 0 : 1);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) EXPECT_EQ(wait_child(pid), 0);
  std::set<std::string> expected;
  for (int p = 0; p < k_procs; ++p)
    for (int k = 0; k < k_ops; ++k)
      if (!(p >= 10 && k == 0)) expected.insert(str("P", p, "_", k));
  EXPECT_EQ(names(), expected);
}

TEST_F(CatalogueEdit, WriterKilledAtAnyMomentLeavesTheOldOrTheNewFile) {
  // Each write replaces every entry with a generation of 150 entries of ~1 KiB, so a torn
  // file would fail to parse or mix generations.
  constexpr int k_entries = 150;
  std::mt19937 rng(12345);
  int killed_mid_write = 0;
  // Reads the file without the lock: it must hold no entries or one whole generation; returns
  // that generation's prefix ("G3x17"), or "".
  auto whole_generation = [&](const std::string& when) -> std::string {
    auto c = cat::load(s);
    EXPECT_TRUE(c) << when << ": " << c.error().what();
    if (!c) return "?";
    EXPECT_TRUE(c->entries.empty() || c->entries.size() == static_cast<std::size_t>(k_entries)) << when << ": " << c->entries.size();
    if (c->entries.empty()) return "";
    const std::string& first = c->entries.front().name;
    std::string gen = first.substr(0, first.find('_'));
    for (const auto& e : c->entries) EXPECT_EQ(e.name.substr(0, e.name.find('_')), gen) << when;
    return gen;
  };
  for (int round = 0; round < 40; ++round) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int gen = 0;; ++gen) {
        (void)cat::edit(s, [&](cat::Catalogue& c) -> Status {
          c.entries.clear();
          for (int j = 0; j < k_entries; ++j) c.insert(entry(str("G", round, "x", gen, "_", j), 1000));
          return {};
        });
      }
    }
    const std::string when = str("round ", round);
    // Once the writer has replaced the file (a sanitizer build or a busy machine may take
    // longer than the window below for that), read while it writes on, then kill it at a
    // random moment.
    const std::string mine = str("G", round, "x");
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    bool wrote = false;
    while (!wrote && !::testing::Test::HasFailure() && std::chrono::steady_clock::now() < give_up) wrote = whole_generation(when).starts_with(mine);
    if (round % 2 == 0) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(rng() % 30000);
      while (wrote && !::testing::Test::HasFailure() && std::chrono::steady_clock::now() < deadline) (void)whole_generation(when);
    } else {
      // Every other round, killed while a new file is being written beside the old one: a
      // random moment alone lands there too seldom to count on in a sanitizer build, where
      // reading and parsing the catalogue take most of each edit.
      auto writing = [&] {
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(s.store, ec))
          if (e.path().filename().string().starts_with(".catalogue.toml.tmp.")) return true;
        return false;
      };
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (wrote && std::chrono::steady_clock::now() < deadline && !writing()) {
      }
    }
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    EXPECT_EQ(wait_child(pid), 128 + SIGKILL);
    ASSERT_TRUE(wrote) << when << ": the writer wrote nothing in 60 seconds";
    ASSERT_FALSE(::testing::Test::HasFailure());
    EXPECT_TRUE(whole_generation(str("after SIGKILL in round ", round)).starts_with(mine));
    auto listing = test::sh("ls -A '" + s.store + "'");
    if (listing.out.find(".catalogue.toml.tmp.") != std::string::npos) ++killed_mid_write;
  }
  // Some of the kills came while a new file was being written, beside the old one.
  EXPECT_GT(killed_mid_write, 0);
  // Temporary files of killed writers are removed by the next writer, under the lock.
  ASSERT_TRUE(cat::edit(s, [](cat::Catalogue&) -> Status { return {}; }));
  auto listing = test::sh("ls -A '" + s.store + "'");
  EXPECT_EQ(listing.out, "catalogue.lock\ncatalogue.toml\n");
}

TEST_F(CatalogueEdit, DamagedFileIsReportedWithPositionAndNeverOverwritten) {
  ASSERT_TRUE(cat::edit(s, [](cat::Catalogue& c) -> Status {
    c.insert(entry("EL9"));
    return {};
  }));
  std::string text = test::read_file(cat::catalogue_path(s));
  // A hand edit removes the closing quote of the digest on line 10 (after 3 comment lines,
  // format, a blank line, the table header, aliases, image and root).
  const auto at = text.find("digest = \"") + 10 + 64;
  text.erase(at, 1);
  test::write_file(cat::catalogue_path(s), text);
  bool called = false;
  auto r = cat::edit(s, [&](cat::Catalogue& c) -> Status {
    called = true;
    c.entries.clear();
    return {};
  });
  ASSERT_FALSE(r);
  EXPECT_FALSE(called);
  EXPECT_EQ(r.error().code(), Errc::parse);
  const std::string msg = r.error().what();
  EXPECT_EQ(msg.substr(0, msg.find(": error: ")), cat::catalogue_path(s) + ":10:75") << msg;
  EXPECT_EQ(test::read_file(cat::catalogue_path(s)), text);
  auto l = cat::load(s);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().what(), msg);
}

TEST_F(CatalogueEdit, ACatalogueOthersCouldHaveWrittenIsNeverRewritten) {
  ASSERT_TRUE(cat::edit(s, [](cat::Catalogue& c) -> Status {
    c.insert(entry("EL9"));
    return {};
  }));
  auto noop = [](cat::Catalogue&) -> Status { return {}; };
  ASSERT_EQ(::chmod(cat::catalogue_path(s).c_str(), 0646), 0);
  auto r = cat::edit(s, noop);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::permission);
  const std::string who = ::geteuid() == 0 ? "root" : str("root or uid ", ::geteuid());
  EXPECT_EQ(r.error().what(), str("refusing to edit the catalogue: '", cat::catalogue_path(s), "' is not a regular file owned by ", who,
                                  " and unwritable by group and others"));
  ASSERT_EQ(::chmod(cat::catalogue_path(s).c_str(), 0644), 0);
  ASSERT_EQ(::chmod(s.store.c_str(), 0777), 0);
  auto d = cat::edit(s, noop);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().what(), str("refusing to edit the catalogue: '", s.store, "' is writable by others (mode 0777)"));
  ASSERT_EQ(::chmod(s.store.c_str(), 0755), 0);
  EXPECT_TRUE(cat::edit(s, noop));
}

TEST_F(CatalogueEdit, FailedChangeWritesNothing) {
  ASSERT_TRUE(cat::edit(s, [](cat::Catalogue& c) -> Status {
    c.insert(entry("EL9"));
    return {};
  }));
  const std::string before = test::read_file(cat::catalogue_path(s));
  auto r = cat::edit(s, [](cat::Catalogue& c) -> Status {
    c.entries.clear();
    return fail(Errc::exists, "nope");
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what(), "nope");
  EXPECT_EQ(test::read_file(cat::catalogue_path(s)), before);
}

TEST_F(CatalogueEdit, AChangeThatWouldNotReadBackIsRefused) {
  auto r = cat::edit(s, [](cat::Catalogue& c) -> Status {
    auto e = entry("EL9");
    e.current.digest = "not hex";
    c.insert(e);
    return {};
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::internal);
  EXPECT_EQ(r.error().what(), "the catalogue would not read back as written: " + cat::catalogue_path(s) +
                                  ":10:10: error: 'digest' must be 64 lowercase hex digits\n"
                                  " 10 | digest = \"not hex\"\n"
                                  "    |          ^");
  EXPECT_FALSE(test::sh("test -e '" + cat::catalogue_path(s) + "'").exit_code == 0);
}

}  // namespace
}  // namespace chrootctl
