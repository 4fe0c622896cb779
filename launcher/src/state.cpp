// Launch records and id block claims: what a launch leaves while it runs (cleanup.cpp removes
// what dead launches left).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"
#include "chrootctl/launcher/cleanup.hpp"
#include "kernel.hpp"
#include "state.hpp"

namespace chrootctl::launcher {

namespace {
constexpr const char* k_record_magic = "chrootctl-launch 1";

// Creates `dir` (0755) if missing; refuses one that is a symlink, not a directory, not owned by
// us or writable by others: a record in a directory someone else controls could be forged to
// make cleanup remove a live job's cgroup.
Status ensure_private_dir(const std::string& dir) {
  auto existing = sys::lstat_path(dir);
  if (!existing) TRY(sys::mkdir_path(dir, 0755, true));
  auto st = existing ? *existing : TRY(sys::lstat_path(dir));
  if (!S_ISDIR(st.st_mode)) return fail(Errc::permission, str(dir, " is not a directory"));
  if (st.st_uid != ::geteuid()) return fail(Errc::permission, str(dir, " is owned by uid ", st.st_uid, ", not by uid ", ::geteuid()));
  if (st.st_mode & 022) return fail(Errc::permission, str(dir, " is writable by group or others (mode ", mode_octal(st.st_mode & 07777), ")"));
  return {};
}
}  // namespace

std::string default_state_dir() {
  if (const char* d = std::getenv("CHROOTCTL_STATE_DIR"); d && *d) return d;
  if (::geteuid() == 0) return "/run/chrootctl";
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x == '/') return str(x, "/chrootctl");
  return {};
}

std::optional<LaunchOwner> parse_launch_name(std::string_view name) {
  if (starts_with(name, "launcher.")) name.remove_prefix(9);
  const auto parts = split(name, '.');
  if (parts.size() != 3) return std::nullopt;
  auto pid = parse_u64(parts[0]);
  auto start = parse_u64(parts[1]);
  auto n = parse_u64(parts[2]);
  if (!pid || !start || !n || *pid == 0 || *pid > 0x3fffffff) return std::nullopt;
  return LaunchOwner{static_cast<pid_t>(*pid), *start};
}

std::string new_launch_name(std::uint64_t start_time) {
  static std::atomic<unsigned> counter{0};
  return str(::getpid(), ".", start_time, ".", counter++);
}

bool launch_is_live(const LaunchOwner& owner) {
  auto start = kernel::process_start_time(owner.pid);
  return start && *start == owner.start_time;
}

Result<StateRecord> StateRecord::create(const std::string& state_dir, const std::string& name, const std::vector<std::string>& cgroup_dirs,
                                        std::optional<std::uint32_t> id_block) {
  TRY(ensure_private_dir(state_dir));
  const std::string dir = state_dir + "/launches";
  TRY(ensure_private_dir(dir));
  std::string text = str(k_record_magic, "\n");
  for (const auto& d : cgroup_dirs) text += str("cgroup ", escape_bytes(d), "\n");
  if (id_block) text += str("idblock ", *id_block, "\n");
  const std::string path = dir + "/" + name;
  // /run is a tmpfs: no fsync. A torn record is still recognised by its name.
  Fd fd = TRY(sys::open_path(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644));
  TRY(with_context(sys::write_all(fd.get(), text), str("writing ", path)));
  return StateRecord(path);
}

StateRecord::~StateRecord() {
  if (!m_path.empty()) (void)sys::unlink_at(AT_FDCWD, m_path);
}

std::optional<RecordContents> parse_state_record(std::string_view text) {
  const auto lines = split(text, '\n');
  if (lines.empty() || lines[0] != k_record_magic) return std::nullopt;
  RecordContents r;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    if (starts_with(lines[i], "cgroup ")) {
      auto d = unescape_bytes(std::string_view(lines[i]).substr(7));
      if (d && !d->empty() && (*d)[0] == '/') r.cgroup_dirs.push_back(std::move(*d));
    } else if (starts_with(lines[i], "idblock ")) {
      if (auto n = parse_u64(std::string_view(lines[i]).substr(8)); n && *n <= 0xFFFFFFFFull) r.id_block = static_cast<std::uint32_t>(*n);
    }
  }
  return r;
}

// ---- id block claims ----

namespace {

// The launch a claim file names (nullopt if it names none).
std::optional<std::string> claim_owner(int dirfd, const std::string& file) {
  Fd fd = [&] {
    auto r = sys::open_at(dirfd, file, O_RDONLY | O_NOFOLLOW);
    return r ? std::move(*r) : Fd();
  }();
  if (!fd) return std::nullopt;
  char buf[64];
  const ssize_t n = sys::retry_eintr([&] { return ::read(fd.get(), buf, sizeof buf); });
  if (n <= 0) return std::nullopt;
  std::string name(buf, static_cast<std::size_t>(n));
  if (!parse_launch_name(name)) return std::nullopt;
  return name;
}

}  // namespace

