#include "chrootctl/common/progress.hpp"

#include <unistd.h>

#include <cstdio>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl {

namespace {
constexpr std::int64_t k_tty_interval_ns = 100'000'000;      // 10 redraws a second
constexpr std::int64_t k_plain_interval_ns = 5'000'000'000;  // one log line every 5 s
}  // namespace

// The label and status quote input (file names, a build tool's output): terminal-safe, and a
// status is one line.
ProgressLine::ProgressLine(std::string label, bool quiet) : m_label(terminal_safe(label)), m_quiet(quiet), m_tty(::isatty(STDERR_FILENO) == 1) {
  m_last = sys::monotonic_ns();
}

ProgressLine::~ProgressLine() {
  if (m_open && m_tty) std::fputs("\r\033[K", stderr);
}

void ProgressLine::update(const std::string& status) {
  if (m_quiet) return;
  const auto now = sys::monotonic_ns();
  if (now - m_last < (m_tty ? k_tty_interval_ns : k_plain_interval_ns)) return;
  m_last = now;
  if (m_tty) {
    std::fprintf(stderr, "\r\033[K%s: %s", m_label.c_str(), terminal_safe(status).c_str());
    m_open = true;
  } else {
    std::fprintf(stderr, "%s: %s\n", m_label.c_str(), terminal_safe(status).c_str());
  }
  std::fflush(stderr);
}

void ProgressLine::done(const std::string& status) {
  if (m_quiet) return;
  if (m_tty && m_open) std::fputs("\r\033[K", stderr);
  m_open = false;
  std::fprintf(stderr, "%s: %s\n", m_label.c_str(), terminal_safe(status).c_str());
  std::fflush(stderr);
}

}  // namespace chrootctl
