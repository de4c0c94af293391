#include "kiln/runtime/backend/cuda/device.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "kiln/runtime/backend/cuda/cuda_status.h"

namespace kiln::runtime::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error so later checks start clean
    return 0;
  }
  return n;
}

// ---- DeviceBuffer ----

DeviceBuffer::~DeviceBuffer() { release(); }

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)),
      counter_(std::exchange(o.counter_, nullptr)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    release();
    data_ = std::exchange(o.data_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    counter_ = std::exchange(o.counter_, nullptr);
  }
  return *this;
}

void DeviceBuffer::release() {
  if (data_ != nullptr) {
    cudaFree(data_);
    if (counter_ != nullptr) *counter_ -= static_cast<int64_t>(bytes_);
  }
  data_ = nullptr;
  bytes_ = 0;
  counter_ = nullptr;
}

// ---- PinnedBuffer ----

PinnedBuffer::~PinnedBuffer() { release(); }

PinnedBuffer::PinnedBuffer(PinnedBuffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
  if (this != &o) {
    release();
    data_ = std::exchange(o.data_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

void PinnedBuffer::release() {
  if (data_ != nullptr) cudaFreeHost(data_);
  data_ = nullptr;
  bytes_ = 0;
}

Result<PinnedBuffer> PinnedBuffer::alloc(size_t bytes) {
  PinnedBuffer b;
  if (bytes == 0) return b;
  cudaError_t err = cudaHostAlloc(&b.data_, bytes, cudaHostAllocDefault);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return resource_exhausted(str_cat("cannot allocate ", bytes, " bytes of pinned host memory: ",
                                      cudaGetErrorString(err)));
  }
  b.bytes_ = bytes;
  return b;
}

// ---- CudaDevice ----

Result<std::unique_ptr<CudaDevice>> CudaDevice::open(int index) {
  const int n = device_count();
  if (n == 0) return failed_precondition("no CUDA device is available (cudaGetDeviceCount found none)");
  if (index < 0 || index >= n) {
    return invalid_argument(str_cat("CUDA device index ", index, " is out of range: ", n, " device(s)"));
  }
  std::unique_ptr<CudaDevice> d(new CudaDevice());
  d->index_ = index;
  KILN_CUDA_RETURN_IF_ERROR(cudaSetDevice(index));
  cudaDeviceProp prop{};
  KILN_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, index));
  d->name_ = prop.name;
  d->sm_count_ = prop.multiProcessorCount;
  d->cc_major_ = prop.major;
  d->cc_minor_ = prop.minor;
  if (prop.major < 8) {
    return failed_precondition(str_cat("CUDA device ", index, " (", prop.name, ") has compute capability ",
                                       prop.major, ".", prop.minor, "; kiln needs 8.0 or newer (bf16)"));
  }
  cudaStream_t s = nullptr;
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  d->stream_ = s;
  cublasLtHandle_t lt = nullptr;
  KILN_CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&lt));
  d->lt_handle_ = lt;
  return d;
}

CudaDevice::~CudaDevice() {
  cudaSetDevice(index_);
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  if (lt_handle_ != nullptr) cublasLtDestroy(static_cast<cublasLtHandle_t>(lt_handle_));
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

Status CudaDevice::make_current() const { return cuda_status(cudaSetDevice(index_), "cudaSetDevice"); }

Result<DeviceBuffer> CudaDevice::alloc(size_t bytes, std::string_view what) {
  DeviceBuffer b;
  if (bytes == 0) return b;
  cudaError_t err = cudaMalloc(&b.data_, bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();
    int64_t free_bytes = 0, total = 0;
    (void)mem_info(&free_bytes, &total);
    return resource_exhausted(str_cat("out of device memory allocating ", bytes, " bytes for ", what,
                                      " on ", name_, " (", free_bytes, " of ", total, " bytes free)"));
  }
  b.bytes_ = bytes;
  b.counter_ = &allocated_bytes_;
  allocated_bytes_ += static_cast<int64_t>(bytes);
  return b;
}

Status CudaDevice::mem_info(int64_t* free_bytes, int64_t* total_bytes) const {
  size_t f = 0, t = 0;
  KILN_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&f, &t));
  *free_bytes = static_cast<int64_t>(f);
  *total_bytes = static_cast<int64_t>(t);
  return Status::ok();
}

Status CudaDevice::copy_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return Status::ok();
  KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
  return synchronize();
}

Status CudaDevice::copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return Status::ok();
  KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  return synchronize();
}

Status CudaDevice::fill_bytes(void* dst, int value, size_t bytes) {
  if (bytes == 0) return Status::ok();
  KILN_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(dst, value, bytes, stream_));
  return synchronize();
}

Status CudaDevice::synchronize() { return cuda_status(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

// ---- WeightUploader ----

Result<std::unique_ptr<WeightUploader>> WeightUploader::create(CudaDevice* device, size_t chunk_bytes) {
  std::unique_ptr<WeightUploader> u(new WeightUploader());
  u->device_ = device;
  u->chunk_elems_ = std::max<size_t>(chunk_bytes / 2, 4096);
  KILN_RETURN_IF_ERROR(device->make_current());
  for (int i = 0; i < 2; ++i) {
    KILN_ASSIGN_OR_RETURN(u->staging_[i], PinnedBuffer::alloc(u->chunk_elems_ * 2));
    cudaEvent_t e = nullptr;
    KILN_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    u->done_[i] = e;
  }
  cudaStream_t s = nullptr;
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  u->copy_stream_ = s;
  return u;
}

WeightUploader::~WeightUploader() {
  if (copy_stream_ != nullptr) {
    cudaStreamSynchronize(copy_stream_);
    cudaStreamDestroy(copy_stream_);
  }
  for (CUevent_st* e : done_) {
    if (e != nullptr) cudaEventDestroy(e);
  }
}

Status WeightUploader::upload_bf16(void* dst, const void* src, DType src_type, size_t count) {
  if (src_type != DType::kBF16 && src_type != DType::kF32 && src_type != DType::kF16) {
    return invalid_argument(str_cat("cannot upload a tensor of dtype ", dtype_name(src_type), " as bf16"));
  }
  const size_t esize = dtype_size(src_type);
  const auto* in = static_cast<const uint8_t*>(src);
  auto* out = static_cast<uint16_t*>(dst);
  for (size_t done = 0; done < count;) {
    const size_t n = std::min(chunk_elems_, count - done);
    const int b = next_;
    next_ ^= 1;
    if (in_use_[b]) KILN_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(done_[b]));
    uint16_t* stage = staging_[b].as<uint16_t>();
    const uint8_t* from = in + done * esize;
    if (src_type == DType::kBF16) {
      std::memcpy(stage, from, n * 2);
    } else if (src_type == DType::kF32) {
      for (size_t i = 0; i < n; ++i) {
        float f;
        std::memcpy(&f, from + 4 * i, 4);
        stage[i] = f32_to_bf16(f);
      }
    } else {
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, from + 2 * i, 2);
        stage[i] = f32_to_bf16(f16_to_f32(h));
      }
    }
    KILN_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(out + done, stage, n * 2, cudaMemcpyHostToDevice, copy_stream_));
    KILN_CUDA_RETURN_IF_ERROR(cudaEventRecord(done_[b], copy_stream_));
    in_use_[b] = true;
    done += n;
    bytes_uploaded_ += static_cast<int64_t>(n * 2);
  }
  return Status::ok();
}

Status WeightUploader::finish() {
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(copy_stream_));
  in_use_[0] = in_use_[1] = false;
  return Status::ok();
}

}  // namespace kiln::runtime::cuda
