#include "chrootctl/common/thread.hpp"

#include <sched.h>

#include <cerrno>
#include <memory>
#include <system_error>
#include <utility>

namespace chrootctl {

namespace {

struct Start {
  std::function<void()> fn;
  cpu_set_t all;
  bool restore = false;
};

void* run(void* arg) {
  std::unique_ptr<Start> s(static_cast<Start*>(arg));
  if (s->restore) ::pthread_setaffinity_np(::pthread_self(), sizeof s->all, &s->all);
  s->fn();
  return nullptr;
}

}  // namespace

Thread::Thread(std::function<void()> fn) {
  auto s = std::make_unique<Start>();
  s->fn = std::move(fn);
  cpu_set_t others;
  CPU_ZERO(&others);
  const int here = ::sched_getcpu();
  if (here >= 0 && ::sched_getaffinity(0, sizeof s->all, &s->all) == 0 && CPU_ISSET(here, &s->all)) {
    others = s->all;
    CPU_CLR(here, &others);
  }
  int rc = EINVAL;
  if (CPU_COUNT(&others) > 0) {
    pthread_attr_t attr;
    if (::pthread_attr_init(&attr) == 0) {
      if (::pthread_attr_setaffinity_np(&attr, sizeof others, &others) == 0) {
        s->restore = true;
        rc = ::pthread_create(&m_thread, &attr, run, s.get());
      }
      ::pthread_attr_destroy(&attr);
    }
  }
  if (rc != 0) {  // one usable CPU, or the pinned start refused: an ordinary thread
    s->restore = false;
    rc = ::pthread_create(&m_thread, nullptr, run, s.get());
  }
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_create");
  s.release();  // the thread owns it now
  m_started = true;
}

Thread::Thread(Thread&& other) noexcept : m_thread(other.m_thread), m_started(std::exchange(other.m_started, false)) {}

Thread& Thread::operator=(Thread&& other) noexcept {
  if (this != &other) {
    join();
    m_thread = other.m_thread;
    m_started = std::exchange(other.m_started, false);
  }
  return *this;
}

Thread::~Thread() { join(); }

void Thread::join() {
  if (!m_started) return;
  ::pthread_join(m_thread, nullptr);
  m_started = false;
}

}  // namespace chrootctl
