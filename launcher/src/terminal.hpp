#pragma once
// The job's pseudo-terminal, relayed to the caller's terminal by the launcher (terminal.cpp).

#include <poll.h>
#include <signal.h>
#include <termios.h>

#include <string>
#include <utility>
#include <vector>

#include "chrootctl/common/error.hpp"
#include "chrootctl/common/fd.hpp"

namespace chrootctl::launcher::detail {

class Terminal {
 public:
  /// A new pseudo-terminal pair with the modes and size of the caller's terminal `terminal`
  /// (one of the caller's standard streams). Input is read from `caller_in` (-1: the caller's
  /// standard input is not that terminal, and the job reads it directly); the job's output is
  /// copied to `caller_out`.
  static Result<Terminal> open(int terminal, int caller_in, int caller_out);
  Terminal(Terminal&& o) noexcept
      : m_terminal(o.m_terminal),
        m_caller_in(o.m_caller_in),
        m_caller_out(o.m_caller_out),
        m_master(std::move(o.m_master)),
        m_slave(std::move(o.m_slave)),
        m_saved(o.m_saved),
        m_raw(std::exchange(o.m_raw, false)),
        m_old_sigpipe(std::exchange(o.m_old_sigpipe, SIG_ERR)),
        m_input(std::move(o.m_input)),
        m_output(std::move(o.m_output)),
        m_caller_open(o.m_caller_open),
        m_caller_out_open(o.m_caller_out_open),
        m_master_open(o.m_master_open) {}
  Terminal& operator=(Terminal&&) = delete;
  Terminal(const Terminal&) = delete;
  ~Terminal();  // the caller's terminal gets its modes back

  /// The job's side, for its standard streams and as its controlling terminal.
  [[nodiscard]] int slave() const { return m_slave.get(); }
  void close_slave() { m_slave.reset(); }
  /// Raw mode on the caller's terminal, so that every key reaches the job's terminal, whose own
  /// modes decide (Ctrl-C, echo, line editing).
  Status make_caller_raw();
  /// The caller's window size onto the job's terminal (at the start and on SIGWINCH).
  void resize();
  /// What the supervision loop polls, and what it does with the descriptors that are ready.
  [[nodiscard]] std::vector<pollfd> poll_fds() const;
  void on_ready(const std::vector<pollfd>& fds);
  /// The job's last output, once it has ended.
  void drain();

 private:
  Terminal() = default;
  void write_input();
  void read_output();
  void write_output();

  int m_terminal = -1;
  int m_caller_in = -1;
  int m_caller_out = -1;
  Fd m_master;
  Fd m_slave;
  struct termios m_saved {};
  bool m_raw = false;
  sighandler_t m_old_sigpipe = SIG_ERR;  // restored by the destructor
  // Bytes read but not yet written, each way: one chunk at most, so that the supervision loop
  // gets back to its signals after every step whatever the job or the caller's terminal do.
  std::string m_input;
  std::string m_output;
  bool m_caller_open = true;
  bool m_caller_out_open = true;
  bool m_master_open = true;
};

}  // namespace chrootctl::launcher::detail
