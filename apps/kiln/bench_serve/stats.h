// Summary statistics of latency samples: mean, standard deviation, extremes and percentiles.
#pragma once

#include <cstddef>
#include <vector>

namespace kiln::bench_serve {

// The p-th percentile (0..100) of ascending `sorted`, interpolating linearly between the two
// nearest ranks (the same definition as numpy's default, so figures compare with Python tools).
// Returns 0 for an empty input.
double percentile_sorted(const std::vector<double>& sorted, double p);

struct Summary {
  size_t count = 0;
  double mean = 0;
  double stddev = 0;  // population standard deviation
  double min = 0;
  double max = 0;
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
};

Summary summarize(std::vector<double> values);

// Every value multiplied by `factor` (seconds to milliseconds); the count is unchanged.
Summary scaled(const Summary& s, double factor);

}  // namespace kiln::bench_serve
