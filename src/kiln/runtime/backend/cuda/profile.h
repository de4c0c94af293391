// Per-op GPU time of the CUDA ops, for finding where a step's time goes (the benchmarks print it).
// Off by default; when on, every op outside graph capture is bracketed by CUDA events. Plain C++
// header.
#pragma once

#include <string>
#include <vector>

#include "kiln/runtime/backend/cuda/device.h"

namespace kiln::runtime::cuda {

struct OpTime {
  std::string name;
  double ms = 0.0;
  long calls = 0;
};

void set_op_profiling(bool on);
bool op_profiling();

// Brackets one op launch on `stream` while profiling is on (and the stream is not capturing).
class OpTimer {
 public:
  OpTimer(const char* name, Stream stream);
  OpTimer(std::string name, Stream stream);
  ~OpTimer();
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  void start(Stream stream);
  std::string name_;
  Stream stream_ = nullptr;
  CUevent_st* begin_ = nullptr;
};

// Waits for the recorded ops of this thread to finish and returns their times summed by name
// (largest first), clearing the record.
std::vector<OpTime> take_op_times();

}  // namespace kiln::runtime::cuda
