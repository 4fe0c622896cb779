// The caller's terminal and the job's pseudo-terminal. A job whose standard input is the
// caller's terminal gets a terminal of its own instead (as `systemd-run --pty` and `docker run
// -t` do): the launcher relays bytes between the two, the caller's terminal is in raw mode for
// as long as the job runs and gets its settings back afterwards, and whatever the job does to
// its terminal (its modes, TIOCSTI, its foreground process group) stays on that terminal.
#include "terminal.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl::launcher::detail {

Result<Terminal> Terminal::open(int terminal, int caller_in, int caller_out) {
  Terminal t;
  t.m_terminal = terminal;
  t.m_caller_in = caller_in;
  t.m_caller_out = caller_out;
  t.m_caller_open = caller_in >= 0;
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return fail_errno("posix_openpt(O_RDWR|O_NOCTTY)", errno);
  t.m_master = Fd(master);
  if (::grantpt(master) != 0) return fail_errno("grantpt", errno);
  if (::unlockpt(master) != 0) return fail_errno("unlockpt", errno);
  char name[128];
  if (const int err = ::ptsname_r(master, name, sizeof name); err != 0) return fail_errno("ptsname_r", err);
  t.m_slave = TRY(sys::open_path(name, O_RDWR | O_NOCTTY));
  // The job's terminal starts as the caller's is: same modes, same size.
  if (::tcgetattr(terminal, &t.m_saved) != 0) return fail_errno("tcgetattr(the caller's terminal)", errno);
  if (::tcsetattr(t.m_slave.get(), TCSANOW, &t.m_saved) != 0) return fail_errno(str("tcsetattr(", quote(name), ")"), errno);
  t.resize();
  // The relay never blocks on the job's side: a job that does not read must not stop it.
  const int flags = ::fcntl(master, F_GETFL);
  if (flags < 0 || ::fcntl(master, F_SETFL, flags | O_NONBLOCK) != 0) return fail_errno("fcntl(O_NONBLOCK)", errno);
  // A caller's output that is a closed pipe ends the relay with EPIPE, not the launcher.
  t.m_old_sigpipe = ::signal(SIGPIPE, SIG_IGN);
  return t;
}

Terminal::~Terminal() {
  if (m_raw) (void)::tcsetattr(m_terminal, TCSADRAIN, &m_saved);
  if (m_old_sigpipe != SIG_ERR) (void)::signal(SIGPIPE, m_old_sigpipe);
}

Status Terminal::make_caller_raw() {
  struct termios raw = m_saved;
  ::cfmakeraw(&raw);
  if (::tcsetattr(m_terminal, TCSADRAIN, &raw) != 0) return fail_errno("tcsetattr(the caller's terminal, raw)", errno);
  m_raw = true;
  return {};
}

void Terminal::resize() {
  struct winsize ws {};
  if (::ioctl(m_terminal, TIOCGWINSZ, &ws) == 0) (void)::ioctl(m_master.get(), TIOCSWINSZ, &ws);
}

std::vector<pollfd> Terminal::poll_fds() const {
  std::vector<pollfd> out;
  if (m_input.empty() && m_caller_open) out.push_back({m_caller_in, POLLIN, 0});
  if (!m_output.empty() && m_caller_out_open) out.push_back({m_caller_out, POLLOUT, 0});
  short master_events = 0;
  if (!m_input.empty()) master_events |= POLLOUT;
  if (m_output.empty()) master_events |= POLLIN;
  if (m_master_open && master_events) out.push_back({m_master.get(), master_events, 0});
  return out;
}

void Terminal::on_ready(const std::vector<pollfd>& fds) {
  for (const auto& p : fds) {
    if (!p.revents) continue;
    if (p.fd == m_caller_in && m_caller_open) {
      char buf[4096];
      const ssize_t n = sys::retry_eintr([&] { return ::read(m_caller_in, buf, sizeof buf); });
      if (n <= 0) m_caller_open = false;
      else m_input.assign(buf, static_cast<std::size_t>(n));
    } else if (p.fd == m_caller_out) {
      write_output();
    } else if (p.fd == m_master.get()) {
      if (p.revents & POLLOUT) write_input();
      if (p.revents & (POLLIN | POLLHUP | POLLERR)) read_output();
    }
  }
}

void Terminal::write_input() {
  const ssize_t n = sys::retry_eintr([&] { return ::write(m_master.get(), m_input.data(), m_input.size()); });
  if (n > 0) m_input.erase(0, static_cast<std::size_t>(n));
  else if (!(n < 0 && errno == EAGAIN)) m_input.clear();  // the job's side is gone
}

void Terminal::read_output() {
  if (!m_output.empty()) return;
  char buf[4096];
  const ssize_t n = sys::retry_eintr([&] { return ::read(m_master.get(), buf, sizeof buf); });
  if (n < 0 && errno == EAGAIN) return;
  if (n <= 0) {  // EIO: every descriptor of the job's terminal is closed
    m_master_open = false;
    return;
  }
  m_output.assign(buf, static_cast<std::size_t>(n));
  if (!m_caller_out_open) m_output.clear();  // nowhere to go: read and dropped, so the job never blocks
}

void Terminal::write_output() {
  // One write of at most a chunk, after poll said there is room: the caller's terminal is not
  // made non-blocking (that flag would be the caller's shell's too).
  const ssize_t n = sys::retry_eintr([&] { return ::write(m_caller_out, m_output.data(), m_output.size()); });
  if (n > 0) {
    m_output.erase(0, static_cast<std::size_t>(n));
  } else {
    m_caller_out_open = false;  // EIO (hung up) or EPIPE: the caller's side is gone
    m_output.clear();
  }
}

void Terminal::drain() {
  // The job has ended: what is left in its terminal goes out, as long as the caller takes it.
  while (m_master_open && m_caller_out_open) {
    if (m_output.empty()) read_output();
    if (m_output.empty()) return;
    struct pollfd p {
      m_caller_out, POLLOUT, 0
    };
    if (::poll(&p, 1, 1000) <= 0) return;
    write_output();
  }
}

}  // namespace chrootctl::launcher::detail
