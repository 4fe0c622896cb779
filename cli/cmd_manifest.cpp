// chrootctl manifest create|check|diff
#include <cstdio>

#include "chrootctl/common/files.hpp"
#include "chrootctl/common/json.hpp"
#include "chrootctl/common/manifest.hpp"
#include "chrootctl/common/progress.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/thread.hpp"
#include "cli.hpp"

namespace chrootctl::cli {
namespace {

namespace mf = chrootctl::manifest;

mf::ProgressFn progress_for(ProgressLine& line) {
  return [&line](const mf::Progress& p) { line.update(str(p.entries, " entries, ", p.files_hashed, " files hashed, ", human_size(p.bytes_hashed))); };
}

int create(std::span<char* const> argv) {
  const Spec spec{"manifest create",
                  "ROOT [-o FILE] [--format native|mtree]",
                  "Record every entry of the tree ROOT in a checksummed manifest and print its tree digest.",
                  "The native manifest (docs/manifest.md) is written to FILE, with its stat record for\n"
                  "'check --fast' in FILE.stat; without -o it goes to stdout and the digest to stderr.\n"
                  "--format mtree writes a NetBSD mtree(8) spec instead: mtree -p ROOT -f FILE verifies it.",
                  {{"output", 'o', true, false, "FILE", "write the manifest to FILE (atomically)"},
                   {"format", 0, true, false, "FORMAT", "native (default) or mtree"},
                   threads_option(),
                   quiet_option()},
                  1,
                  1};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  const std::string format = a.value("format").value_or("native");
  if (format != "native" && format != "mtree") return usage_error(spec, str("unknown format ", quote(format), " (native or mtree)"));
  const std::string root = a.positional[0];
  mf::CreateOptions opts;
  if (auto rc = threads_value(spec, a, opts.threads)) return *rc;
  ProgressLine line(str("hashing ", root), a.flag("quiet"));
  opts.progress = progress_for(line);
  auto m = mf::create(root, opts);
  if (!m) return report(m.error());
  const auto output = a.value("output");
  const bool with_stat = output && format == "native";
  auto rendered = with_stat ? mf::render_with_stat(*m) : mf::RenderedWithStat{mf::render(*m), {}};
  const std::string& digest = rendered.manifest.digest;
  line.done(str(m->entries.size(), " entries, tree digest sha256:", digest));
  const std::string text = format == "native" ? std::move(rendered.manifest.text) : mf::to_mtree(*m);
  if (output) {
    // The two files are written side by side: the stat record names the manifest's digest, so
    // a stat record without its manifest (or an older one) is never taken for it.
    Status stat_written, written;
    {
      Thread stat_writer, text_writer([&] { written = write_file_atomic(*output, text); });
      if (with_stat) stat_writer = Thread([&] { stat_written = write_file_atomic(mf::stat_path_for(*output), rendered.stat); });
      // The entries are freed while the writers wait for the disk, not after.
      auto freed = std::move(m->entries);
    }
    if (!written) return report(written.error());
    if (!stat_written) return report(stat_written.error());
    out(str("sha256:", digest, "\n"));
  } else {
    out(text);
  }
  return k_ok;
}

int print_result(const mf::DiffResult& d, bool json, const std::string& a_label, const std::string& b_label, std::size_t entries,
                 const std::string& what) {
  const bool failed = d.differs_beyond_mtime();
  if (json) {
    JsonWriter w;
    w.begin_object();
    w.field("old", a_label);
    w.field("new", b_label);
    w.field("match", !failed);
    w.field("entries", static_cast<std::uint64_t>(entries));
    w.key("differences");
    mf::write_json(w, d);
    w.end_object();
    out(w.str());
  } else {
    out(mf::render_text(d));
    std::size_t mtime_only = 0;
    for (const auto& x : d.differences) mtime_only += x.kind == mf::Difference::Kind::mtime_only;
    const std::size_t real = d.differences.size() - mtime_only;
    if (!failed) out(str(what, ": match (", entries, " entries", mtime_only ? str(", ", mtime_only, " mtime-only changes") : "", ")\n"));
    else
      out(str(what, ": ", real, real == 1 ? " difference" : " differences", mtime_only ? str(" and ", mtime_only, " mtime-only changes") : "", "\n"));
  }
  return failed ? k_failed_check : k_ok;
}

int check(std::span<char* const> argv) {
  const Spec spec{"manifest check",
                  "ROOT MANIFEST [--fast] [--json]",
                  "Check the tree ROOT against MANIFEST; list every difference by path and field.",
                  "Exit status: 0 the tree matches, 1 it does not, 2 error. A change of mtime alone is\n"
                  "reported but is not a failure. --fast compares metadata only (type, mode, owner, size,\n"
                  "xattrs, inode, ctime) against the stat record MANIFEST.stat, without reading contents.",
                  {{"fast", 0, false, false, "", "metadata only, against MANIFEST.stat"},
                   {"record-stat", 0, false, false, "", "after a full check that passes, rewrite MANIFEST.stat"},
                   json_option(),
                   quiet_option()},
                  2,
                  2};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  const std::string root = a.positional[0];
  const std::string path = a.positional[1];
  if (a.flag("fast") && a.flag("record-stat")) return usage_error(spec, "--record-stat needs a full check, not --fast");
  mf::DiffResult d;
  std::size_t entries = 0;
  if (a.flag("fast")) {
    const std::string sp = mf::stat_path_for(path);
    auto record = mf::load_stat(sp);
    if (!record)
      return report(std::move(record.error())
                        .add_context(str("no usable stat record (make one with 'chrootctl manifest check --record-stat ", root, " ", path, "')")));
    auto digest = mf::read_digest(path);
    if (!digest) return report(digest.error());
    if (record->manifest_digest != *digest)
      return report(str(sp, " belongs to another manifest (make a new one with 'chrootctl manifest check --record-stat ", root, " ", path, "')"));
    auto r = mf::check_fast(root, *record);
    if (!r) return report(r.error());
    d = std::move(*r);
    entries = record->items.size();
  } else {
    auto m = mf::load(path);
    if (!m) return report(m.error());
    entries = m->entries.size();
    ProgressLine line(str("checking ", root), a.flag("quiet") || a.flag("json"));
    mf::CreateOptions opts;
    opts.progress = progress_for(line);
    mf::Manifest fresh;
    auto r = mf::check(root, *m, opts, &fresh);
    if (!r) return report(r.error());
    d = std::move(*r);
    if (a.flag("record-stat") && !d.differs_beyond_mtime()) {
      // The fresh walk's metadata is what the stat record must describe, keyed to the recorded digest.
      if (auto w = write_file_atomic(mf::stat_path_for(path), mf::serialize_stat(fresh, mf::digest(*m))); !w) return report(w.error());
    }
  }
  return print_result(d, a.flag("json"), path, root, entries, root);
}

int diff(std::span<char* const> argv) {
  const Spec spec{"manifest diff",
                  "OLD NEW [--json]",
                  "Compare two manifests entry by entry and field by field.",
                  "Exit status: 0 same tree (mtime-only changes aside), 1 different, 2 error.",
                  {json_option()},
                  2,
                  2};
  Args a;
  if (auto rc = parse(spec, argv, a)) return *rc;
  auto o = mf::load(a.positional[0]);
  if (!o) return report(o.error());
  auto n = mf::load(a.positional[1]);
  if (!n) return report(n.error());
  return print_result(mf::diff(*o, *n), a.flag("json"), a.positional[0], a.positional[1], n->entries.size(),
                      str(a.positional[0], " -> ", a.positional[1]));
}

int manifest_main(std::span<char* const> argv) {
  static const char* k_usage =
      "Usage: chrootctl manifest create|check|diff ...\n\n"
      "  create ROOT [-o FILE] [--format native|mtree]   record a tree and print its digest\n"
      "  check ROOT MANIFEST [--fast] [--json]           check a tree against a manifest\n"
      "  diff OLD NEW [--json]                           compare two manifests\n";
  return dispatch(argv, "manifest", k_usage, {{"create", create}, {"check", check}, {"diff", diff}});
}

}  // namespace

CHROOTCTL_VERB("manifest", "create, check and compare checksummed tree manifests", manifest_main);

}  // namespace chrootctl::cli
