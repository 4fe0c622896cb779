// A tar stream fed to import (distribution/src/import.cpp) as `chrootctl import --allow-unsigned
// --strip` feeds it: the reader of the members before root/, the entry, manifest and recipe
// parsers, the strip plan, then the unpacking through the builder's extraction with every entry
// held to the manifest, the check of the tree, and the registration. Each input is imported
// into a fresh store in a directory of its own under $TMPDIR (a tmpfs is best: an import ends
// with syncfs). Root imports as the command does; another user reaches as far as fchown.
#include <fcntl.h>
#include <stdlib.h>

#include <memory>
#include <string>

#include "chrootctl/builder/extract.hpp"
#include "chrootctl/common/files.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/common/tree_writer.hpp"
#include "chrootctl/distribution/export.hpp"
#include "fuzz.hpp"

namespace {

using namespace chrootctl;
using fuzz::require;

// The command's unpacker (cli/cmd_import.cpp).
Result<distribution::UnpackStats> unpack_with_builder(const std::string& archive, const std::string& dir, UnpackCheck& check) {
  auto tree = TRY(TreeWriter::open(dir));
  auto stats = TRY(builder::extract_archive(archive, tree, {}, {}, &check));
  TRY(tree.finish());
  return distribution::UnpackStats{stats.entries, stats.bytes};
}

struct Workspace {
  TempDir dir;
  std::string archive;
  std::string store;
  std::string trusted;
};

// Made once per process and removed at its exit (a static, not leaked: libFuzzer exits through
// exit(), which runs the destructor, so no run leaves its directory in $TMPDIR).
Workspace& workspace() {
  static const std::unique_ptr<Workspace> w = [] {
    const char* tmp = ::getenv("TMPDIR");
    auto dir = TempDir::create(str(tmp && *tmp ? tmp : "/tmp", "/chrootctl-import-fuzz."));
    require(dir.has_value(), "a work directory can be made under $TMPDIR");
    auto made = std::make_unique<Workspace>(Workspace{std::move(*dir), {}, {}, {}});
    made->archive = made->dir.path() + "/input.tar";
    made->store = made->dir.path() + "/store";
    made->trusted = made->dir.path() + "/trusted";  // never made: no key is trusted
    return made;
  }();
  return *w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Workspace& w = workspace();
  {
    auto fd = sys::open_path(w.archive, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    require(fd && sys::write_all(fd->get(), fuzz::text_of(data, size)), "the input can be written to $TMPDIR");
  }
  Settings s;
  s.store = w.store;
  s.trusted_keys = w.trusted;
  distribution::ImportOptions o;
  o.allow_unsigned = true;
  o.strip = true;
  o.unpack = unpack_with_builder;
  o.threads = 1;
  o.now = 1700000000;
  auto r = distribution::import_image(s, w.archive, o);
  if (!r) {
    // A refused import leaves nothing behind: no staging directory, no catalogue.
    auto staging = sys::open_path(w.store + "/.staging", O_RDONLY | O_DIRECTORY);
    if (staging) {
      auto names = sys::read_dir(staging->get());
      require(names && names->empty(), "a refused import leaves no staging directory");
    }
    require(!sys::lstat_path(w.store + "/catalogue.toml"), "a refused import registers nothing");
  }
  if (sys::lstat_path(w.store)) require(sys::remove_tree(w.store).has_value(), "the store can be removed");
  return 0;
}
