// The tensors of a Hugging Face checkpoint: one or more safetensors files, memory-mapped and
// validated when opened.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/core/dtype.h"
#include "kiln/core/file.h"
#include "kiln/core/status.h"

namespace kiln::model {

// One tensor inside a mapped file. `data` stays valid while its Checkpoint lives.
struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::filesystem::path file;  // for error messages

  int64_t numel() const;
};

class Checkpoint {
 public:
  // Opens model.safetensors, or every shard named by model.safetensors.index.json, in `dir`.
  // Validates header length, JSON, dtypes, shapes against byte ranges, overlapping and
  // out-of-file ranges, and that every tensor the index names exists in its shard.
  static Result<std::unique_ptr<Checkpoint>> open(const std::filesystem::path& dir);
  // Opens one .safetensors file.
  static Result<std::unique_ptr<Checkpoint>> open_file(const std::filesystem::path& file);

  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // The tensor `name` with exactly `shape` (dtype F32, F16 or BF16); an error naming the file,
  // the tensor and what is wrong otherwise.
  Result<const TensorInfo*> get(const std::string& name, const std::vector<int64_t>& shape) const;
  // Total bytes of tensor data.
  size_t total_bytes() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  friend class CheckpointBuilder;
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorInfo> tensors_;
};

// A tensor to write: data in `dtype`, row-major.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::string bytes;  // raw little-endian data, numel * dtype_size bytes
};

// Writes one safetensors file (header JSON padded to 8 bytes, tensors in the given order).
Status write_safetensors(const std::filesystem::path& file, const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

}  // namespace kiln::model
