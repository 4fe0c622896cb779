// Writes the seed corpora that chrootctl's own writers make, so that they follow the formats as
// the code writes them: manifests (plain and stripped), a stat record, catalogues and export
// entries. Run at build time (make_seeds.sh):
//   chrootctl_fuzz_seeds OUT-DIR      writes OUT-DIR/TARGET/NAME
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "chrootctl/catalogue/catalogue.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/distribution/export.hpp"

namespace {

using namespace chrootctl;
namespace mf = manifest;

mf::Entry entry(std::string path, mf::Type type, std::uint32_t mode) {
  mf::Entry e;
  e.path = std::move(path);
  e.type = type;
  e.mode = mode;
  e.mtime_sec = 1700000000;
  e.mtime_nsec = 123456789;
  e.dev = 2049;
  e.ino = 1000;
  e.nlink = 1;
  e.ctime_sec = 1700000001;
  return e;
}

mf::Entry file(std::string path, std::uint32_t mode, std::string_view contents) {
  auto e = entry(std::move(path), mf::Type::file, mode);
  e.size = contents.size();
  e.sha256 = Sha256::hex(contents);
  return e;
}

// A tree with an entry of every type and every field: owners, a hard-link group, xattrs (a file
// capability among them), devices, a setuid file and a name that needs escaping.
mf::Manifest sample_manifest() {
  mf::Manifest m;
  auto add = [&](mf::Entry e) {
    e.ino = 1000 + m.entries.size();
    m.entries.push_back(std::move(e));
  };
  add(entry("/", mf::Type::dir, 0755));
  add(entry("/bin", mf::Type::dir, 0755));
  auto capsh = file("/bin/capsh", 0755, "#!/bin/sh\nid -u\n");
  capsh.xattrs = {{"security.capability", std::string("\x01\x00\x00\x02\x80\x00\x00\x00", 8) + std::string(12, '\0')}};
  add(capsh);
  auto job = file("/bin/job", 0755, "#!/bin/sh\necho job\n");
  job.link = "/bin/job";
  add(job);
  auto job2 = job;
  job2.path = "/bin/job2";
  add(job2);
  auto rootsh = file("/bin/rootsh", 04755, "#!/bin/sh\nid -u\n");
  add(rootsh);
  add(entry("/dev", mf::Type::dir, 0755));
  auto mem = entry("/dev/mem", mf::Type::chardev, 0640);
  mem.rdev_major = 1;
  mem.rdev_minor = 1;
  mem.gid = 15;
  add(mem);
  auto sda = entry("/dev/sda", mf::Type::blockdev, 0660);
  sda.rdev_major = 8;
  add(sda);
  add(entry("/etc", mf::Type::dir, 0755));
  auto motd = file("/etc/motd", 0644, "hello\n");
  motd.xattrs = {{"user.comment", std::string("a\0b=c", 5)}, {"user.x=y", "\xff"}};
  add(motd);
  auto odd = file("/etc/odd name\n\\\xff", 0600, "");
  odd.uid = 1000;
  odd.gid = 100;
  add(odd);
  auto lib = entry("/lib", mf::Type::symlink, 0777);
  lib.target = "usr/lib with space";
  add(lib);
  add(entry("/run", mf::Type::dir, 0755));
  add(entry("/run/fifo", mf::Type::fifo, 0600));
  add(entry("/tmp", mf::Type::dir, 01777));
  return m;
}

catalogue::Version version(const std::string& id) {
  catalogue::Version v;
  v.image = "/srv/images/el9/" + id;
  v.root = v.image + "/root";
  v.digest = std::string(64, 'a');
  v.build_id = id;
  v.recipe = "el9";
  v.added_at = 1700000000;
  v.verified_at = 1700000100;
  v.identity = {2049, 131075, 0, 0, 0755};
  return v;
}

catalogue::Catalogue sample_catalogue() {
  catalogue::Catalogue c;
  catalogue::Entry el9;
  el9.name = "EL9";
  el9.current = version("b3");
  el9.current.signer = "site-key";
  el9.current.signed_digest = std::string(64, 'b');
  el9.previous = {version("b2"), version("b1")};
  el9.previous[0].failed_at = 1700000200;
  el9.previous[0].failure = "1 difference: changed /etc/hosts sha256 \"x\" -> y\nsecond line";
  el9.aliases = {"RHEL9", "Rocky9"};
  el9.seccomp = "default";
  c.insert(el9);
  catalogue::Entry sl;
  sl.name = "SL6.x86_64+gpu";
  sl.current = version("import-20261123T120530Z");
  sl.current.recipe = "";
  sl.current.image = "/srv/odd path/\xc3\xa9t\xc3\xa9";
  sl.seccomp = "/etc/chrootctl/seccomp/sl6.toml";
  c.insert(sl);
  return c;
}

bool write(const std::string& dir, const std::string& target, const std::string& name, std::string_view data) {
  const std::string d = dir + "/" + target;
  if (!sys::mkdir_p(d, 0755)) return false;
  std::FILE* f = std::fopen((d + "/" + name).c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  return std::fclose(f) == 0 && ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: chrootctl_fuzz_seeds OUT-DIR\n");
    return 2;
  }
  const std::string out = argv[1];
  const auto m = sample_manifest();
  const auto rendered = mf::render_with_stat(m);
  auto stripped = distribution::plan_import_strip(m, PrivilegePolicy{});
  if (!stripped) {
    std::fprintf(stderr, "chrootctl_fuzz_seeds: %s\n", stripped.error().what().c_str());
    return 1;
  }
  mf::Manifest root_only;
  root_only.entries = {m.entries[0]};

  distribution::ExportEntry exported{"EL9", "el9", "b3", std::string(64, 'a'), "", {}, 1700000000};
  distribution::ExportEntry exported_signed{"SL6.x86_64+gpu",   "sl6",     "import-20261123T120530Z", std::string(64, 'c'), "site-key",
                                            {"SL6", "sl6-gpu"}, 1700000000};
  catalogue::Catalogue empty;

  const bool ok = write(out, "manifest", "tree", rendered.manifest.text) && write(out, "manifest", "stripped", mf::serialize(stripped->result)) &&
                  write(out, "manifest", "root-only", mf::serialize(root_only)) && write(out, "stat_record", "tree", rendered.stat) &&
                  write(out, "stat_record", "root-only", mf::render_with_stat(root_only).stat) &&
                  write(out, "catalogue", "two-entries", catalogue::serialize(sample_catalogue())) &&
                  write(out, "catalogue", "empty", catalogue::serialize(empty)) &&
                  write(out, "export_entry", "unsigned", distribution::render_export_entry(exported)) &&
                  write(out, "export_entry", "signed", distribution::render_export_entry(exported_signed));
  if (!ok) {
    std::perror("chrootctl_fuzz_seeds");
    return 1;
  }
  return 0;
}
