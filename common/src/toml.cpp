// The one translation unit that compiles TOML++'s implementation (TOML_HEADER_ONLY=0 everywhere).
//
// TOML++'s internal checks are compiled to nothing here, in every build. TOML++ 3.3 (Debian 12)
// makes them assert() calls without NDEBUG and, with NDEBUG under clang, assumptions the
// optimiser may build on (__builtin_assume); and its parser breaks one of them itself: for a
// table header such as "[[[1]]]" or "[=" it calls parse_key on a character that is no key's
// start, which parse_key then reports as a parse error (fixed upstream, marzer/tomlplusplus#301).
// So a hostile catalogue, recipe, policy or export entry would abort a sanitizer build and is
// undefined behaviour in a clang release build; GCC's release build, which has neither, is what
// every build now does. TOML_ASSERT replaces the checks only with NDEBUG undefined.
#undef NDEBUG
#define TOML_ASSERT(expr) static_assert(true)
#define TOML_IMPLEMENTATION
#include "chrootctl/common/toml.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl {

namespace {
std::string_view source_line(std::string_view text, std::uint32_t line) {
  std::size_t pos = 0;
  for (std::uint32_t l = 1; l < line; ++l) {
    const auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) return {};
    pos = nl + 1;
  }
  auto end = text.find('\n', pos);
  if (end == std::string_view::npos) end = text.size();
  auto l = text.substr(pos, end - pos);
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  return l;
}
// The most parts of any run of dotted words in `text` (a.b.c = 1, [a.b.c], "a"."b" = 1), and
// where it starts. TOML++ parses a dotted key recursively, a stack frame per part, so about
// 130,000 parts overflow the stack (SIGSEGV) in a file far smaller than the sizes chrootctl
// reads. Strings are taken whole (dots inside them are no key's), multi-line ones skipped; a
// run of dotted words outside a key (a float, a comment) counts too, which only errs towards
// counting more.
struct DottedRun {
  std::size_t parts = 0;
  std::size_t offset = 0;
};
DottedRun longest_dotted_run(std::string_view t) {
  auto bare = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; };
  auto blank_end = [&](std::size_t j) {
    while (j < t.size() && (t[j] == ' ' || t[j] == '\t')) ++j;
    return j;
  };
  // The end of the word or one-line string at j; j if neither starts there.
  auto word_end = [&](std::size_t j) {
    if (bare(t[j])) {
      while (j < t.size() && bare(t[j])) ++j;
      return j;
    }
    if (t[j] != '"' && t[j] != '\'') return j;
    const char quote = t[j];
    for (++j; j < t.size() && t[j] != '\n'; ++j) {
      if (quote == '"' && t[j] == '\\') ++j;
      else if (t[j] == quote) return j + 1;
    }
    return j;
  };
  DottedRun best, run;
  std::size_t i = 0;
  while (i < t.size()) {
    if (t.compare(i, 3, "\"\"\"") == 0 || t.compare(i, 3, "'''") == 0) {
      const auto close = t.find(t.substr(i, 3), i + 3);
      i = close == std::string_view::npos ? t.size() : close + 3;
      run.parts = 0;
      continue;
    }
    const std::size_t end = word_end(i);
    if (end == i) {
      run.parts = 0;
      ++i;
      continue;
    }
    if (run.parts++ == 0) run.offset = i;
    if (run.parts > best.parts) best = run;
    const std::size_t next = blank_end(end);
    if (next < t.size() && t[next] == '.') {
      i = blank_end(next + 1);
    } else {
      run.parts = 0;
      i = end;
    }
  }
  return best;
}

}  // namespace

SourcePos pos_of(const toml::node& node) {
  const auto& s = node.source();
  return {static_cast<std::uint32_t>(s.begin.line), static_cast<std::uint32_t>(s.begin.column)};
}

