#pragma once
/// TOML loading with `file:line:col` diagnostics that show the source line and a caret, and a
/// key-table reader that rejects unknown keys (with a did-you-mean) and collects every error in
/// a file before failing once.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "chrootctl/common/error.hpp"

namespace chrootctl {

struct SourcePos {
  std::uint32_t line = 0;  ///< 1-based; 0 = unknown
  std::uint32_t column = 0;
};

/// A parsed TOML file with its text kept for rendering diagnostics.
struct TomlDocument {
  std::string name;  ///< how the file is named in messages (e.g. "recipes/el9.toml")
  std::string text;
  toml::table table;
};

/// Reads and parses `path`; syntax errors are rendered with line, column and caret.
Result<TomlDocument> load_toml(const std::string& path, const std::string& display_name = {});
Result<TomlDocument> parse_toml(std::string text, const std::string& display_name);

/// Collected errors for one file.
class Diagnostics {
public:
  explicit Diagnostics(const TomlDocument& doc) : m_doc(doc) {}

  void error(SourcePos pos, std::string message);
  void error(const toml::node& node, std::string message);
  [[nodiscard]] bool empty() const { return m_items.empty(); }
  [[nodiscard]] std::size_t count() const { return m_items.size(); }
  /// All errors rendered, each as `name:line:col: error: message` plus source line and caret.
  [[nodiscard]] std::string render() const;
  /// Fails with every error (Errc::parse) if any was recorded.
  [[nodiscard]] Status result() const;

private:
  struct Item {
    SourcePos pos;
    std::string message;
  };
  const TomlDocument& m_doc;
  std::vector<Item> m_items;
};

SourcePos pos_of(const toml::node& node);
/// "name:line:col: error: message\n  12 | source line\n     |     ^"
std::string render_diagnostic(const TomlDocument& doc, SourcePos pos, std::string_view message);

/// Reads the keys of one table, reporting wrong types and (on finish) unknown keys.
///   TableReader r(diag, table, "base");
///   auto suite = r.string("suite");          // optional<string>
///   r.finish();                              // unknown keys -> errors
class TableReader {
public:
  TableReader(Diagnostics& diag, const toml::table& table, std::string context = {});

  [[nodiscard]] bool has(std::string_view key) const;
  std::optional<std::string> string(std::string_view key, bool required = false);
  std::optional<std::int64_t> integer(std::string_view key, bool required = false);
  std::optional<bool> boolean(std::string_view key, bool required = false);
  std::optional<std::vector<std::string>> string_array(std::string_view key, bool required = false);
  /// A sub-table (inline or standard); nullptr if absent or of the wrong type (reported).
  const toml::table* table(std::string_view key, bool required = false);
  /// An array of tables ([[key]]); nullptr if absent.
  const toml::array* table_array(std::string_view key, bool required = false);
  /// Any node, marking the key as known; the caller checks the type.
  const toml::node* node(std::string_view key, bool required = false);

  /// Where a key sits (for caller-made errors).
  SourcePos key_pos(std::string_view key) const;
  Diagnostics& diagnostics() { return m_diag; }

  /// Reports every key that no accessor asked for, with a did-you-mean among known keys.
  void finish();

private:
  const toml::node* lookup(std::string_view key, bool required, std::string_view type_name);
  std::string qualified(std::string_view key) const;

  Diagnostics& m_diag;
  const toml::table& m_table;
  std::string m_context;
  std::vector<std::string> m_known;
};

/// Writes a TOML basic string literal with escapes (for files chrootctl writes itself).
std::string toml_quote(std::string_view s);

}  // namespace chrootctl
