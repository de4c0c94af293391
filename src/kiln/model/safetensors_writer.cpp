#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <numeric>
#include <set>

#include <nlohmann/json.hpp>

#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/model/checkpoint.h"

namespace kiln::model {
namespace {

Status write_all(int fd, const uint8_t* p, size_t n, const std::string& fname) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      return resource_exhausted(str_cat(fname, ": write failed: ", std::strerror(errno)));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::ok();
}

// Closes and removes the partial file unless released.
class TempFile {
 public:
  TempFile(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!released_) {
      std::error_code ec;
      std::filesystem::remove(path_, ec);
    }
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  int fd() const { return fd_; }
  Status close_and_rename(const std::filesystem::path& to) {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return resource_exhausted(str_cat(path_.string(), ": close failed: ", std::strerror(errno)));
    std::error_code ec;
    std::filesystem::rename(path_, to, ec);
    if (ec) return failed_precondition(str_cat(to.string(), ": rename failed: ", ec.message()));
    released_ = true;
    return Status::ok();
  }

 private:
  int fd_;
  std::filesystem::path path_;
  bool released_ = false;
};

}  // namespace

uint64_t TensorSpec::nbytes() const {
  uint64_t n = dtype_size(dtype);
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

Status write_safetensors(const std::filesystem::path& file, const std::vector<TensorSpec>& tensors,
                         const TensorFill& fill, const std::map<std::string, std::string>& metadata,
                         size_t chunk_bytes) {
  const std::string fname = file.string();
  std::set<std::string> names;
  for (const auto& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__") {
      return invalid_argument(str_cat(fname, ": '", t.name, "' is not a valid tensor name"));
    }
    if (!names.insert(t.name).second) return invalid_argument(str_cat(fname, ": tensor '", t.name, "' given twice"));
    for (int64_t d : t.shape) {
      if (d < 0) return invalid_argument(str_cat(fname, ": tensor '", t.name, "' has a negative dimension"));
    }
  }
  // Largest elements first, as the safetensors library lays tensors out: with no gaps allowed
  // between tensors, this is what keeps every tensor aligned to its element size.
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_size(tensors[a].dtype) > dtype_size(tensors[b].dtype);
  });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  uint64_t offset = 0;
  for (size_t i : order) {
    const TensorSpec& t = tensors[i];
    const uint64_t n = t.nbytes();
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  const uint64_t data_size = offset;
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // data area starts 8-aligned

  std::filesystem::path tmp = file;
  tmp += str_cat(".tmp.", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return failed_precondition(str_cat(tmp.string(), ": cannot create: ", std::strerror(errno)));
  TempFile out(fd, tmp);
  uint8_t len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<uint8_t>(static_cast<uint64_t>(header_text.size()) >> (8 * i));
  KILN_RETURN_IF_ERROR(write_all(fd, len_bytes, 8, fname));
  KILN_RETURN_IF_ERROR(write_all(fd, reinterpret_cast<const uint8_t*>(header_text.data()), header_text.size(), fname));

  // Two buffers: one is filled while the other is being written.
  chunk_bytes = std::max<size_t>(chunk_bytes / 8 * 8, 8);
  const uint64_t data_rounded = (std::max<uint64_t>(data_size, 8) + 7) / 8 * 8;
  if (chunk_bytes > data_rounded) chunk_bytes = static_cast<size_t>(data_rounded);
  std::unique_ptr<uint64_t[]> buffers[2] = {std::make_unique<uint64_t[]>(chunk_bytes / 8),
                                            std::make_unique<uint64_t[]>(chunk_bytes / 8)};
  std::future<Status> pending;
  size_t k = 0;              // position in `order`
  uint64_t tensor_done = 0;  // bytes of tensors[order[k]] already produced
  for (int which = 0; k < order.size(); which ^= 1) {
    uint8_t* buf = reinterpret_cast<uint8_t*>(buffers[which].get());
    size_t used = 0;
    while (used < chunk_bytes && k < order.size()) {
      const TensorSpec& t = tensors[order[k]];
      const uint64_t left = t.nbytes() - tensor_done;
      const size_t piece = static_cast<size_t>(std::min<uint64_t>(left, chunk_bytes - used));
      if (piece > 0) {
        Status s = fill(order[k], tensor_done, buf + used, piece);
        if (!s.is_ok()) {
          if (pending.valid()) pending.wait();
          return s.with_context(str_cat(fname, ": tensor '", t.name, "'"));
        }
      }
      used += piece;
      tensor_done += piece;
      if (tensor_done == t.nbytes()) {
        ++k;
        tensor_done = 0;
      }
    }
    if (pending.valid()) KILN_RETURN_IF_ERROR(pending.get());
    pending = std::async(std::launch::async, [fd, buf, used, &fname] { return write_all(fd, buf, used, fname); });
  }
  if (pending.valid()) KILN_RETURN_IF_ERROR(pending.get());
  return out.close_and_rename(file);
}

Status write_safetensors(const std::filesystem::path& file, const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  std::vector<TensorSpec> specs;
  for (const auto& t : tensors) {
    specs.push_back({t.name, t.dtype, t.shape});
    if (specs.back().nbytes() != t.bytes.size()) {
      return invalid_argument(str_cat(file.string(), ": tensor '", t.name, "' has ", t.bytes.size(), " bytes, its dtype ",
                                      dtype_name(t.dtype), " and shape ", shape_to_string(t.shape), " need ",
                                      specs.back().nbytes()));
    }
  }
  return write_safetensors(
      file, specs,
      [&](size_t index, uint64_t offset, uint8_t* dst, size_t size) {
        std::memcpy(dst, tensors[index].bytes.data() + offset, size);
        return Status::ok();
      },
      metadata);
}

Status write_safetensors_index(const std::filesystem::path& file,
                               const std::map<std::string, std::string>& weight_map, uint64_t total_size) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["metadata"] = {{"total_size", total_size}};
  nlohmann::ordered_json wm = nlohmann::ordered_json::object();
  for (const auto& [name, shard] : weight_map) wm[name] = shard;
  j["weight_map"] = wm;
  return write_file_atomic(file, j.dump(2) + "\n");
}

}  // namespace kiln::model
