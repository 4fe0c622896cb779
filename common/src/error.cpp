#include "chrootctl/common/error.hpp"

#include <cstring>

#include "chrootctl/common/sys.hpp"

namespace chrootctl {

std::string Error::what() const {
  std::string out;
  for (auto it = m_context.rbegin(); it != m_context.rend(); ++it) {
    out += *it;
    out += ": ";
  }
  out += m_message;
  return out;
}

tl::unexpected<Error> fail_errno(std::string call, int saved_errno) {
  std::string msg = std::move(call);
  msg += ": ";
  msg += sys::errno_message(saved_errno);
  Errc code = Errc::io;
  if (saved_errno == ENOENT) code = Errc::not_found;
  if (saved_errno == EEXIST) code = Errc::exists;
  if (saved_errno == EPERM || saved_errno == EACCES) code = Errc::permission;
  if (saved_errno == EWOULDBLOCK) code = Errc::busy;
  if (saved_errno == ENOSYS || saved_errno == EOPNOTSUPP) code = Errc::unsupported;
  return tl::unexpected<Error>(Error(code, std::move(msg), saved_errno));
}

tl::unexpected<Error> fail_errno(std::string call, int saved_errno, std::string_view advice) {
  auto e = fail_errno(std::move(call), saved_errno);
  std::string msg = e.value().message();
  msg += " (";
  msg += advice;
  msg += ")";
  return tl::unexpected<Error>(Error(e.value().code(), std::move(msg), saved_errno));
}

}  // namespace chrootctl
