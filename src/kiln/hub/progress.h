// How `kiln pull` shows its progress: a bar redrawn in place on a terminal, plain lines otherwise.
// Pure functions of the numbers and the time given, so that the rendering is tested as text.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>

namespace kiln::hub {

// Bytes per second over the last `window_s` seconds of samples (time in seconds, bytes done).
class RateMeter {
 public:
  explicit RateMeter(double window_s = 5.0) : window_s_(window_s) {}
  void add(double t_s, int64_t done_bytes);
  double bytes_per_second() const;

 private:
  double window_s_;
  std::deque<std::pair<double, int64_t>> samples_;
};

// "1:02:03", "4:05", or "--:--" when unknown (rate 0 or negative remaining).
std::string format_eta(double seconds);

// "[#########.........]  1.2 GiB / 3.4 GiB  35%  45.6 MiB/s  ETA 0:47" with a bar `bar_width`
// wide (0: no bar), for a terminal.
std::string progress_bar_line(int64_t done, int64_t total, double rate, int bar_width);
// "pull: 1.2 GiB / 3.4 GiB (35%), 45.6 MiB/s, ETA 0:47" for logs and pipes.
std::string progress_plain_line(int64_t done, int64_t total, double rate);

}  // namespace kiln::hub
