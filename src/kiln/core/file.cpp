#include "kiln/core/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "kiln/core/str.h"

namespace kiln {

Result<std::unique_ptr<MappedFile>> MappedFile::open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status(errno == ENOENT ? StatusCode::kNotFound : StatusCode::kFailedPrecondition,
                  str_cat(path.string(), ": cannot open: ", std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Status(StatusCode::kFailedPrecondition, str_cat(path.string(), ": cannot stat: ", std::strerror(e)));
  }
  std::unique_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return Status(StatusCode::kResourceExhausted, str_cat(path.string(), ": cannot mmap: ", std::strerror(e)));
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

void MappedFile::populate() const {
#ifdef MADV_POPULATE_READ
  if (data_ != nullptr) (void)::madvise(const_cast<uint8_t*>(data_), size_, MADV_POPULATE_READ);
#endif
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    bool exists = std::filesystem::exists(path, ec);
    return Status(exists ? StatusCode::kFailedPrecondition : StatusCode::kNotFound,
                  str_cat(path.string(), exists ? ": cannot read" : ": no such file"));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status write_file_atomic(const std::filesystem::path& path, std::string_view contents) {
  std::filesystem::path tmp = path;
  tmp += str_cat(".tmp.", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status(StatusCode::kFailedPrecondition, str_cat(tmp.string(), ": cannot create"));
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    if (!out) return Status(StatusCode::kResourceExhausted, str_cat(tmp.string(), ": write failed"));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status(StatusCode::kFailedPrecondition, str_cat(path.string(), ": rename failed: ", ec.message()));
  return Status::ok();
}

std::filesystem::path user_data_dir() {
  if (const char* k = std::getenv("KILN_HOME"); k != nullptr && *k) return k;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x != nullptr && *x) return std::filesystem::path(x) / "kiln";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr && *home ? home : "/tmp") / ".local" / "share" / "kiln";
}

}  // namespace kiln