std::string render_diagnostic(const TomlDocument& doc, SourcePos pos, std::string_view message) {
  // The file name, the message and the source line all come from input (an archive's member, a
  // hand-edited catalogue): each is printed terminal-safe, never raw.
  const std::string name = terminal_safe(doc.name);
  std::string out;
  if (pos.line) out = str(name, ":", pos.line, ":", pos.column, ": error: ", terminal_safe(message), "\n");
  else out = str(name, ": error: ", terminal_safe(message), "\n");
  if (pos.line) {
    const auto line = source_line(doc.text, pos.line);
    const std::string num = std::to_string(pos.line);
    // TOML++ counts columns in characters (code points). Each character is shown
    // terminal-safe, and the caret goes under the character at the column, whatever width
    // its escape took; tabs are kept so it lines up in a terminal. A long line is shown only
    // around the column (a file may be one line of many errors: quoting all of it for each
    // would make the report grow with the square of the line).
    constexpr std::size_t k_whole = 200;     // bytes: a line up to this is shown whole
    constexpr std::uint32_t k_context = 80;  // characters either side of the column otherwise
    const bool whole = line.size() <= k_whole;
    const std::uint32_t first = whole || pos.column <= k_context ? 1 : pos.column - k_context;
    const std::uint32_t last = whole ? std::numeric_limits<std::uint32_t>::max() : first + 2 * k_context;
    std::string shown = first > 1 ? "..." : "", caret = first > 1 ? "   " : "";
    std::uint32_t column = 1;
    for (std::size_t i = 0; i < line.size(); ++column) {
      const std::size_t n = std::max<std::size_t>(1, utf8_char_length(line, i));
      if (column > last) {
        shown += "...";
        break;
      }
      if (column >= first) {
        const std::string_view raw = line.substr(i, n);
        const std::string piece = terminal_safe(raw);
        if (column < pos.column) {
          if (piece == "\t") caret += '\t';
          else caret += std::string(piece == raw && n > 1 ? 1 : piece.size(), ' ');
        }
        shown += piece;
      }
      i += n;
    }
    out += str(" ", num, " | ", shown, "\n");
    out += str(" ", std::string(num.size(), ' '), " | ", caret, "^\n");
  }
  return out;
}

Result<TomlDocument> parse_toml(std::string text, const std::string& display_name) {
  TomlDocument doc;
  doc.name = display_name;
  doc.text = std::move(text);
  if (const DottedRun run = longest_dotted_run(doc.text); run.parts > k_max_dotted_key_parts) {
    const std::string_view before = std::string_view(doc.text).substr(0, run.offset);
    const auto line_start = before.rfind('\n');
    const SourcePos pos{static_cast<std::uint32_t>(std::count(before.begin(), before.end(), '\n') + 1),
                        static_cast<std::uint32_t>(run.offset - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1)};
    std::string msg = render_diagnostic(doc, pos, str("a dotted key of ", run.parts, " parts (at most ", k_max_dotted_key_parts, ")"));
    if (!msg.empty() && msg.back() == '\n') msg.pop_back();
    return fail(Errc::parse, std::move(msg));
  }
  try {
    doc.table = toml::parse(doc.text, std::string_view(doc.name));
  } catch (const toml::parse_error& e) {
    const auto& s = e.source();
    std::string desc(e.description());
    SourcePos pos{static_cast<std::uint32_t>(s.begin.line), static_cast<std::uint32_t>(s.begin.column)};
    std::string msg = render_diagnostic(doc, pos, desc);
    if (!msg.empty() && msg.back() == '\n') msg.pop_back();
    return fail(Errc::parse, std::move(msg));
  }
  return doc;
}

Result<TomlDocument> load_toml(const std::string& path, const std::string& display_name) {
  auto text = TRY(sys::read_file(path, 16u << 20));
  return parse_toml(std::move(text), display_name.empty() ? path : display_name);
}

void Diagnostics::error(SourcePos pos, std::string message) { m_items.push_back({pos, std::move(message)}); }

void Diagnostics::error(const toml::node& node, std::string message) { error(pos_of(node), std::move(message)); }

std::string Diagnostics::render() const {
  auto items = m_items;
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column); });
  // The first errors in full; a file of thousands of mistakes is refused on those as well.
  constexpr std::size_t k_shown = 50;
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < k_shown; ++i) out += render_diagnostic(m_doc, items[i].pos, items[i].message);
  if (items.size() > k_shown) out += str("(", items.size() - k_shown, " more not shown)\n");
  if (items.size() > 1) out += str(items.size(), " errors in ", terminal_safe(m_doc.name), "\n");
  return out;
}

Status Diagnostics::result() const {
  if (m_items.empty()) return {};
  std::string msg = render();
  if (!msg.empty() && msg.back() == '\n') msg.pop_back();
  return fail(Errc::parse, std::move(msg));
}

TableReader::TableReader(Diagnostics& diag, const toml::table& table, std::string context)
    : m_diag(diag), m_table(table), m_context(std::move(context)) {}

std::string TableReader::qualified(std::string_view key) const { return m_context.empty() ? std::string(key) : str(m_context, ".", key); }

bool TableReader::has(std::string_view key) const { return m_table.contains(key); }

SourcePos TableReader::key_pos(std::string_view key) const {
  for (const auto& [k, v] : m_table) {
    if (k.str() == key) {
      const auto& s = k.source();
      if (s.begin.line) return {static_cast<std::uint32_t>(s.begin.line), static_cast<std::uint32_t>(s.begin.column)};
      return pos_of(v);
    }
  }
  return pos_of(m_table);
}

const toml::node* TableReader::lookup(std::string_view key, bool required, std::string_view type_name) {
  m_known.emplace_back(key);
  const toml::node* n = m_table.get(key);
  if (!n) {
    if (required) m_diag.error(pos_of(m_table), str("missing required key ", quote(qualified(key)), " (", type_name, ")"));
    return nullptr;
  }
  return n;
}

