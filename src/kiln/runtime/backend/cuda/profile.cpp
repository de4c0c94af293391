#include "kiln/runtime/backend/cuda/profile.h"

#include <algorithm>
#include <atomic>
#include <map>

#include "kiln/runtime/backend/cuda/cuda_status.h"

namespace kiln::runtime::cuda {
namespace {

std::atomic<bool> g_on{false};

struct Record {
  std::string name;
  cudaEvent_t begin, end;
};
thread_local std::vector<Record> t_records;

bool capturing(Stream s) {
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  return cudaStreamIsCapturing(s, &st) != cudaSuccess || st != cudaStreamCaptureStatusNone;
}

}  // namespace

void set_op_profiling(bool on) { g_on = on; }
bool op_profiling() { return g_on; }

OpTimer::OpTimer(const char* name, Stream stream) : name_(name) { start(stream); }
OpTimer::OpTimer(std::string name, Stream stream) : name_(std::move(name)) { start(stream); }

void OpTimer::start(Stream stream) {
  if (!g_on || capturing(stream)) return;
  cudaEvent_t e = nullptr;
  if (cudaEventCreate(&e) != cudaSuccess) return;
  cudaEventRecord(e, stream);
  begin_ = e;
  stream_ = stream;
}

OpTimer::~OpTimer() {
  if (begin_ == nullptr) return;
  cudaEvent_t e = nullptr;
  if (cudaEventCreate(&e) != cudaSuccess) {
    cudaEventDestroy(begin_);
    return;
  }
  cudaEventRecord(e, stream_);
  t_records.push_back({std::move(name_), begin_, e});
}

std::vector<OpTime> take_op_times() {
  std::map<std::string, OpTime> by_name;
  for (Record& r : t_records) {
    float ms = 0.0f;
    cudaEventSynchronize(r.end);
    if (cudaEventElapsedTime(&ms, r.begin, r.end) == cudaSuccess) {
      OpTime& t = by_name[r.name];
      t.name = r.name;
      t.ms += ms;
      ++t.calls;
    }
    cudaEventDestroy(r.begin);
    cudaEventDestroy(r.end);
  }
  t_records.clear();
  cudaGetLastError();
  std::vector<OpTime> out;
  for (auto& [name, t] : by_name) out.push_back(t);
  std::sort(out.begin(), out.end(), [](const OpTime& a, const OpTime& b) { return a.ms > b.ms; });
  return out;
}

}  // namespace kiln::runtime::cuda
