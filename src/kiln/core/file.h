// Files: read-only memory maps, whole-file reads, atomic writes, the user's data directory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "kiln/core/status.h"

namespace kiln {

// A read-only mmap of a whole file. Movable, not copyable; unmaps on destruction.
class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  // Maps every page of the file now (MADV_POPULATE_READ), for a caller about to read all of it:
  // one call instead of a page fault per 4 KiB. A hint; older kernels ignore it.
  void populate() const;

 private:
  MappedFile() = default;
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

Result<std::string> read_file(const std::filesystem::path& path);
// Writes to a temporary file beside `path`, then renames it over `path`.
Status write_file_atomic(const std::filesystem::path& path, std::string_view contents);
// $KILN_HOME, else $XDG_DATA_HOME/kiln, else ~/.local/share/kiln.
std::filesystem::path user_data_dir();

}  // namespace kiln
