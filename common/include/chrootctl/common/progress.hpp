#pragma once
/// Progress for long work: a line redrawn in place on a terminal, plain lines at a slow pace
/// otherwise (logs stay readable), nothing when quiet. Writes to stderr.

#include <cstdint>
#include <string>

namespace chrootctl {

class ProgressLine {
 public:
  /// `label` starts every line ("hashing /srv/images/debian12").
  explicit ProgressLine(std::string label, bool quiet = false);
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  /// Shows `status` if enough time has passed since the last line.
  void update(const std::string& status);
  /// Ends the display with a final status line.
  void done(const std::string& status);

 private:
  std::string m_label;
  bool m_quiet;
  bool m_tty;
  bool m_open = false;
  std::int64_t m_last = 0;
};

}  // namespace chrootctl
