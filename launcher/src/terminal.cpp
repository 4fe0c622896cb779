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

Result<Terminal> Terminal::open(int caller_in, int caller_out) {
  Terminal t;
  t.m_caller_in = caller_in;
  t.m_caller_out = caller_out;
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return fail_errno("posix_openpt(O_RDWR|O_NOCTTY)", errno);
  t.m_master = Fd(master);
  if (::grantpt(master) != 0) return fail_errno("grantpt", errno);
  if (::unlockpt(master) != 0) return fail_errno("unlockpt", errno);
  char name[128];
  if (const int err = ::ptsname_r(master, name, sizeof name); err != 0) return fail_errno("ptsname_r", err);
  t.m_slave = TRY(sys::open_path(name, O_RDWR | O_NOCTTY));
  // The job's terminal starts as the caller's is: same modes, same size.
  if (::tcgetattr(caller_in, &t.m_saved) != 0) return fail_errno("tcgetattr(the caller's terminal)", errno);
  if (::tcsetattr(t.m_slave.get(), TCSANOW, &t.m_saved) != 0) return fail_errno(str("tcsetattr(", quote(name), ")"), errno);
  t.resize();
  // Input from the caller is written without blocking: a job that does not read must not stop
  // the relay of its output.
  const int flags = ::fcntl(master, F_GETFL);
  if (flags < 0 || ::fcntl(master, F_SETFL, flags | O_NONBLOCK) != 0) return fail_errno("fcntl(O_NONBLOCK)", errno);
  return t;
}

Terminal::~Terminal() {
  if (m_raw) (void)::tcsetattr(m_caller_in, TCSADRAIN, &m_saved);
}

Status Terminal::make_caller_raw() {
  struct termios raw = m_saved;
  ::cfmakeraw(&raw);
  if (::tcsetattr(m_caller_in, TCSADRAIN, &raw) != 0) return fail_errno("tcsetattr(the caller's terminal, raw)", errno);
  m_raw = true;
  return {};
}

void Terminal::resize() {
  struct winsize ws {};
  if (::ioctl(m_caller_in, TIOCGWINSZ, &ws) == 0) (void)::ioctl(m_master.get(), TIOCSWINSZ, &ws);
}

std::vector<pollfd> Terminal::poll_fds() const {
  std::vector<pollfd> out;
  if (m_pending.empty() && m_caller_open) out.push_back({m_caller_in, POLLIN, 0});
  short master_events = POLLIN;
  if (!m_pending.empty()) master_events |= POLLOUT;
  if (m_master_open) out.push_back({m_master.get(), master_events, 0});
  return out;
}

void Terminal::on_ready(const std::vector<pollfd>& fds) {
  char buf[4096];
  for (const auto& p : fds) {
    if (!p.revents) continue;
    if (p.fd == m_caller_in) {
      const ssize_t n = sys::retry_eintr([&] { return ::read(m_caller_in, buf, sizeof buf); });
      if (n <= 0) m_caller_open = false;
      else m_pending.append(buf, static_cast<std::size_t>(n));
    } else if (p.fd == m_master.get()) {
      if (p.revents & POLLOUT) flush_input();
      if (p.revents & (POLLIN | POLLHUP | POLLERR)) copy_output();
    }
  }
}

void Terminal::flush_input() {
  while (!m_pending.empty()) {
    const ssize_t n = sys::retry_eintr([&] { return ::write(m_master.get(), m_pending.data(), m_pending.size()); });
    if (n <= 0) {
      if (n < 0 && errno == EAGAIN) return;
      m_pending.clear();  // the job's side is gone
      return;
    }
    m_pending.erase(0, static_cast<std::size_t>(n));
  }
}

void Terminal::copy_output() {
  char buf[4096];
  while (m_master_open) {
    const ssize_t n = sys::retry_eintr([&] { return ::read(m_master.get(), buf, sizeof buf); });
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {  // EIO: every descriptor of the job's terminal is closed
      m_master_open = false;
      return;
    }
    (void)sys::write_all(m_caller_out, std::string_view(buf, static_cast<std::size_t>(n)));
  }
}

void Terminal::drain() { copy_output(); }

}  // namespace chrootctl::launcher::detail
