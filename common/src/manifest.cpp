// Manifest text format, parsing, comparison and the mtree and stat-record side formats.
// The format is specified in docs/manifest.md; keep the two in step.
#include "chrootctl/common/manifest.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cinttypes>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "chrootctl/common/files.hpp"
#include "chrootctl/common/sha256.hpp"
#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/thread.hpp"
#include "chrootctl/common/tree_path.hpp"
#include "manifest_internal.hpp"

namespace chrootctl::manifest {

namespace {
constexpr std::string_view k_header = "#chrootctl-manifest 1";
constexpr std::string_view k_end = "#end ";
constexpr std::string_view k_sealed = "#sealed ";
// '=' separates an xattr name from its value, so it is escaped inside names.
constexpr std::string_view k_xattr_name_extra = "=";

std::string time_text(std::int64_t sec, std::uint32_t nsec) {
  char buf[48];
  (void)std::snprintf(buf, sizeof buf, "%" PRId64 ".%09u", sec, nsec);
  return buf;
}

std::optional<std::pair<std::int64_t, std::uint32_t>> parse_time(std::string_view s) {
  const auto dot = s.find('.');
  if (dot == std::string_view::npos || s.size() - dot != 10) return std::nullopt;
  bool neg = false;
  std::string_view secs = s.substr(0, dot);
  if (!secs.empty() && secs[0] == '-') {
    neg = true;
    secs.remove_prefix(1);
  }
  const auto sec = parse_u64(secs);
  const auto nsec = parse_u64(s.substr(dot + 1));
  if (!sec || !nsec || *sec > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
  return std::make_pair(neg ? -static_cast<std::int64_t>(*sec) : static_cast<std::int64_t>(*sec), static_cast<std::uint32_t>(*nsec));
}

std::optional<Type> type_from_char(std::string_view s) {
  if (s.size() != 1) return std::nullopt;
  switch (s[0]) {
    case 'f':
      return Type::file;
    case 'd':
      return Type::dir;
    case 'l':
      return Type::symlink;
    case 'c':
      return Type::chardev;
    case 'b':
      return Type::blockdev;
    case 'p':
      return Type::fifo;
    case 's':
      return Type::socket;
    default:
      return std::nullopt;
  }
}

bool valid_tree_path(std::string_view p) {
  if (p == "/") return true;
  if (p.empty() || p[0] != '/' || p.back() == '/') return false;
  // Every component (between slashes) is a name: not empty, ".", or "..".
  std::size_t start = 1;
  while (start <= p.size()) {
    const auto slash = p.find('/', start);
    const std::string_view part = p.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_time(std::string& out, std::int64_t sec, std::uint32_t nsec) {
  char buf[48];
  auto r = std::to_chars(buf, buf + sizeof buf, sec);
  *r.ptr++ = '.';
  char digits[9];
  for (int i = 8; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + nsec % 10);
    nsec /= 10;
  }
  std::memcpy(r.ptr, digits, 9);
  out.append(buf, r.ptr + 9);
}

// escape_bytes, appending in place (this runs for every entry of every manifest).
void append_escaped(std::string& out, std::string_view raw, std::string_view extra = {}) {
  static constexpr char k_hex[] = "0123456789abcdef";
  for (unsigned char c : raw) {
    if (c >= 0x21 && c <= 0x7e && c != '\\' && (extra.empty() || extra.find(static_cast<char>(c)) == std::string_view::npos)) {
      out.push_back(static_cast<char>(c));
    } else {
      const char esc[4] = {'\\', 'x', k_hex[c >> 4], k_hex[c & 0xf]};
      out.append(esc, 4);
    }
  }
}

void append_entry(std::string& out, const Entry& e, bool with_mtime) {
  append_escaped(out, e.path);
  out += " type=";
  out.push_back(static_cast<char>(e.type));
  out += " mode=";
  const unsigned m = e.mode & 07777;
  const char mode[4] = {static_cast<char>('0' + ((m >> 9) & 7)), static_cast<char>('0' + ((m >> 6) & 7)), static_cast<char>('0' + ((m >> 3) & 7)),
                        static_cast<char>('0' + (m & 7))};
  out.append(mode, 4);
  out += " uid=";
  append_uint(out, e.uid);
  out += " gid=";
  append_uint(out, e.gid);
  switch (e.type) {
    case Type::file:
      out += " size=";
      append_uint(out, e.size);
      out += " sha256=";
      out += e.sha256.empty() ? "-" : e.sha256;
      break;
    case Type::symlink:
      out += " target=";
      append_escaped(out, e.target);
      break;
    case Type::chardev:
    case Type::blockdev:
      out += " rdev=";
      append_uint(out, e.rdev_major);
      out += ',';
      append_uint(out, e.rdev_minor);
      break;
    default:
      break;
  }
  if (!e.link.empty()) {
    out += " link=";
    append_escaped(out, e.link);
  }
  for (const auto& x : e.xattrs) {
    out += " xattr.";
    append_escaped(out, x.name, k_xattr_name_extra);
    out += '=';
    out += base64_encode(x.value);
  }
  if (with_mtime) {
    out += " mtime=";
    append_time(out, e.mtime_sec, e.mtime_nsec);
  }
}
// The header: the format line and, for a stripped tree, where it came from and what was
// changed. All of it enters the digest.
constexpr std::string_view k_stripped_from = "#stripped-from sha256:";
constexpr std::string_view k_stripped = "#stripped ";

void append_header(std::string& out, const Manifest& m) {
  out += k_header;
  out += '\n';
  if (m.stripped_from.empty()) return;
  out += k_stripped_from;
  out += m.stripped_from;
  out += '\n';
  for (const auto& r : m.stripped) {
    out += k_stripped;
    out += r.action;
    out += ' ';
    append_entry(out, r.original, false);
    out += '\n';
  }
}
}  // namespace

std::string_view type_name(Type t) {
  switch (t) {
    case Type::file:
      return "file";
    case Type::dir:
      return "directory";
    case Type::symlink:
      return "symlink";
    case Type::chardev:
      return "character device";
    case Type::blockdev:
      return "block device";
    case Type::fifo:
      return "fifo";
    case Type::socket:
      return "socket";
  }
  return "?";
}

const Entry* Manifest::find(std::string_view path) const {
  auto it = std::lower_bound(entries.begin(), entries.end(), path, [](const Entry& e, std::string_view p) { return std::string_view(e.path) < p; });
  if (it == entries.end() || it->path != path) return nullptr;
  return &*it;
}

std::string entry_line(const Entry& e, bool with_mtime) {
  std::string out;
  append_entry(out, e, with_mtime);
  return out;
}

bool valid_sealed_format(std::string_view format) { return format == "erofs"; }

std::string sealed_line(const Sealed& s) {
  return str(k_sealed, s.format, " size=", s.size, " sha256=", s.sha256, " hash-offset=", s.hash_offset, " root-hash=", s.root_hash,
             " salt=", s.salt);
}

std::optional<Sealed> parse_sealed_line(std::string_view line) {
  if (!starts_with(line, k_sealed)) return std::nullopt;
  const auto fields = split(line.substr(k_sealed.size()), ' ');
  if (fields.size() != 6) return std::nullopt;
  Sealed s;
  s.format = fields[0];
  auto value = [&](std::size_t i, std::string_view key) -> std::optional<std::string_view> {
    const std::string_view f = fields[i];
    if (!starts_with(f, key) || f.size() <= key.size() || f[key.size()] != '=') return std::nullopt;
    return f.substr(key.size() + 1);
  };
  auto hex64 = [](std::optional<std::string_view> v) {
    return v && v->size() == 64 && std::all_of(v->begin(), v->end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  };
  const auto size = value(1, "size"), sha = value(2, "sha256"), offset = value(3, "hash-offset"), root = value(4, "root-hash"),
             salt = value(5, "salt");
  if (!valid_sealed_format(s.format) || !size || !offset || !hex64(sha) || !hex64(root) || !hex64(salt)) return std::nullopt;
  const auto n = parse_u64(*size), o = parse_u64(*offset);
  if (!n || !o || *o == 0 || *o % 4096 != 0 || *o >= *n) return std::nullopt;
  s.size = *n;
  s.hash_offset = *o;
  s.sha256 = std::string(*sha);
  s.root_hash = std::string(*root);
  s.salt = std::string(*salt);
  if (sealed_line(s) != line) return std::nullopt;  // canonical numbers only
  return s;
}

Rendered render(const Manifest& m) {
  Rendered r;
  std::string& out = r.text;
  out.reserve(m.entries.size() * 170 + 256);
  append_header(out, m);
  Sha256 h;
  h.update(out);
  if (m.sealed) {
    // Not part of the digest: the tree digest is the tree's, sealed or not.
    out += sealed_line(*m.sealed);
    out += '\n';
  }
  for (const auto& e : m.entries) {
    const std::size_t start = out.size();
    append_entry(out, e, false);
    out += '\n';
    h.update(out.data() + start, out.size() - start);  // the digest form: no mtime
    out.pop_back();
    out += " mtime=";
    append_time(out, e.mtime_sec, e.mtime_nsec);
    out += '\n';
  }
  r.digest = h.hex_final();
  out += k_end;
  out += "entries=";
  append_uint(out, m.entries.size());
  out += " sha256=";
  out += r.digest;
  out += '\n';
  return r;
}

std::string digest(const Manifest& m) {
  Sha256 h;
  std::string buf;
  buf.reserve(64 * 1024);
  append_header(buf, m);
  for (const auto& e : m.entries) {
    append_entry(buf, e, false);
    buf += '\n';
    if (buf.size() > 60 * 1024) {
      h.update(buf);
      buf.clear();
    }
  }
  h.update(buf);
  return h.hex_final();
}

std::string serialize(const Manifest& m) { return render(m).text; }

namespace {
constexpr std::string_view k_capability = "security.capability";

bool has_capability(const Entry& e) {
  return std::any_of(e.xattrs.begin(), e.xattrs.end(), [](const sys::Xattr& x) { return x.name == k_capability; });
}

bool is_device(const Entry& e) { return e.type == Type::chardev || e.type == Type::blockdev; }

// Why the strip record `r` is not what `now` (the entry in the tree, or nullptr when it was
// left out) became by its action alone; nullopt when it is.
std::optional<std::string> bad_record(const StripRecord& r, const Entry* now) {
  const Entry& o = r.original;
  const bool setuid_file = o.type == Type::file && (o.mode & 06000);
  if (!now) {
    if (r.action == "setuid-removed" && setuid_file) return std::nullopt;
    if (r.action == "device-removed" && is_device(o)) return std::nullopt;
    return str("is not in the tree, but its record says ", quote(r.action));
  }
  const bool cleared = r.action.find("setuid-cleared") != std::string::npos;
  const bool dropped = r.action.find("capability-dropped") != std::string::npos;
  if (!cleared && !dropped) return str("is in the tree, but its record says ", quote(r.action));
  if (cleared && !setuid_file) return std::string("was not a setuid or setgid file");
  if (dropped && !has_capability(o)) return std::string("had no file capability");
  Entry expect = o;
  if (cleared) expect.mode &= ~06000u;
  if (dropped) std::erase_if(expect.xattrs, [](const sys::Xattr& x) { return x.name == k_capability; });
  if (entry_line(expect, false) != entry_line(*now, false)) return str("differs from its record by more than ", quote(r.action));
  return std::nullopt;
}
}  // namespace

Result<std::string> original_digest(const Manifest& m) {
  if (m.stripped_from.empty()) return digest(m);
  // The original manifest's digest form, rebuilt in path order: the entries as they are, with
  // each strip record's original line in place of (or in addition to) its entry.
  Sha256 h;
  std::string buf = str(k_header, "\n");
  auto flush = [&](bool force) {
    if (force || buf.size() > 60 * 1024) {
      h.update(buf);
      buf.clear();
    }
  };
  std::size_t k = 0;
  for (const auto& e : m.entries) {
    while (k < m.stripped.size() && m.stripped[k].original.path < e.path) {
      if (auto why = bad_record(m.stripped[k], nullptr))
        return fail(Errc::mismatch, str("strip record ", quote(escape_bytes(m.stripped[k].original.path)), " ", *why));
      append_entry(buf, m.stripped[k].original, false);
      buf += '\n';
      ++k;
    }
    if (k < m.stripped.size() && m.stripped[k].original.path == e.path) {
      if (auto why = bad_record(m.stripped[k], &e)) return fail(Errc::mismatch, str("strip record ", quote(escape_bytes(e.path)), " ", *why));
      append_entry(buf, m.stripped[k].original, false);
      ++k;
    } else {
      append_entry(buf, e, false);
    }
    buf += '\n';
    flush(false);
  }
  for (; k < m.stripped.size(); ++k) {
    if (auto why = bad_record(m.stripped[k], nullptr))
      return fail(Errc::mismatch, str("strip record ", quote(escape_bytes(m.stripped[k].original.path)), " ", *why));
    append_entry(buf, m.stripped[k].original, false);
    buf += '\n';
  }
  flush(true);
  const std::string d = h.hex_final();
  if (d != m.stripped_from)
    return fail(Errc::mismatch, str("its strip records lead to tree digest ", d, ", not the ", m.stripped_from, " it says it was made from"));
  return d;
}

std::optional<std::string> privilege_of(const Entry& e) {
  std::vector<std::string> what;
  if (e.type == Type::file && (e.mode & 04000))
    what.push_back(str("setuid ", e.uid == 0 ? std::string("root") : str("uid ", e.uid), " (mode ", mode_octal(e.mode), ")"));
  if (e.type == Type::file && (e.mode & 02000))
    what.push_back(str("setgid ", e.gid == 0 ? std::string("root") : str("gid ", e.gid), " (mode ", mode_octal(e.mode), ")"));
  if (e.type == Type::file && has_capability(e)) what.push_back("file capability");
  if (is_device(e)) what.push_back(str(e.type == Type::chardev ? "character" : "block", " device ", e.rdev_major, ",", e.rdev_minor));
  if (what.empty()) return std::nullopt;
  return join(what, ", ");
}

namespace {
// One entry line (the fields after the path included). With `with_mtime` false the line is the
// digest form, as in a strip record. Returns why it is not a canonical entry line, or nullopt;
// `digest_form` is then the line without its mtime field. Every manifest line passes through
// here, so nothing is allocated per field unless the line is bad.
std::optional<std::string> parse_entry(std::string_view line, bool with_mtime, Entry& e, std::string& digest_form) {
  // Tokens split on every space, as split() would: a doubled or trailing space gives an empty
  // token, which is a bad field.
  std::size_t pos = 0;
  bool more = true;
  auto next_token = [&] {
    const auto sp = line.find(' ', pos);
    const std::string_view tok = line.substr(pos, sp == std::string_view::npos ? std::string_view::npos : sp - pos);
    more = sp != std::string_view::npos;
    pos = more ? sp + 1 : line.size();
    return tok;
  };
  const std::string_view first = next_token();
  auto path = unescape_bytes(first);
  if (!path || !valid_tree_path(*path)) return str("bad path ", quote(first));
  e.path = std::move(*path);
  bool have_type = false;
  while (more) {
    const std::string_view tok = next_token();
    const auto eq = tok.find('=');
    if (eq == std::string_view::npos) return str("bad field ", quote(tok), " (expected key=value)");
    const std::string_view key = tok.substr(0, eq);
    const std::string_view val = tok.substr(eq + 1);
    auto bad = [&] { return str("bad value for ", terminal_safe(key), ": ", quote(val)); };
    if (key == "type") {
      auto t = type_from_char(val);
      if (!t) return bad();
      e.type = *t;
      have_type = true;
    } else if (key == "mode") {
      auto v = parse_u64(val, 8);
      if (!v || *v > 07777) return bad();
      e.mode = static_cast<std::uint32_t>(*v);
    } else if (key == "uid" || key == "gid") {
      auto v = parse_u64(val);
      if (!v || *v > UINT32_MAX) return bad();
      (key == "uid" ? e.uid : e.gid) = static_cast<std::uint32_t>(*v);
    } else if (key == "size") {
      auto v = parse_u64(val);
      if (!v) return bad();
      e.size = *v;
    } else if (key == "sha256") {
      if (val != "-" && !is_sha256_hex(val)) return bad();
      if (val != "-") e.sha256 = std::string(val);
    } else if (key == "target") {
      auto v = unescape_bytes(val);
      if (!v) return bad();
      e.target = std::move(*v);
    } else if (key == "rdev") {
      const auto comma = val.find(',');
      if (comma == std::string_view::npos) return bad();
      auto ma = parse_u64(val.substr(0, comma));
      auto mi = parse_u64(val.substr(comma + 1));
      if (!ma || !mi || *ma > UINT32_MAX || *mi > UINT32_MAX) return bad();
      e.rdev_major = static_cast<std::uint32_t>(*ma);
      e.rdev_minor = static_cast<std::uint32_t>(*mi);
    } else if (key == "link") {
      auto v = unescape_bytes(val);
      if (!v || !valid_tree_path(*v)) return bad();
      e.link = std::move(*v);
    } else if (starts_with(key, "xattr.")) {
      auto name = unescape_bytes(key.substr(6), k_xattr_name_extra);
      auto value = base64_decode(val);
      if (!name || name->empty() || !value) return bad();
      e.xattrs.push_back({std::move(*name), std::move(*value)});
    } else if (key == "mtime" && with_mtime) {
      auto t = parse_time(val);
      if (!t) return bad();
      e.mtime_sec = t->first;
      e.mtime_nsec = t->second;
    } else {
      return str("unknown field ", quote(key));
    }
  }
  if (!have_type) return std::string("entry has no type");
  // Canonical form only: the same entry must serialise to exactly this line. This rejects
  // reordered or duplicated fields and non-canonical numbers. Serialised once, without the
  // mtime, which is then the digest form.
  digest_form.clear();
  append_entry(digest_form, e, false);
  bool canonical = starts_with(line, digest_form);
  if (canonical && with_mtime) {
    std::string mtime = " mtime=";
    append_time(mtime, e.mtime_sec, e.mtime_nsec);
    canonical = line.substr(digest_form.size()) == mtime;
  } else if (canonical) {
    canonical = line.size() == digest_form.size();
  }
  if (!canonical) return std::string("entry is not in canonical form (fields reordered, duplicated or missing)");
  return std::nullopt;
}

bool known_strip_action(std::string_view a) {
  return a == "setuid-removed" || a == "device-removed" || a == "setuid-cleared" || a == "capability-dropped" ||
         a == "setuid-cleared,capability-dropped";
}
}  // namespace

Result<Manifest> parse(std::string_view text, const std::string& filename, std::string* end_digest) {
  auto err = [&](std::size_t line, const std::string& msg) { return fail(Errc::parse, str(filename, ":", line, ": ", msg)); };
  Manifest m;
  // One entry a line: sized once, so that the entries are not moved while they are read; only
  // for a text that starts as a manifest, and at most one per 100 bytes (the shortest entry line
  // is about 50, a typical one 150), so that no text reserves much more than its size.
  if (starts_with(text, k_header) && text.size() > k_header.size() && text[k_header.size()] == '\n')
    m.entries.reserve(std::min(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')), text.size() / 100));
  std::size_t lineno = 0;
  std::size_t pos = 0;
  bool ended = false;
  bool in_header = true;
  std::unordered_set<std::string> dirs;
  Sha256 h;
  std::string digest_line;  // reused: one per line would be 300,000 allocations for a big tree
  std::string digest_buf;   // the digest form, hashed in 64 KiB pieces rather than line by line
  while (pos < text.size()) {
    const auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) return err(lineno + 1, "truncated: the last line has no newline (the manifest is incomplete)");
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++lineno;
    if (ended) return err(lineno, "unexpected text after the end line");
    if (lineno == 1) {
      if (line != k_header) return err(1, str("not a chrootctl manifest (expected ", quote(k_header), " on the first line)"));
      h.update(line);
      h.update("\n");
      continue;
    }
    if (lineno == 2 && starts_with(line, k_sealed)) {
      m.sealed = parse_sealed_line(line);
      if (!m.sealed) return err(lineno, "malformed #sealed line (expected '#sealed erofs size=N sha256=HEX hash-offset=N root-hash=HEX salt=HEX')");
      in_header = false;  // a sealed image is never stripped: no strip records follow
      continue;
    }
    if (in_header && lineno == 2 && starts_with(line, k_stripped_from)) {
      const std::string_view d = line.substr(k_stripped_from.size());
      if (!is_sha256_hex(d)) return err(lineno, "malformed '#stripped-from' line (expected '#stripped-from sha256:HEX')");
      m.stripped_from = std::string(d);
      h.update(line);
      h.update("\n");
      continue;
    }
    if (in_header && !m.stripped_from.empty() && starts_with(line, k_stripped)) {
      const std::string_view rest = line.substr(k_stripped.size());
      const auto sp = rest.find(' ');
      StripRecord r;
      r.action = std::string(rest.substr(0, sp == std::string_view::npos ? rest.size() : sp));
      if (!known_strip_action(r.action) || sp == std::string_view::npos) return err(lineno, str("unknown strip action ", quote(r.action)));
      if (auto why = parse_entry(rest.substr(sp + 1), false, r.original, digest_line)) return err(lineno, *why);
      if (!m.stripped.empty() && !(m.stripped.back().original.path < r.original.path))
        return err(lineno, "strip records are out of order or duplicated");
      m.stripped.push_back(std::move(r));
      h.update(line);
      h.update("\n");
      continue;
    }
    in_header = false;
    if (starts_with(line, k_end)) {
      const auto fields = split(line.substr(k_end.size()), ' ');
      if (fields.size() != 2 || !starts_with(fields[0], "entries=") || !starts_with(fields[1], "sha256="))
        return err(lineno, "malformed end line (expected '#end entries=N sha256=HEX')");
      const auto count = parse_u64(std::string_view(fields[0]).substr(8));
      if (!count || *count != m.entries.size())
        return err(lineno, str("the end line says ", fields[0].substr(8), " entries but the manifest has ", m.entries.size(),
                               " (lines were added or removed)"));
      h.update(digest_buf);
      digest_buf.clear();
      const std::string computed = h.hex_final();
      if (fields[1].substr(7) != computed)
        return err(lineno, "the entries do not match the digest on the end line (the manifest was edited or damaged)");
      if (end_digest) *end_digest = computed;
      ended = true;
      continue;
    }
    Entry e;
    if (auto why = parse_entry(line, true, e, digest_line)) return err(lineno, *why);
    if (!m.entries.empty() && !(m.entries.back().path < e.path))
      return err(lineno, str("entry ", quote(escape_bytes(e.path)), " is out of order or duplicated"));
    if (m.entries.empty() && e.path != "/") return err(lineno, "the first entry must be the root '/'");
    if (e.path != "/" && !dirs.count(parent_dir(e.path)))
      return err(lineno, str("entry ", quote(escape_bytes(e.path)), " has no parent directory entry"));
    if (!e.link.empty() && e.link > e.path) return err(lineno, "hard-link group leader must sort first");
    digest_buf += digest_line;
    digest_buf += '\n';
    if (digest_buf.size() > 60 * 1024) {
      h.update(digest_buf);
      digest_buf.clear();
    }
    m.entries.push_back(std::move(e));
    if (m.entries.back().type == Type::dir) dirs.insert(m.entries.back().path);
  }
  if (lineno == 0) return err(1, "empty file");
  if (!ended) return err(lineno + 1, "truncated: no end line (the manifest is incomplete)");
  if (!m.stripped_from.empty()) {
    if (m.stripped.empty()) return err(2, "'#stripped-from' without any '#stripped' record");
    if (auto o = original_digest(m); !o) return fail(Errc::parse, str(filename, ": ", o.error().message()));
  }
  return m;
}

Result<Manifest> load(const std::string& path, std::string* end_digest) {
  // Pinned with O_PATH first: opening a device can have side effects, and reading one (or an
  // endless FIFO) must not fill memory. The header is checked before the rest is read.
  auto pinned = TRY(with_context(sys::open_path(path, O_PATH | O_NOFOLLOW), str("reading manifest ", path)));
  auto st = TRY(sys::fstat(pinned.get()));
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) return fail(Errc::invalid_argument, str("reading manifest ", path, ": not a regular file"));
  if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) > k_manifest_limit)
    return fail(Errc::invalid_argument, str("reading manifest ", path, ": it is ", human_size(static_cast<std::uint64_t>(st.st_size)),
                                            ", larger than the limit of ", human_size(k_manifest_limit)));
  auto fd = TRY(with_context(sys::open_path(str("/proc/self/fd/", pinned.get()), O_RDONLY | O_NOCTTY), str("reading manifest ", path)));
  std::string text(k_header.size() + 1, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = sys::retry_eintr([&] { return ::read(fd.get(), text.data() + got, text.size() - got); });
    if (n < 0) return fail_errno(str("read(", quote(path), ")"), errno);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  if (text.size() < k_header.size() + 1 || std::string_view(text).substr(0, k_header.size()) != k_header || text.back() != '\n')
    return fail(Errc::parse, str(path, ":1: not a chrootctl manifest (expected ", quote(k_header), " on the first line)"));
  auto rest = TRY(with_context(sys::read_fd(fd.get(), k_manifest_limit - text.size()), str("reading manifest ", path)));
  rest.insert(0, text);  // in place: the rest can be tens of megabytes
  return parse(rest, path, end_digest);
}

Status save(const Manifest& m, const std::string& path) {
  return with_context(write_file_atomic(path, serialize(m), 0644), str("writing manifest ", path));
}

// ---- stat record ----

std::string stat_path_for(const std::string& manifest_path) { return manifest_path + ".stat"; }

// The stat record is binary: it is read before every fast check, and a fixed-size record array
// loads in one read with no parsing. Little-endian, layout in docs/manifest.md.
namespace {
constexpr char k_stat_magic[8] = {'C', 'C', 'S', 'T', 'A', 'T', '0', '2'};
struct StatFileItem {  // 56 bytes, all little-endian
  std::uint32_t path_offset;
  std::uint32_t type_mode;  // type char << 16 | mode
  std::uint32_t uid, gid;
  std::uint64_t size, dev, ino;
  std::int64_t ctime_sec;
  std::uint32_t ctime_nsec;
  std::uint32_t reserved;
};
static_assert(sizeof(StatFileItem) == 56);
static_assert(std::endian::native == std::endian::little, "stat record layout assumes a little-endian host");
struct StatFileHeader {
  char magic[8];
  char digest[64];
  std::uint64_t count;
  std::uint64_t paths_size;
};
static_assert(sizeof(StatFileHeader) == 88);
}  // namespace

std::string serialize_stat(const Manifest& m, const std::string& manifest_digest) {
  std::string paths;
  std::vector<StatFileItem> items;
  items.reserve(m.entries.size());
  for (const auto& e : m.entries) {
    StatFileItem it{};
    it.path_offset = static_cast<std::uint32_t>(paths.size());
    if (e.path == "/") paths += ".";
    else paths.append(e.path, 1);
    paths.push_back('\0');
    it.type_mode = (static_cast<std::uint32_t>(static_cast<unsigned char>(e.type)) << 16) | (e.mode & 07777);
    it.uid = e.uid;
    it.gid = e.gid;
    it.size = e.size;
    it.dev = e.dev;
    it.ino = e.ino;
    it.ctime_sec = e.ctime_sec;
    it.ctime_nsec = e.ctime_nsec;
    items.push_back(it);
  }
  StatFileHeader h{};
  std::memcpy(h.magic, k_stat_magic, sizeof h.magic);
  std::memcpy(h.digest, manifest_digest.data(), std::min<std::size_t>(manifest_digest.size(), sizeof h.digest));
  h.count = items.size();
  h.paths_size = paths.size();
  std::string out;
  out.reserve(sizeof h + items.size() * sizeof(StatFileItem) + paths.size());
  out.append(reinterpret_cast<const char*>(&h), sizeof h);
  out.append(reinterpret_cast<const char*>(items.data()), items.size() * sizeof(StatFileItem));
  out += paths;
  return out;
}

RenderedWithStat render_with_stat(const Manifest& m) {
  // The stat record names the manifest's digest, which only the rendering yields: it is built
  // with an empty digest beside the rendering, and the digest written into its header after.
  RenderedWithStat r;
  Thread stat_thread([&] { r.stat = serialize_stat(m, {}); });
  r.manifest = render(m);
  stat_thread.join();
  std::memcpy(r.stat.data() + offsetof(StatFileHeader, digest), r.manifest.digest.data(),
              std::min<std::size_t>(r.manifest.digest.size(), sizeof StatFileHeader::digest));
  return r;
}

namespace {
// Parses `data`, which `storage` keeps alive (the record's path table is used in place).
Result<StatRecord> parse_stat_in(std::string_view data, std::shared_ptr<const void> storage, const std::string& filename) {
  auto bad = [&](const std::string& why) { return fail(Errc::parse, str(filename, ": ", why)); };
  StatFileHeader h{};
  if (data.size() < sizeof h) return bad("not a chrootctl stat record (too short)");
  std::memcpy(&h, data.data(), sizeof h);
  if (std::memcmp(h.magic, k_stat_magic, sizeof h.magic) != 0) return bad("not a chrootctl stat record");
  // Compared without a sum that could wrap around: a paths_size near 2^64 would otherwise make
  // the sizes add up to a record shorter than its items.
  if (h.count > data.size() / sizeof(StatFileItem) || sizeof h + h.count * sizeof(StatFileItem) > data.size() ||
      h.paths_size != data.size() - sizeof h - h.count * sizeof(StatFileItem))
    return bad("truncated or damaged (sizes do not add up)");
  StatRecord r;
  r.storage = std::move(storage);
  r.manifest_digest.assign(h.digest, sizeof h.digest);
  r.paths = data.substr(sizeof h + h.count * sizeof(StatFileItem));
  if (!r.paths.empty() && r.paths.back() != '\0') return bad("damaged path table");
  r.items.resize(h.count);
  const char* p = data.data() + sizeof h;
  for (std::uint64_t i = 0; i < h.count; ++i) {
    StatFileItem it{};
    std::memcpy(&it, p + i * sizeof it, sizeof it);
    if (it.path_offset >= r.paths.size()) return bad(str("item ", i, ": bad path offset"));
    const char tc = static_cast<char>(it.type_mode >> 16);
    auto type = type_from_char(std::string_view(&tc, 1));
    if (!type) return bad(str("item ", i, ": bad type"));
    auto& o = r.items[i];
    o.path_offset = it.path_offset;
    o.type = *type;
    o.mode = it.type_mode & 07777;
    o.uid = it.uid;
    o.gid = it.gid;
    o.size = it.size;
    o.dev = it.dev;
    o.ino = it.ino;
    o.ctime_sec = it.ctime_sec;
    o.ctime_nsec = it.ctime_nsec;
  }
  if (h.count == 0 || std::string_view(r.relative_path(r.items[0])) != ".") return bad("the first item is not the root");
  return r;
}

// A read-only private mapping of a whole file, unmapped with the last reference.
struct Mapping {
  void* addr = nullptr;
  std::size_t size = 0;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  Mapping(void* a, std::size_t n) : addr(a), size(n) {}
  ~Mapping() {
    if (addr) ::munmap(addr, size);
  }
};
}  // namespace

Result<StatRecord> parse_stat(std::string_view data, const std::string& filename) {
  auto copy = std::make_shared<const std::string>(data);
  const std::string_view view(*copy);
  return parse_stat_in(view, std::move(copy), filename);
}

std::vector<Entry> StatRecord::entries() const {
  std::vector<Entry> out;
  out.reserve(items.size());
  for (const auto& it : items) {
    Entry e;
    const std::string_view rel = relative_path(it);
    e.path = rel == "." ? std::string("/") : "/" + std::string(rel);
    e.type = it.type;
    e.mode = it.mode;
    e.uid = it.uid;
    e.gid = it.gid;
    e.size = it.size;
    e.dev = it.dev;
    e.ino = it.ino;
    e.ctime_sec = it.ctime_sec;
    e.ctime_nsec = it.ctime_nsec;
    out.push_back(std::move(e));
  }
  return out;
}

Result<StatRecord> load_stat(const std::string& path) {
  // Mapped rather than read: a copy of the whole record would cost a page fault per 4 KiB on
  // every fast check. The record is root's (the store's checks see to that); a file truncated
  // under the mapping would end the process with SIGBUS, never yield wrong data.
  auto fd = TRY(with_context(sys::open_path(path, O_RDONLY | O_NOCTTY | O_NOFOLLOW), str("reading stat record ", path)));
  auto st = TRY(with_context(sys::fstat(fd.get()), str("reading stat record ", path)));
  if (!S_ISREG(st.st_mode)) return fail(Errc::invalid_argument, str(path, ": not a regular file"));
  if (st.st_size <= 0 || static_cast<std::uint64_t>(st.st_size) > (std::uint64_t{1} << 31))
    return parse_stat(std::string_view(), path);  // reports "too short" (or refuses the size)
  const auto size = static_cast<std::size_t>(st.st_size);
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd.get(), 0);
  if (addr == MAP_FAILED) return fail_errno(str("mmap(", path, ")"), errno);
  auto mapping = std::make_shared<const Mapping>(addr, size);
  return parse_stat_in(std::string_view(static_cast<const char*>(addr), size), std::move(mapping), path);
}

Result<std::optional<Sealed>> read_sealed(const std::string& manifest_path) {
  auto fd = TRY(sys::open_path(manifest_path, O_RDONLY | O_NOCTTY));
  std::string head(1024, '\0');
  const ssize_t n = sys::retry_eintr([&] { return ::pread(fd.get(), head.data(), head.size(), 0); });
  if (n < 0) return fail_errno(str("pread(", quote(manifest_path), ")"), errno);
  head.resize(static_cast<std::size_t>(n));
  const auto first = head.find('\n');
  if (first == std::string::npos || std::string_view(head).substr(0, first) != k_header)
    return fail(Errc::parse, str(manifest_path, ":1: not a chrootctl manifest (expected ", quote(k_header), " on the first line)"));
  const auto second = head.find('\n', first + 1);
  const std::string_view line = std::string_view(head).substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1);
  if (!starts_with(line, k_sealed)) return std::optional<Sealed>();
  auto s = parse_sealed_line(line);
  if (!s || second == std::string::npos) return fail(Errc::parse, str(manifest_path, ":2: malformed #sealed line"));
  return std::optional<Sealed>(std::move(*s));
}

Result<std::string> read_digest(const std::string& manifest_path) {
  auto fd = TRY(sys::open_path(manifest_path, O_RDONLY | O_NOCTTY));
  auto st = TRY(sys::fstat(fd.get()));
  const off_t len = std::min<off_t>(st.st_size, 256);
  std::string tail(static_cast<std::size_t>(len), '\0');
  const ssize_t n = ::pread(fd.get(), tail.data(), tail.size(), st.st_size - len);
  if (n != len) return fail(Errc::io, str("reading ", manifest_path, ": short read"));
  return TRY(parse_end_line(tail, manifest_path)).digest;
}

Result<EndLine> parse_end_line(std::string_view text, const std::string& filename) {
  auto incomplete = [&] { return fail(Errc::parse, str(filename, ": no end line (the manifest is incomplete)")); };
  if (text.empty() || text.back() != '\n') return incomplete();
  const auto start = text.rfind('\n', text.size() >= 2 ? text.size() - 2 : 0);
  const std::string_view last = text.substr(start == std::string_view::npos ? 0 : start + 1, std::string_view::npos);
  if (last.empty()) return incomplete();
  const std::string_view line = last.substr(0, last.size() - 1);
  if (!starts_with(line, k_end)) return incomplete();
  const auto fields = split(line.substr(k_end.size()), ' ');
  if (fields.size() != 2 || !starts_with(fields[0], "entries=") || !starts_with(fields[1], "sha256="))
    return fail(Errc::parse, str(filename, ": malformed end line (expected '#end entries=N sha256=HEX')"));
  const auto count = parse_u64(std::string_view(fields[0]).substr(8));
  const std::string digest = fields[1].substr(7);
  if (!count || !is_sha256_hex(digest)) return fail(Errc::parse, str(filename, ": malformed end line (expected '#end entries=N sha256=HEX')"));
  return EndLine{*count, digest};
}

// ---- mtree ----

namespace {
// NetBSD mtree decodes names with strunvis(3); octal escapes are always understood. Glob
// characters are escaped so that mtree matches the name literally.
std::string mtree_name(std::string_view raw) {
  std::string out;
  for (unsigned char c : raw) {
    if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '#' || c == '*' || c == '?' || c == '[' || c == ']') {
      char buf[8];
      (void)std::snprintf(buf, sizeof buf, "\\%03o", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}
}  // namespace

std::string to_mtree(const Manifest& m) {
  std::string out = "#mtree v2.0\n";
  for (const auto& e : m.entries) {
    out += e.path == "/" ? std::string(".") : "." + mtree_name(e.path);
    switch (e.type) {
      case Type::file:
        out += " type=file";
        break;
      case Type::dir:
        out += " type=dir";
        break;
      case Type::symlink:
        out += " type=link";
        break;
      case Type::chardev:
        out += " type=char";
        break;
      case Type::blockdev:
        out += " type=block";
        break;
      case Type::fifo:
        out += " type=fifo";
        break;
      case Type::socket:
        out += " type=socket";
        break;
    }
    out += str(" uid=", e.uid, " gid=", e.gid, " mode=", mode_octal(e.mode));
    if (e.type == Type::file) out += str(" size=", e.size, " sha256=", e.sha256);
    if (e.type == Type::symlink) out += " link=" + mtree_name(e.target);
    if (e.type == Type::chardev || e.type == Type::blockdev) out += str(" device=linux,", e.rdev_major, ",", e.rdev_minor);
    out += " time=" + time_text(e.mtime_sec, e.mtime_nsec);
    out += '\n';
  }
  return out;
}

// ---- comparing ----

std::string_view kind_name(Difference::Kind k) {
  switch (k) {
    case Difference::Kind::added:
      return "added";
    case Difference::Kind::removed:
      return "removed";
    case Difference::Kind::changed:
      return "changed";
    case Difference::Kind::mtime_only:
      return "mtime-only";
  }
  return "?";
}

bool DiffResult::differs_beyond_mtime() const {
  return std::any_of(differences.begin(), differences.end(), [](const Difference& d) { return d.kind != Difference::Kind::mtime_only; });
}

namespace {

std::string describe(const Entry& e) {
  std::string s(type_name(e.type));
  if (e.type == Type::file) s += str(" ", e.size, " bytes");
  if (e.type == Type::symlink) s += " -> " + escape_bytes(e.target);
  return s;
}

void compare_entry(const Entry& a, const Entry& b, const CompareOptions& opt, std::vector<FieldChange>& out) {
  auto add = [&](std::string field, std::string o, std::string n) { out.push_back({std::move(field), std::move(o), std::move(n)}); };
  if (a.type != b.type) {
    add("type", describe(a), describe(b));
    return;  // other fields of a different kind of entry say nothing more
  }
  if (a.mode != b.mode) add("mode", mode_octal(a.mode), mode_octal(b.mode));
  if (a.uid != b.uid) add("uid", std::to_string(a.uid), std::to_string(b.uid));
  if (a.gid != b.gid) add("gid", std::to_string(a.gid), std::to_string(b.gid));
  if (a.type == Type::file) {
    if (a.size != b.size) add("size", std::to_string(a.size), std::to_string(b.size));
    if (opt.content && a.sha256 != b.sha256) add("sha256", a.sha256, b.sha256);
  }
  if (opt.content) {
    if (a.target != b.target) add("target", escape_bytes(a.target), escape_bytes(b.target));
    if (a.rdev_major != b.rdev_major || a.rdev_minor != b.rdev_minor)
      add("rdev", str(a.rdev_major, ",", a.rdev_minor), str(b.rdev_major, ",", b.rdev_minor));
    if (a.link != b.link) add("link", a.link.empty() ? "-" : escape_bytes(a.link), b.link.empty() ? "-" : escape_bytes(b.link));
  }
  // xattrs: merge by name
  std::size_t i = 0, j = 0;
  while (opt.content && (i < a.xattrs.size() || j < b.xattrs.size())) {
    if (j >= b.xattrs.size() || (i < a.xattrs.size() && a.xattrs[i].name < b.xattrs[j].name)) {
      add("xattr:" + escape_bytes(a.xattrs[i].name), base64_encode(a.xattrs[i].value), "-");
      ++i;
    } else if (i >= a.xattrs.size() || b.xattrs[j].name < a.xattrs[i].name) {
      add("xattr:" + escape_bytes(b.xattrs[j].name), "-", base64_encode(b.xattrs[j].value));
      ++j;
    } else {
      if (a.xattrs[i].value != b.xattrs[j].value)
        add("xattr:" + escape_bytes(a.xattrs[i].name), base64_encode(a.xattrs[i].value), base64_encode(b.xattrs[j].value));
      ++i;
      ++j;
    }
  }
  if (opt.stat) {
    if (a.ino != b.ino || a.dev != b.dev) add("inode", str(a.dev, ":", a.ino), str(b.dev, ":", b.ino));
    if (a.ctime_sec != b.ctime_sec || a.ctime_nsec != b.ctime_nsec)
      add("ctime", time_text(a.ctime_sec, a.ctime_nsec), time_text(b.ctime_sec, b.ctime_nsec));
  }
}

}  // namespace

DiffResult diff_with(const Manifest& expected, const Manifest& actual, const CompareOptions& opt) {
  DiffResult r;
  std::size_t i = 0, j = 0;
  const auto& a = expected.entries;
  const auto& b = actual.entries;
  while (i < a.size() || j < b.size()) {
    if (j >= b.size() || (i < a.size() && a[i].path < b[j].path)) {
      r.differences.push_back({Difference::Kind::removed, a[i].path, {}});
      ++i;
    } else if (i >= a.size() || b[j].path < a[i].path) {
      r.differences.push_back({Difference::Kind::added, b[j].path, {}});
      ++j;
    } else {
      std::vector<FieldChange> fields;
      compare_entry(a[i], b[j], opt, fields);
      if (!fields.empty()) {
        r.differences.push_back({Difference::Kind::changed, a[i].path, std::move(fields)});
      } else if (opt.content && (a[i].mtime_sec != b[j].mtime_sec || a[i].mtime_nsec != b[j].mtime_nsec)) {
        r.differences.push_back({Difference::Kind::mtime_only,
                                 a[i].path,
                                 {{"mtime", time_text(a[i].mtime_sec, a[i].mtime_nsec), time_text(b[j].mtime_sec, b[j].mtime_nsec)}}});
      }
      ++i;
      ++j;
    }
  }
  return r;
}

DiffResult diff(const Manifest& expected, const Manifest& actual) { return diff_with(expected, actual, {}); }

Result<DiffResult> check(const std::string& root, const Manifest& expected, const CreateOptions& options, Manifest* actual) {
  auto fresh = TRY(create(root, options));
  auto r = diff_with(expected, fresh, {});
  if (actual) *actual = std::move(fresh);
  return r;
}

std::string render_text(const DiffResult& d) {
  std::string out;
  for (const auto& x : d.differences) {
    const std::string head = str(kind_name(x.kind), " ", escape_bytes(x.path));
    if (x.fields.empty()) {
      out += head + "\n";
      continue;
    }
    for (const auto& f : x.fields) out += str(head, " ", f.field, " ", f.old_value, " -> ", f.new_value, "\n");
  }
  return out;
}

void write_json(JsonWriter& w, const DiffResult& d) {
  w.begin_array();
  for (const auto& x : d.differences) {
    w.begin_object();
    w.field("kind", kind_name(x.kind));
    w.field("path", escape_bytes(x.path));
    w.key("fields").begin_array();
    for (const auto& f : x.fields) {
      w.begin_object();
      w.field("field", f.field);
      w.field("old", f.old_value);
      w.field("new", f.new_value);
      w.end_object();
    }
    w.end_array();
    w.end_object();
  }
  w.end_array();
}

}  // namespace chrootctl::manifest
