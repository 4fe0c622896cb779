// Parsing system-call policies (docs/seccomp.md): a key table per table that rejects unknown
// keys, names checked against libseccomp's tables and our groups, every error at FILE:LINE:COL.
#include "chrootctl/seccomp/policy.hpp"

#include <algorithm>
#include <functional>
#include <utility>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/toml.hpp"

namespace chrootctl::seccomp {

namespace {

std::string where(const TomlDocument& doc, const toml::node& node) {
  const SourcePos p = pos_of(node);
  return str(doc.name, ":", p.line, ":", p.column);
}

// One document's decisions, collected before they are applied: a call may be named once per
// document (a group and one of its members in the same list is fine).
struct DocumentCalls {
  struct Entry {
    Disposition d;
    std::string list;  // "allow", "deny", "deny_with", "[[rule]]": for conflict messages
  };
  std::map<std::string, Entry> calls;

  void add(Diagnostics& diag, const toml::node& at, const std::string& name, Disposition d, const std::string& list) {
    auto [it, inserted] = calls.try_emplace(name, Entry{std::move(d), list});
    if (inserted) return;
    if (it->second.list == list && list != "[[rule]]") return;
    if (list == "[[rule]]" && it->second.list == "[[rule]]") diag.error(at, str(quote(name), " has two [[rule]]s; put its checks in one"));
    else diag.error(at, str(quote(name), " is in ", list, " and in ", it->second.list, " (a call may be named once per policy file)"));
  }
};

// A system call or a group, as written in a list; the calls it names, or none (reported).
std::vector<std::string> expand(Diagnostics& diag, const toml::node& item, const std::string& text, bool groups_allowed) {
  if (!text.empty() && text[0] == '@') {
    if (!groups_allowed) {
      diag.error(item, str("a [[rule]] names system calls, not groups (", quote(text), ")"));
      return {};
    }
    const Group* g = find_group(text);
    if (!g) {
      std::vector<std::string> names;
      for (const auto& x : groups()) names.emplace_back(x.name);
      std::string msg = str("unknown group ", quote(text));
      if (auto s = did_you_mean(text, names)) msg += str(" (did you mean ", quote(*s), "?)");
      diag.error(item, std::move(msg));
      return {};
    }
    std::vector<std::string> out;
    for (auto m : g->members)
      if (is_known_syscall(m)) out.emplace_back(m);
    return out;
  }
  if (!is_known_syscall(text)) {
    std::string msg = str("unknown system call ", quote(text));
    if (auto s = did_you_mean(text, known_syscalls())) msg += str(" (did you mean ", quote(*s), "?)");
    diag.error(item, std::move(msg));
    return {};
  }
  return {text};
}

// An array of system-call names and groups.
void read_names(Diagnostics& diag, TableReader& r, std::string_view key, const std::function<void(const toml::node&, const std::string&)>& each,
                bool groups_allowed = true) {
  const toml::node* n = r.node(key);
  if (!n) return;
  const toml::array* arr = n->as_array();
  if (!arr) {
    diag.error(*n, str(quote(key), " must be an array of system-call names and @groups"));
    return;
  }
  for (const auto& item : *arr) {
    const auto* s = item.as_string();
    if (!s) {
      diag.error(item, str("every item of ", quote(key), " must be a string (a system call or an @group)"));
      continue;
    }
    for (const auto& name : expand(diag, item, s->get(), groups_allowed)) each(item, name);
  }
}

std::optional<int> read_errno(Diagnostics& diag, const toml::node& n, std::string_view key) {
  const auto* s = n.as_string();
  if (!s) {
    diag.error(n, str(quote(key), " must be an errno name, like \"EPERM\""));
    return std::nullopt;
  }
  if (auto v = errno_by_name(s->get())) return v;
  std::vector<std::string> names;
  for (int e = 1; e < 4096; ++e)
    if (auto label = errno_label(e); label != std::to_string(e)) names.push_back(label);
  std::string msg = str("unknown errno ", quote(s->get()));
  if (auto sug = did_you_mean(s->get(), names)) msg += str(" (did you mean ", quote(*sug), "?)");
  diag.error(n, std::move(msg));
  return std::nullopt;
}

std::optional<std::uint64_t> read_value(Diagnostics& diag, const toml::node& n, unsigned width, std::string_view what) {
  const auto* v = n.as_integer();
  if (!v) {
    diag.error(n, str(what, " must be an integer"));
    return std::nullopt;
  }
  if (v->get() < 0) {
    diag.error(n, str(what, " must not be negative"));
    return std::nullopt;
  }
  const auto u = static_cast<std::uint64_t>(v->get());
  if (width == 32 && u > 0xffffffffULL) {
    diag.error(n, str(what, " 0x", hex_number(u), " does not fit in 32 bits (width = 32)"));
    return std::nullopt;
  }
  return u;
}

void read_rule(Diagnostics& diag, const TomlDocument& doc, const toml::table& t, DocumentCalls& calls) {
  TableReader r(diag, t, "rule");
  ArgRule rule;
  bool ok = true;
  if (auto arg = r.integer("arg", true)) {
    if (*arg < 0 || *arg > 5) {
      diag.error(*t.get("arg"), "'rule.arg' must be 0 to 5 (the argument's position)");
      ok = false;
    } else {
      rule.arg = static_cast<unsigned>(*arg);
    }
  } else {
    ok = false;
  }
  if (auto w = r.integer("width")) {
    if (*w != 32 && *w != 64) {
      diag.error(*t.get("width"), "'rule.width' must be 32 or 64");
      ok = false;
    } else {
      rule.width = static_cast<unsigned>(*w);
    }
  }
  const toml::node* allow_values = r.node("allow_values");
  const toml::node* deny_values = r.node("deny_values");
  const toml::node* clear = r.node("allow_if_clear");
  const int kinds = (allow_values ? 1 : 0) + (deny_values ? 1 : 0) + (clear ? 1 : 0);
  if (kinds != 1) {
    diag.error(t, "a [[rule]] needs exactly one of 'allow_values', 'deny_values' and 'allow_if_clear'");
    ok = false;
  }
  if (const toml::node* values = allow_values ? allow_values : deny_values) {
    rule.kind = allow_values ? ArgRule::Kind::allow_values : ArgRule::Kind::deny_values;
    const std::string key = allow_values ? "allow_values" : "deny_values";
    const auto* arr = values->as_array();
    if (!arr || arr->empty()) {
      diag.error(*values, str("'rule.", key, "' must be a non-empty array of integers"));
      ok = false;
    } else if (arr->size() > k_max_rule_values) {
      // Each value becomes up to one comparison per bit of the argument, and libseccomp's
      // time grows with the square of the comparisons: thousands of values took minutes.
      diag.error(*values, str("'rule.", key, "' lists ", arr->size(), " values; at most ", k_max_rule_values));
      ok = false;
    } else {
      for (const auto& item : *arr) {
        if (auto v = read_value(diag, item, rule.width, str("every item of 'rule.", key, "'"))) rule.values.push_back(*v);
        else ok = false;
      }
      std::sort(rule.values.begin(), rule.values.end());
      rule.values.erase(std::unique(rule.values.begin(), rule.values.end()), rule.values.end());
    }
  }
  if (clear) {
    rule.kind = ArgRule::Kind::allow_if_clear;
    if (auto m = read_value(diag, *clear, rule.width, "'rule.allow_if_clear'")) {
      if (*m == 0) {
        diag.error(*clear, "'rule.allow_if_clear' must name at least one bit");
        ok = false;
      }
      rule.mask = *m;
    } else {
      ok = false;
    }
  }
  if (const toml::node* e = r.node("errno")) {
    rule.errno_value = read_errno(diag, *e, "rule.errno");
    if (!rule.errno_value) ok = false;
  }
  std::vector<std::pair<const toml::node*, std::string>> names;
  read_names(
      diag, r, "syscalls", [&](const toml::node& at, const std::string& n) { names.emplace_back(&at, n); }, false);
  if (!t.get("syscalls")) {
    diag.error(t, "missing required key 'rule.syscalls' (an array of system-call names)");
    ok = false;
  }
  r.finish();
  if (!ok) return;
  for (const auto& [at, n] : names) {
    Disposition d;
    d.kind = Disposition::Kind::rule;
    d.rule = rule;
    d.origin = where(doc, *at);
    calls.add(diag, *at, n, d, "[[rule]]");
  }
}

void apply(Policy& p, const DocumentCalls& calls) {
  for (const auto& [name, e] : calls.calls) p.calls[name] = e.d;
}

Status parse_document(Policy& p, const PolicyDocument& d, int depth);

// A policy file (or a built-in policy): its base first, then its own settings and lists.
void read_policy_table(Policy& p, Diagnostics& diag, const TomlDocument& doc, int depth) {
  TableReader r(diag, doc.table);
  if (auto base = r.string("base")) {
    if (builtin_policy_text(*base).empty()) {
      diag.error(*doc.table.get("base"), str("'base' must be a built-in policy (\"default\", \"build\" or \"build-host\"), not ", quote(*base)));
    } else if (depth > 2) {
      diag.error(*doc.table.get("base"), "built-in policies are nested too deeply");
    } else if (auto st = parse_document(
                   p, {builtin_display_name(*base), std::string(builtin_policy_text(*base)), std::string(builtin_policy_sha256(*base)), false},
                   depth + 1);
               !st) {
      diag.error(*doc.table.get("base"), st.error().what());
    }
  }
  if (auto v = r.string("description")) p.description = *v;
  if (const auto* n = r.node("errno"))
    if (auto e = read_errno(diag, *n, "errno")) p.errno_value = *e;
  if (const auto* n = r.node("unknown_errno"))
    if (auto e = read_errno(diag, *n, "unknown_errno")) p.unknown_errno = *e;
  if (auto v = r.boolean("allow_user_namespaces")) p.allow_user_namespaces = *v;

  DocumentCalls calls;
  read_names(diag, r, "allow", [&](const toml::node& at, const std::string& n) {
    calls.add(diag, at, n, Disposition{Disposition::Kind::allow, std::nullopt, {}, where(doc, at)}, "allow");
  });
  read_names(diag, r, "deny", [&](const toml::node& at, const std::string& n) {
    calls.add(diag, at, n, Disposition{Disposition::Kind::deny, std::nullopt, {}, where(doc, at)}, "deny");
  });
  if (const toml::table* dw = r.table("deny_with")) {
    for (const auto& [k, v] : *dw) {
      const std::string key(k.str());
      if (auto e = read_errno(diag, v, str("deny_with.", key)))
        for (const auto& n : expand(diag, v, key, true))
          calls.add(diag, v, n, Disposition{Disposition::Kind::deny, *e, {}, where(doc, v)}, "deny_with");
    }
  }
  if (const toml::array* rules = r.table_array("rule"))
    for (const auto& item : *rules) read_rule(diag, doc, *item.as_table(), calls);
  r.finish();
  apply(p, calls);
}

// The site configuration's [seccomp] table: what it adds to the chosen policy. (`policy` chose
// that policy; the configuration loader checked it.)
void read_site_table(Policy& p, Diagnostics& diag, const TomlDocument& doc) {
  const toml::node* n = doc.table.get("seccomp");
  const toml::table* t = n ? n->as_table() : nullptr;
  if (!t) return;
  TableReader r(diag, *t, "seccomp");
  (void)r.node("policy");
  if (const auto* e = r.node("errno"))
    if (auto v = read_errno(diag, *e, "seccomp.errno")) p.errno_value = *v;
  if (auto v = r.boolean("allow_user_namespaces")) p.allow_user_namespaces = *v;
  DocumentCalls calls;
  read_names(diag, r, "allow", [&](const toml::node& at, const std::string& name) {
    calls.add(diag, at, name, Disposition{Disposition::Kind::allow, std::nullopt, {}, where(doc, at)}, "seccomp.allow");
  });
  read_names(diag, r, "deny", [&](const toml::node& at, const std::string& name) {
    calls.add(diag, at, name, Disposition{Disposition::Kind::deny, std::nullopt, {}, where(doc, at)}, "seccomp.deny");
  });
  r.finish();
  apply(p, calls);
}

Status parse_document(Policy& p, const PolicyDocument& d, int depth) {
  auto doc = TRY(parse_toml(d.text, d.name));
  Diagnostics diag(doc);
  if (d.site) read_site_table(p, diag, doc);
  else read_policy_table(p, diag, doc, depth);
  return diag.result();
}

}  // namespace

Result<Policy> parse_policy(const PolicySource& source) {
  Policy p;
  p.name = source.policy;
  for (const auto& d : source.documents) TRY(parse_document(p, d, 0));
  std::size_t values = 0;
  for (const auto& [name, d] : p.calls)
    if (d.kind == Disposition::Kind::rule) values += d.rule.values.size();
  if (values > k_max_policy_rule_values)
    return fail(Errc::parse, str("policy ", quote(p.name), ": its argument rules list ", values,
                                 " values in all (a rule's values count once for each call it names); at most ", k_max_policy_rule_values));
  // Nested runtimes (Apptainer, Podman) make namespaces and mount inside them.
  if (p.allow_user_namespaces) {
    const std::string origin = "allow_user_namespaces = true";
    std::vector<std::string> opened = {"clone", "unshare", "setns", "sethostname", "setdomainname"};
    for (auto m : find_group("@mount")->members) opened.emplace_back(m);
    for (const auto& n : opened)
      if (is_known_syscall(n)) p.calls[n] = Disposition{Disposition::Kind::allow, std::nullopt, {}, origin};
  }
  return p;
}

}  // namespace chrootctl::seccomp