std::optional<std::string> TableReader::string(std::string_view key, bool required) {
  const auto* n = lookup(key, required, "a string");
  if (!n) return std::nullopt;
  if (const auto* s = n->as_string()) return s->get();
  m_diag.error(*n, str(quote(qualified(key)), " must be a string"));
  return std::nullopt;
}

std::optional<std::int64_t> TableReader::integer(std::string_view key, bool required) {
  const auto* n = lookup(key, required, "an integer");
  if (!n) return std::nullopt;
  if (const auto* v = n->as_integer()) return v->get();
  m_diag.error(*n, str(quote(qualified(key)), " must be an integer"));
  return std::nullopt;
}

std::optional<bool> TableReader::boolean(std::string_view key, bool required) {
  const auto* n = lookup(key, required, "true or false");
  if (!n) return std::nullopt;
  if (const auto* v = n->as_boolean()) return v->get();
  m_diag.error(*n, str(quote(qualified(key)), " must be true or false"));
  return std::nullopt;
}

std::optional<std::vector<std::string>> TableReader::string_array(std::string_view key, bool required) {
  const auto* n = lookup(key, required, "an array of strings");
  if (!n) return std::nullopt;
  const auto* arr = n->as_array();
  if (!arr) {
    m_diag.error(*n, str(quote(qualified(key)), " must be an array of strings"));
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (const auto& item : *arr) {
    if (const auto* s = item.as_string()) {
      out.push_back(s->get());
    } else {
      m_diag.error(item, str("every item of ", quote(qualified(key)), " must be a string"));
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

const toml::table* TableReader::table(std::string_view key, bool required) {
  const auto* n = lookup(key, required, "a table");
  if (!n) return nullptr;
  if (const auto* t = n->as_table()) return t;
  m_diag.error(*n, str(quote(qualified(key)), " must be a table"));
  return nullptr;
}

const toml::array* TableReader::table_array(std::string_view key, bool required) {
  const auto* n = lookup(key, required, "an array of tables");
  if (!n) return nullptr;
  if (const auto* a = n->as_array()) {
    bool ok = true;
    for (const auto& item : *a) {
      if (!item.is_table()) {
        m_diag.error(item, str("every item of ", quote(qualified(key)), " must be a table"));
        ok = false;
      }
    }
    return ok ? a : nullptr;
  }
  m_diag.error(*n, str(quote(qualified(key)), " must be an array of tables ([[", key, "]])"));
  return nullptr;
}

const toml::node* TableReader::node(std::string_view key, bool required) { return lookup(key, required, "a value"); }

void TableReader::finish() {
  for (const auto& [k, v] : m_table) {
    const std::string key(k.str());
    if (std::find(m_known.begin(), m_known.end(), key) != m_known.end()) continue;
    std::string msg = str("unknown key ", quote(qualified(key)));
    if (auto s = did_you_mean(key, m_known)) msg += str(" (did you mean ", quote(*s), "?)");
    const auto& src = k.source();
    SourcePos pos = src.begin.line ? SourcePos{static_cast<std::uint32_t>(src.begin.line), static_cast<std::uint32_t>(src.begin.column)} : pos_of(v);
    m_diag.error(pos, std::move(msg));
  }
}

std::string toml_quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[12];
          (void)std::snprintf(buf, sizeof buf, "\\u%04X", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out += "\"";
  return out;
}

TomlWriter& TomlWriter::comment(std::string_view text) {
  for (const auto& line : split(text, '\n')) m_out += line.empty() ? std::string("#\n") : str("# ", line, "\n");
  return *this;
}

TomlWriter& TomlWriter::string(std::string_view key, std::string_view value) {
  m_out += str(key, " = ", toml_quote(value), "\n");
  return *this;
}

TomlWriter& TomlWriter::optional_string(std::string_view key, std::string_view value) { return value.empty() ? *this : string(key, value); }

TomlWriter& TomlWriter::integer(std::string_view key, std::int64_t value) {
  m_out += str(key, " = ", value, "\n");
  return *this;
}

TomlWriter& TomlWriter::strings(std::string_view key, const std::vector<std::string>& values) {
  m_out += str(key, " = [");
  for (std::size_t i = 0; i < values.size(); ++i) m_out += str(i ? ", " : "", toml_quote(values[i]));
  m_out += "]\n";
  return *this;
}

TomlWriter& TomlWriter::inline_table(std::string_view key, const std::vector<std::pair<std::string, std::string>>& members) {
  m_out += str(key, " = {");
  for (std::size_t i = 0; i < members.size(); ++i) m_out += str(i ? ", " : " ", members[i].first, " = ", members[i].second);
  m_out += " }\n";
  return *this;
}

TomlWriter& TomlWriter::table(std::string_view name, bool array) {
  m_out += array ? str("\n[[", name, "]]\n") : str("\n[", name, "]\n");
  return *this;
}

}  // namespace chrootctl
