#pragma once
/// Error handling for all of chrootctl: `Result<T>` over tl::expected, an `Error` carrying a code,
/// the saved errno, a message and context frames that callers add on the way up.

#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

namespace chrootctl {

/// Broad classes of failure. Callers branch on these; the message is for humans.
enum class Errc {
  invalid_argument,  ///< bad command line or API input
  not_found,         ///< a named thing does not exist
  exists,            ///< refusing to overwrite
  parse,             ///< malformed file contents (has file:line:col in the message)
  io,                ///< a system call failed (errno saved)
  permission,        ///< refused for safety or by the kernel
  mismatch,          ///< content differs from what was recorded
  busy,              ///< locked by someone else
  unsupported,       ///< not available on this system
  internal,          ///< a bug
};

/// A failure with its cause. `message` says what went wrong; `context` frames, outermost first
/// once rendered, say what we were doing ("while building debian12").
class Error {
 public:
  Error() = default;
  Error(Errc code, std::string message, int saved_errno = 0) : m_code(code), m_errno(saved_errno), m_message(std::move(message)) {}

  [[nodiscard]] Errc code() const { return m_code; }
  [[nodiscard]] int sys_errno() const { return m_errno; }
  [[nodiscard]] const std::string& message() const { return m_message; }
  [[nodiscard]] const std::vector<std::string>& context() const { return m_context; }

  /// Adds a frame describing what the caller was doing. Returns *this for chaining.
  Error& add_context(std::string frame) & {
    m_context.push_back(std::move(frame));
    return *this;
  }
  Error&& add_context(std::string frame) && {
    m_context.push_back(std::move(frame));
    return std::move(*this);
  }

  /// "outer context: inner context: message[: strerror]"
  [[nodiscard]] std::string what() const;

 private:
  Errc m_code = Errc::internal;
  int m_errno = 0;
  std::string m_message;
  std::vector<std::string> m_context;  // innermost first, as added
};

template <class T>
using Result = tl::expected<T, Error>;
using Status = Result<void>;

inline tl::unexpected<Error> fail(Errc code, std::string message) { return tl::unexpected<Error>(Error(code, std::move(message))); }
/// A failure from a system call: `call` names it with its arguments; errno is saved.
tl::unexpected<Error> fail_errno(std::string call, int saved_errno);
/// Like fail_errno, with advice appended in parentheses.
tl::unexpected<Error> fail_errno(std::string call, int saved_errno, std::string_view advice);

inline tl::unexpected<Error> fail(Error e) { return tl::unexpected<Error>(std::move(e)); }

/// Adds context to the error of a Result, if any, and passes the Result on.
template <class T>
Result<T> with_context(Result<T>&& r, std::string frame) {
  if (!r) r.error().add_context(std::move(frame));
  return std::move(r);
}
/// Same, with the frame built only on failure (for hot paths): with_context(r, [&] { return ...; }).
template <class T, class F>
requires std::is_invocable_r_v<std::string, F> Result<T> with_context(Result<T>&& r, F&& make_frame) {
  if (!r) r.error().add_context(make_frame());
  return std::move(r);
}

namespace detail {
template <class T>
T take_value(tl::expected<T, Error>&& r) {
  return std::move(*r);
}
inline void take_value(tl::expected<void, Error>&&) {}
}  // namespace detail

}  // namespace chrootctl

/// Evaluates a Result expression; on error returns it from the enclosing function, otherwise
/// yields the value. Works for Result<void> too (yields void).
/// Use it as a statement or a whole initializer (`auto x = TRY(...)`), never inside a braced
/// list after other members (`{name, TRY(...)}`): clang (14) skips the destructors of the members
/// already built when the error return leaves the statement expression, which LeakSanitizer
/// reports as a leak.
#define CHROOTCTL_TRY(...)                                                               \
  __extension__({                                                                        \
    auto&& chrootctl_try_r_ = (__VA_ARGS__);                                             \
    if (!chrootctl_try_r_) return ::tl::unexpected(std::move(chrootctl_try_r_).error()); \
    ::chrootctl::detail::take_value(std::move(chrootctl_try_r_));                        \
  })
#define TRY CHROOTCTL_TRY
