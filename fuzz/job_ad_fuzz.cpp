// The HTCondor job-ad reader (catalogue/src/condor.cpp): find_request_in_ad, which the job
// wrapper runs on $_CONDOR_JOB_AD and which must fail closed, and the other readers of HTCondor
// text: submit files (find_request) and NAMED_CHROOT configurations.
#include <string>

#include "chrootctl/catalogue/condor.hpp"
#include "chrootctl/common/strings.hpp"
#include "fuzz.hpp"

namespace {

using namespace chrootctl;

// The contract's test for a line that must not be ignored: the letters of RequestedChroot, in
// any case, in order, whatever lies between them (condor.hpp). Written here independently.
bool mentions_requested_chroot(std::string_view line) {
  std::string letters;
  for (unsigned char c : line) {
    if (c >= 'A' && c <= 'Z') letters.push_back(static_cast<char>(c - 'A' + 'a'));
    else if (c >= 'a' && c <= 'z') letters.push_back(static_cast<char>(c));
  }
  return letters.find("requestedchroot") != std::string::npos;
}

// Whether `line` assigns an attribute other than RequestedChroot: an identifier, then '='.
bool assigns_another_attribute(std::string_view line) {
  const auto eq = line.find('=');
  if (eq == std::string_view::npos) return false;
  const auto name = trim(line.substr(0, eq));
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (unsigned char c : name)
    if (!(c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
  std::string lower;
  for (unsigned char c : name) lower.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
  return lower != "requestedchroot";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::text_of(data, size);

  const auto ad = catalogue::find_request_in_ad(text);
  if (!ad.present) {
    // Fail closed: "present is false only when no line mentions RequestedChroot except in the
    // value of another attribute" (blank and '#' comment lines aside).
    Lines lines(text);
    std::string_view line;
    unsigned number = 0;
    while (lines.next(line, number)) {
      const auto t = trim(line);
      if (t.empty() || t[0] == '#') continue;
      fuzz::require(!mentions_requested_chroot(t) || assigns_another_attribute(t),
                    "a job ad that mentions RequestedChroot outside another attribute's value is never read as no request");
    }
  } else if (ad.problem.empty()) {
    fuzz::require(!ad.name.empty(), "a request without a problem names a root");
  }

  const auto submit = catalogue::find_request(text);
  if (submit.present && submit.problem.empty()) fuzz::require(!submit.name.empty(), "a submit request without a problem names a root");

  const auto setting = catalogue::find_named_chroot(text, "fuzz");
  const auto value = catalogue::parse_named_chroot(setting.found ? std::string_view(setting.value) : text);
  for (const auto& n : value.entries) fuzz::require(!n.name.empty() && !n.path.empty(), "NAMED_CHROOT entries have a name and a path");
  return 0;
}
