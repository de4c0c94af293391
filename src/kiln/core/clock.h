// Time sources. Code that waits or expires things takes a Clock so tests can drive time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace kiln {

using SteadyTime = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime now() const = 0;
};

class SystemClock final : public Clock {
 public:
  SteadyTime now() const override { return std::chrono::steady_clock::now(); }
  static const SystemClock& instance();
};

// A clock that moves only when told to (tests).
class ManualClock final : public Clock {
 public:
  SteadyTime now() const override { return SteadyTime(std::chrono::nanoseconds(ns_.load())); }
  void advance(std::chrono::nanoseconds d) { ns_ += d.count(); }

 private:
  std::atomic<int64_t> ns_{1'000'000'000};
};

// Seconds since the Unix epoch (for API `created` fields).
int64_t unix_time_seconds();
double seconds_between(SteadyTime a, SteadyTime b);

}  // namespace kiln
