#pragma once
/// A worker thread that starts at once on a CPU other than its creator's.
///
/// Linux tends to queue a new thread on the CPU of the thread that created it, which is busy
/// (the creator goes on working); an idle CPU pulls it over only at its next load balance,
/// up to one scheduler tick later (4 ms at HZ=250). For work that lasts a few milliseconds
/// (`manifest check --fast`) that is the whole of it. A Thread is created pinned to the other
/// CPUs its creator may use, so the kernel moves it to one before it first runs, and its first
/// act is to take back the creator's whole CPU set: it is pinned for no longer than it takes
/// to start. With one usable CPU it is an ordinary thread.

#include <pthread.h>

#include <functional>

namespace chrootctl {

class Thread {
 public:
  Thread() = default;
  /// Starts `fn`; throws std::system_error when no thread can be created (as std::thread).
  explicit Thread(std::function<void()> fn);
  Thread(const Thread&) = delete;
  Thread& operator=(const Thread&) = delete;
  Thread(Thread&& other) noexcept;
  Thread& operator=(Thread&& other) noexcept;
  /// Joins.
  ~Thread();

  [[nodiscard]] bool joinable() const { return m_started; }
  void join();

 private:
  pthread_t m_thread{};
  bool m_started = false;
};

}  // namespace chrootctl
