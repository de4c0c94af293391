#include "kiln/core/clock.h"

namespace kiln {

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

int64_t unix_time_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double seconds_between(SteadyTime a, SteadyTime b) { return std::chrono::duration<double>(b - a).count(); }

}  // namespace kiln
