#include "chrootctl/common/sha256.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <new>
#include <vector>

#include "chrootctl/common/strings.hpp"
#include "chrootctl/common/sys.hpp"

namespace chrootctl {

struct Sha256::Ctx {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
};

namespace {
const EVP_MD* sha256_md() {
  // Fetch once: EVP_MD_fetch looks up the provider, which is not free per file.
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md ? md : EVP_sha256();
}
}  // namespace

Sha256::Sha256() : m_ctx(std::make_unique<Ctx>()) {
  if (!m_ctx->md || EVP_DigestInit_ex(m_ctx->md.get(), sha256_md(), nullptr) != 1) throw std::bad_alloc();
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, std::size_t n) { EVP_DigestUpdate(m_ctx->md.get(), data, n); }

std::array<unsigned char, 32> Sha256::raw_final() {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(m_ctx->md.get(), out.data(), &len);
  EVP_DigestInit_ex(m_ctx->md.get(), sha256_md(), nullptr);
  return out;
}

std::string Sha256::hex_final() {
  const auto raw = raw_final();
  return to_hex(raw.data(), raw.size());
}

std::string Sha256::hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.hex_final();
}

Result<FileHash> sha256_fd(int fd, const std::string& label, bool may_be_sparse, std::uint64_t expected_size) {
  constexpr std::size_t k_buf = 128 * 1024;
  thread_local std::vector<unsigned char> buf(k_buf);
  static const std::vector<unsigned char> zeros(k_buf, 0);
  Sha256 h;
  auto hash_zeros = [&](off_t count) {
    while (count > 0) {
      const auto n = static_cast<std::size_t>(std::min<off_t>(count, static_cast<off_t>(k_buf)));
      h.update(zeros.data(), n);
      count -= static_cast<off_t>(n);
    }
  };
  // Reads [pos, end) (end < 0: to EOF); returns the new position.
  auto read_span = [&](off_t pos, off_t end) -> Result<off_t> {
    while (end < 0 || pos < end) {
      std::size_t want = buf.size();
      if (end >= 0) want = static_cast<std::size_t>(std::min<off_t>(end - pos, static_cast<off_t>(want)));
      const ssize_t n = sys::retry_eintr([&] { return ::pread(fd, buf.data(), want, pos); });
      if (n < 0) return fail_errno(str("read(", label, ")"), errno);
      if (n == 0) break;
      h.update(buf.data(), static_cast<std::size_t>(n));
      pos += n;
      // A short read at or past the size fstat gave is end of file: save the read that would
      // return 0 (one system call per file adds up over a tree).
      if (static_cast<std::size_t>(n) < want && static_cast<std::uint64_t>(pos) >= expected_size) break;
    }
    return pos;
  };

  FileHash out;
  off_t pos = 0;
  if (may_be_sparse) {
    // Walk data extents with SEEK_DATA/SEEK_HOLE and hash holes as the zeros they read as.
    while (true) {
      const off_t data = ::lseek(fd, pos, SEEK_DATA);
      if (data < 0) {
        if (errno == ENXIO) {  // only a hole (or nothing) remains
          const off_t end = ::lseek(fd, 0, SEEK_END);
          if (end < 0) return fail_errno(str("lseek(", label, ", SEEK_END)"), errno);
          hash_zeros(end - pos);
          pos = std::max(pos, end);
          break;
        }
        if (errno != EINVAL && errno != EOPNOTSUPP) return fail_errno(str("lseek(", label, ", SEEK_DATA)"), errno);
        pos = TRY(read_span(pos, -1));  // no SEEK_DATA on this filesystem
        break;
      }
      const off_t hole = ::lseek(fd, data, SEEK_HOLE);
      if (hole < 0) return fail_errno(str("lseek(", label, ", SEEK_HOLE)"), errno);
      hash_zeros(data - pos);
      pos = TRY(read_span(data, hole));
      if (pos < hole) break;  // file shrank under us; what we read is what we hash
    }
  } else {
    pos = TRY(read_span(0, -1));
  }
  out.size = static_cast<std::uint64_t>(pos);
  out.hex = h.hex_final();
  return out;
}

Result<FileHash> sha256_file(const std::string& path) {
  auto fd = TRY(sys::open_path(path, O_RDONLY | O_NOCTTY));
  return with_context(sha256_fd(fd.get(), quote(path), false, UINT64_MAX), str("hashing ", path));
}

}  // namespace chrootctl
