#pragma once
// Fixtures for the tests of sealed images (docs/sealed.md): a small sealed image built at test
// time from a recipe (busybox-static, the probe, a marker file whose bytes can be found in the
// image file), a state directory and a configuration of each test's own, and views of what a
// launch may leave on the host: mounts, loop devices and dm devices.

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace chrootctl::test::sealed {

/// The marker file's contents: 16 KiB that occur nowhere else, so that its data blocks can be
/// found in the (uncompressed) image file and one byte of them flipped.
inline std::string marker_text() {
  std::string out;
  for (int i = 0; out.size() < 16384; ++i) out += "chrootctl sealed marker line " + std::to_string(i) + "\n";
  return out.substr(0, 16384);
}

/// A recipe for a sealed busybox image with the probe and the marker.
inline std::string sealed_recipe(const std::string& name, const std::string& marker_path) {
  std::string symlinks;
  for (const char* a : {"sh", "cat", "id", "stat", "sleep", "ls", "true", "false", "head", "echo", "touch", "wc"})
    symlinks += "\"/bin/" + std::string(a) + "\" = \"busybox\"\n";
  return "name = \"" + name +
         "\"\nsource_date_epoch = 1700000000\n[base]\nscratch = true\n[output]\nformat = \"sealed\"\n"
         "[[files]]\nsrc = \"/bin/busybox\"\ndst = \"/bin/busybox\"\nmode = \"0755\"\n"
         "[[files]]\nsrc = \"" CHROOTCTL_TEST_PROBE
         "\"\ndst = \"/bin/probe\"\nmode = \"0755\"\n"
         "[[files]]\ndst = \"/etc/passwd\"\ncontent = \"root:x:0:0:root:/root:/bin/sh\\nnobody:x:65534:65534:nobody:/:/bin/sh\\n\"\n"
         "[[files]]\nsrc = \"" +
         marker_path +
         "\"\ndst = \"/srv/marker\"\nmode = \"0644\"\n"
         "[layout]\nmkdir = [\"/tmp\", \"/var/tmp\", \"/proc\", \"/dev\", \"/root\"]\n[layout.symlinks]\n" +
         symlinks;
}

/// A value of a flat JSON object printed by chrootctl ("key": value): the text of the value,
/// without quotes for a string.
inline std::string json_value(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return {};
  auto p = json.find_first_not_of(" ", at + key.size() + 3);
  if (p == std::string::npos) return {};
  if (json[p] == '"') {
    const auto end = json.find('"', p + 1);
    return json.substr(p + 1, end - p - 1);
  }
  const auto end = json.find_first_of(",}\n", p);
  return json.substr(p, end - p);
}

/// Waits up to `seconds` for `ready`; returns whether it became true.
inline bool wait_until(const std::function<bool()>& ready, double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  while (!ready()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

/// The lines of this process's mountinfo whose mount point lies under `dir`.
inline std::vector<std::string> mounts_under(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    f >> id >> parent >> dev >> root >> point;
    if (point.rfind(dir + "/", 0) == 0) out.push_back(line);
  }
  return out;
}

/// Loop devices whose backing file is `file` (/sys/block/loopN/loop/backing_file).
inline std::vector<std::string> loops_backed_by(const std::string& file) {
  std::vector<std::string> out;
  auto r = sh("for f in /sys/block/loop*/loop/backing_file; do [ -r \"$f\" ] && echo \"$f $(cat \"$f\")\"; done 2>/dev/null");
  std::istringstream in(r.out);
  std::string dev, backing;
  while (in >> dev && std::getline(in, backing)) {
    if (!backing.empty() && backing[0] == ' ') backing.erase(0, 1);
    if (backing == file || backing == file + " (deleted)") out.push_back(dev);
  }
  return out;
}

/// dm devices named chrootctl-* (/sys/block/dm-N/dm/name).
inline std::vector<std::string> chrootctl_dm_devices() {
  std::vector<std::string> out;
  auto r = sh("cat /sys/block/dm-*/dm/name 2>/dev/null");
  std::istringstream in(r.out);
  std::string name;
  while (in >> name)
    if (name.rfind("chrootctl-", 0) == 0) out.push_back(name);
  return out;
}

// As the launcher judges it (blockdev.cpp): a control node that opens.
inline bool have_device_mapper() {
  const int fd = ::open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

/// Flips one byte of the first block of `text` in `file`; returns its offset (or -1).
inline long flip_byte_of(const std::string& file, const std::string& text) {
  const std::string data = read_file(file);
  const auto at = data.find(text.substr(0, 4096));
  if (at == std::string::npos) return -1;
  const long offset = static_cast<long>(at) + 100;
  const int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  const char flipped = static_cast<char>(data[static_cast<std::size_t>(offset)] ^ 0x01);
  const bool ok = ::pwrite(fd, &flipped, 1, offset) == 1;
  ::close(fd);
  return ok ? offset : -1;
}

/// A sealed image built and registered in a store of the test's own.
class SealedFixture : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    ASSERT_EQ(::chmod(m_dir.c_str(), 0755), 0);  // the catalogue refuses images below writable dirs; nobody reaches the mount
    store = path("store");
    state = path("state");
    config = path("config.toml");
    sandbox = path("sandbox");
    mkdirs(sandbox);
    ASSERT_EQ(::chown(sandbox.c_str(), 65534, 65534), 0);
    write_file(path("marker"), marker_text());
    set_config("");
  }

  void TearDown() override {
    // Whatever a failed test left: released by cleanup, and unmounted here if even that failed,
    // so that no mount, loop device or dm device outlives the test.
    run_chrootctl({"cleanup"}, env());
    for (const auto& line : mounts_under(state)) {
      std::istringstream f(line);
      std::string id, parent, dev, root, point;
      f >> id >> parent >> dev >> root >> point;
      ADD_FAILURE() << "left mounted: " << line;
      ::umount2(point.c_str(), MNT_DETACH);
    }
    TempDirTest::TearDown();
  }

  /// The environment of every chrootctl the test runs: its own state directory and configuration.
  std::map<std::string, std::string> env() const { return {{"CHROOTCTL_STATE_DIR", state}, {"CHROOTCTL_CONFIG", config}}; }

  /// The site configuration (TOML lines), root-owned as chrootctl requires.
  void set_config(const std::string& toml) { write_file(config, toml, 0644); }

  CommandResult ctl(const std::vector<std::string>& args) const { return run_chrootctl(args, env()); }

  /// Builds the test recipe NAME as a sealed image in the store and registers it as NAME;
  /// returns `build --json`'s output.
  std::string build(const std::string& name) {
    const std::string recipe = path(name + ".toml");
    write_file(recipe, sealed_recipe(name, path("marker")));
    auto b = ctl({"build", recipe, "--store", store, "--register", name, "--json"});
    EXPECT_EQ(b.exit_code, 0) << b.err;
    image = json_value(b.out, "file");
    sha256 = json_value(b.out, "sha256");
    root_hash = json_value(b.out, "root_hash");
    build_dir = json_value(b.out, "path");
    EXPECT_FALSE(image.empty()) << b.out;
    return b.out;
  }

  /// STATE/sealed/KEY of the image built last.
  std::string key_dir() const { return state + "/sealed/" + sha256; }
  std::size_t holders() const {
    auto r = sh("ls -1 '" + key_dir() + "/holders' 2>/dev/null | wc -l");
    return static_cast<std::size_t>(std::stoul(r.out.empty() ? "0" : r.out));
  }

  /// Nothing of the image is left on the host: no mount, no loop device, no dm device (given a
  /// moment: the kernel lets a loop or dm device go when the last job's namespace is gone).
  void expect_nothing_left() {
    EXPECT_EQ(mounts_under(state), std::vector<std::string>{});
    EXPECT_TRUE(wait_until([&] { return loops_backed_by(image).empty(); }, 10)) << "loop devices left: " << loops_backed_by(image).size();
    EXPECT_TRUE(wait_until([&] { return chrootctl_dm_devices().empty(); }, 10)) << "dm devices left: " << chrootctl_dm_devices().size();
    EXPECT_EQ(holders(), 0u);
  }

  /// Starts `chrootctl ARGS` in the background with the test's environment; returns its pid.
  pid_t spawn(const std::vector<std::string>& args) const {
    const pid_t pid = ::fork();
    if (pid == 0) {
      for (const auto& [k, v] : env()) ::setenv(k.c_str(), v.c_str(), 1);
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      std::vector<char*> argv{const_cast<char*>(CHROOTCTL_BIN)};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(CHROOTCTL_BIN, argv.data());
      ::_exit(127);
    }
    return pid;
  }

  std::string store, state, config, sandbox;
  std::string image, sha256, root_hash, build_dir;
};

}  // namespace chrootctl::test::sealed
