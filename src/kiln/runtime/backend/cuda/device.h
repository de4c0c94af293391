// The CUDA device context: one device, one compute stream, a cuBLASLt handle, tracked device
// allocations and a pinned-staging weight uploader. Plain C++ header (no CUDA header), so that
// other layers and tests can hold these types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kiln/core/dtype.h"
#include "kiln/core/status.h"

struct CUstream_st;
struct CUevent_st;

namespace kiln::runtime::cuda {

using Stream = CUstream_st*;

// Number of CUDA devices; 0 when there is none or no driver (never an error).
int device_count();

class CudaDevice;

// One device allocation. Move-only; frees itself. Its device must outlive it.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  template <typename T>
  T* as() const { return static_cast<T*>(data_); }
  size_t bytes() const { return bytes_; }
  bool empty() const { return data_ == nullptr; }

 private:
  friend class CudaDevice;
  void release();
  void* data_ = nullptr;
  size_t bytes_ = 0;
  int64_t* counter_ = nullptr;  // the owning device's allocated-bytes counter
};

// Page-locked host memory, for asynchronous copies. Move-only.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer();
  PinnedBuffer(PinnedBuffer&& o) noexcept;
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  static Result<PinnedBuffer> alloc(size_t bytes);
  void* data() const { return data_; }
  template <typename T>
  T* as() const { return static_cast<T*>(data_); }
  size_t bytes() const { return bytes_; }

 private:
  void release();
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

class CudaDevice {
 public:
  // Opens device `index`: sets it current on this thread, creates a non-blocking stream and a
  // cuBLASLt handle. Fails with a message when there is no such device.
  static Result<std::unique_ptr<CudaDevice>> open(int index);
  ~CudaDevice();
  CudaDevice(const CudaDevice&) = delete;
  CudaDevice& operator=(const CudaDevice&) = delete;

  int index() const { return index_; }
  Stream stream() const { return stream_; }
  void* lt_handle() const { return lt_handle_; }  // cublasLtHandle_t
  const std::string& name() const { return name_; }
  int sm_count() const { return sm_count_; }
  int cc_major() const { return cc_major_; }
  int cc_minor() const { return cc_minor_; }

  // Makes this device current on the calling thread (the engine thread may differ from the
  // loader thread).
  Status make_current() const;

  // A tracked allocation; `what` names it in the out-of-memory message.
  Result<DeviceBuffer> alloc(size_t bytes, std::string_view what);
  // Bytes currently held through alloc().
  int64_t allocated_bytes() const { return allocated_bytes_; }
  // The device's real free and total memory (cudaMemGetInfo).
  Status mem_info(int64_t* free_bytes, int64_t* total_bytes) const;

  // Synchronous copies for setup and tests (they wait for the stream first).
  Status copy_to_device(void* dst, const void* src, size_t bytes);
  Status copy_to_host(void* dst, const void* src, size_t bytes);
  Status fill_bytes(void* dst, int value, size_t bytes);
  Status synchronize();

 private:
  CudaDevice() = default;
  int index_ = 0;
  Stream stream_ = nullptr;
  void* lt_handle_ = nullptr;
  std::string name_;
  int sm_count_ = 0;
  int cc_major_ = 0;
  int cc_minor_ = 0;
  int64_t allocated_bytes_ = 0;
};

// Uploads host tensors into device memory as bf16 through two pinned staging buffers: while the
// copy engine moves one chunk, the host reads (and converts) the next from the memory map.
class WeightUploader {
 public:
  static Result<std::unique_ptr<WeightUploader>> create(CudaDevice* device, size_t chunk_bytes = 32u << 20);
  ~WeightUploader();
  WeightUploader(const WeightUploader&) = delete;
  WeightUploader& operator=(const WeightUploader&) = delete;

  // Copies `count` elements of `src_type` (F32, F16 or BF16) from `src` to `dst` as bf16.
  // `dst` must stay valid until finish(). Returns before the copy has landed.
  Status upload_bf16(void* dst, const void* src, DType src_type, size_t count);
  // Waits until every upload has landed.
  Status finish();
  int64_t bytes_uploaded() const { return bytes_uploaded_; }

 private:
  WeightUploader() = default;
  CudaDevice* device_ = nullptr;
  Stream copy_stream_ = nullptr;
  PinnedBuffer staging_[2];
  CUevent_st* done_[2] = {nullptr, nullptr};
  bool in_use_[2] = {false, false};
  int next_ = 0;
  size_t chunk_elems_ = 0;
  int64_t bytes_uploaded_ = 0;
};

}  // namespace kiln::runtime::cuda