namespace detail {

bool claim_is_stale(int dirfd, const std::string& file, const std::string& state_dir, bool (*is_live)(const LaunchOwner&)) {
  const auto owner_name = claim_owner(dirfd, file);
  if (!owner_name) return true;  // torn or foreign: the launch died while writing it
  const auto owner = parse_launch_name(*owner_name);
  if (is_live(*owner)) return false;
  return state_dir.empty() || !sys::lstat_path(str(state_dir, "/launches/", *owner_name));
}

Result<LockedClaims> lock_claims(const std::string& dir) {
  LockedClaims c;
  c.dir = TRY(sys::open_path(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  c.lock = TRY(sys::open_at(c.dir.get(), ".lock", O_RDWR | O_CREAT | O_NOFOLLOW, 0600));
  if (sys::retry_eintr([&] { return ::flock(c.lock.get(), LOCK_EX); }) != 0) return fail_errno(str("flock(", quote(dir + "/.lock"), ")"), errno);
  return c;
}

bool remove_claim_of(const LockedClaims& c, const std::string& file, const std::string& name) {
  return claim_owner(c.dir.get(), file) == name && sys::unlink_at(c.dir.get(), file).has_value();
}

std::vector<std::pair<std::uint32_t, std::string>> claimed_bases(const std::vector<sys::DirEntry>& entries) {
  std::vector<std::pair<std::uint32_t, std::string>> out;
  for (const auto& e : entries)
    if (auto n = parse_u64(e.name); n && *n <= 0xFFFFFFFFull && std::to_string(*n) == e.name)
      out.emplace_back(static_cast<std::uint32_t>(*n), e.name);
  return out;
}

}  // namespace detail

std::string id_claims_dir(const std::string& state_dir) {
  // Id blocks are the machine's: every root launch claims from one directory, whatever state
  // directory (or configuration) it was given, so no two can hold overlapping ids.
  if (::geteuid() == 0) return "/run/chrootctl/idblocks";
  return state_dir.empty() ? std::string() : state_dir + "/idblocks";
}

Result<IdBlockClaim> IdBlockClaim::claim(const std::string& claims_dir, const std::string& state_dir, const IdRange& range, const std::string& name) {
  TRY(check_id_range(range));
  const std::string parent = claims_dir.substr(0, claims_dir.find_last_of('/'));
  TRY(ensure_private_dir(parent));
  TRY(ensure_private_dir(claims_dir));
  detail::LockedClaims c = TRY(detail::lock_claims(claims_dir));
  auto taken = detail::claimed_bases(TRY(sys::read_dir(c.dir.get(), false)));
  // Blocks are compared as host ids, not as positions in a range: a launch whose range starts
  // elsewhere (another configuration) never gets ids another running launch holds.
  auto first_free = [&]() -> std::optional<std::uint32_t> {
    for (std::uint64_t base = range.start; base + k_id_block_size <= std::uint64_t{range.start} + range.count; base += k_id_block_size) {
      const bool overlaps = std::any_of(taken.begin(), taken.end(), [&](const auto& t) {
        return t.first < base + k_id_block_size && base < std::uint64_t{t.first} + k_id_block_size;
      });
      if (!overlaps) return static_cast<std::uint32_t>(base);
    }
    return std::nullopt;
  };
  auto base = first_free();
  if (!base) {
    // Every block is taken: free those of launches that are gone, then look again.
    std::erase_if(taken, [&](const auto& t) {
      return detail::claim_is_stale(c.dir.get(), t.second, state_dir, launch_is_live) && sys::unlink_at(c.dir.get(), t.second).has_value();
    });
    base = first_free();
    if (!base)
      return fail(Errc::busy, str("all ", range.count / k_id_block_size, " id blocks of the job id range (", range.start, "+", range.count,
                                  ") are held by running jobs; enlarge job_ids in the configuration"));
  }
  const std::string file = std::to_string(*base);
  Fd fd = TRY(sys::open_at(c.dir.get(), file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644));
  if (auto w = sys::write_all(fd.get(), name); !w) {
    (void)sys::unlink_at(c.dir.get(), file);
    return fail(std::move(w.error()));
  }
  return IdBlockClaim(claims_dir, name, *base);
}

IdBlockClaim::~IdBlockClaim() {
  if (m_dir.empty()) return;
  if (auto c = detail::lock_claims(m_dir)) (void)detail::remove_claim_of(*c, std::to_string(m_base), m_name);
}

}  // namespace chrootctl::launcher
