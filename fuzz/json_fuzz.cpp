// The JSON reader (common/src/json.cpp): OCI image metadata from a tarball the builder unpacks
// as root (parse_json), and the one-line records the Slurm plugin and `log` read back
// (parse_flat_json_object). What the flat reader accepts, the full reader accepts the same way.
#include <string>

#include "chrootctl/common/json.hpp"
#include "fuzz.hpp"

namespace {

using namespace chrootctl;

// Every string read back is valid UTF-8 and never longer than the input.
void check(const JsonValue& v, std::size_t limit, int depth) {
  fuzz::require(depth <= 64, "nesting deeper than the reader's limit");
  fuzz::require(v.text.size() <= limit, "a value longer than the input");
  for (const auto& item : v.items) check(item, limit, depth + 1);
  for (const auto& m : v.members) {
    fuzz::require(m.key.size() <= limit, "a key longer than the input");
    check(m.value, limit, depth + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::text_of(data, size);
  auto doc = parse_json(text, "fuzz input");
  if (doc) check(*doc, text.size(), 0);
  if (auto flat = parse_flat_json_object(text, "fuzz input")) {
    fuzz::require(doc.has_value(), "the flat reader accepted what the full reader refused");
    fuzz::require(doc->kind == JsonValue::Kind::object && doc->members.size() == flat->size(), "the two readers disagree on the members");
    for (std::size_t i = 0; i < flat->size(); ++i) {
      fuzz::require((*flat)[i].first == doc->members[i].key, "the two readers disagree on a key");
      fuzz::require((*flat)[i].second.text == doc->members[i].value.text, "the two readers disagree on a value");
    }
  }
  return 0;
}
