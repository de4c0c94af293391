// The tensors of a Hugging Face checkpoint: one or more safetensors files, memory-mapped and
// validated when opened.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/core/dtype.h"
#include "kiln/core/file.h"
#include "kiln/core/status.h"

namespace kiln::model {

// One tensor inside a mapped file. `data` stays valid while its Checkpoint lives, and is aligned to
// the element size (a tensor that a writer left misaligned is copied once, when the file is opened).
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

  // The tensors whose dtype kiln can hold (F32, F16, BF16, and the integer types I32, I64, U8).
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  // Tensors of other valid safetensors dtypes (F64, I8, F8_E4M3, ...), by name: their dtype name.
  const std::map<std::string, std::string>& unsupported_tensors() const { return unsupported_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0 || unsupported_.count(name) != 0; }
  // The tensor `name` with exactly `shape` (dtype F32, F16 or BF16); an error naming the file,
  // the tensor and what is wrong otherwise: kNotFound when absent, kUnimplemented for another
  // dtype, kInvalidArgument for another shape.
  Result<const TensorInfo*> get(const std::string& name, const std::vector<int64_t>& shape) const;
  // Total bytes of tensor data.
  size_t total_bytes() const;
  // Maps every shard's pages now, before a load reads all of them (MappedFile::populate).
  void populate() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  friend class CheckpointBuilder;
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> unsupported_;
  std::vector<std::unique_ptr<uint64_t[]>> realigned_;  // copies of misaligned tensors
};

// "[2, 3]"
std::string shape_to_string(const std::vector<int64_t>& shape);

// A tensor to write: data in `dtype`, row-major.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::string bytes;  // raw little-endian data, numel * dtype_size bytes
};

// Writes one safetensors file: header JSON padded to 8 bytes, then the tensors ordered by element
// size (largest first, then as given), which keeps each one aligned with no gaps between them.
Status write_safetensors(const std::filesystem::path& file, const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

// A tensor whose bytes a TensorFill produces while the file is written.
struct TensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;

  uint64_t nbytes() const;
};

// Writes bytes [offset, offset + size) of tensors[index] to `dst`. offset and size are multiples
// of the element size. Called from the writing thread, in file order.
using TensorFill = std::function<Status(size_t index, uint64_t offset, uint8_t* dst, size_t size)>;

// Streams one safetensors file: the data area is produced `chunk_bytes` at a time by `fill`
// while the previous chunk is written, so a multi-GB shard is never held in memory whole. The
// file appears under its name only once complete (written beside it, then renamed).
Status write_safetensors(const std::filesystem::path& file, const std::vector<TensorSpec>& tensors,
                         const TensorFill& fill, const std::map<std::string, std::string>& metadata = {},
                         size_t chunk_bytes = size_t{64} << 20);

// Writes model.safetensors.index.json: {"metadata": {"total_size": N}, "weight_map": {tensor: shard}}.
Status write_safetensors_index(const std::filesystem::path& file,
                               const std::map<std::string, std::string>& weight_map, uint64_t total_size);

}  // namespace kiln::model
