#include "kiln/grammar/mask_bench.h"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "kiln/core/str.h"

namespace kiln::grammar {
namespace {

double thread_cpu_micros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

}  // namespace

Result<MaskTimings> time_masks(Matcher& matcher, std::span<const int32_t> tokens) {
  MaskTimings out;
  std::vector<uint32_t> words(matcher.vocabulary().mask_words());
  for (size_t i = 0; i <= tokens.size(); ++i) {
    const double c0 = thread_cpu_micros();
    const auto t0 = std::chrono::steady_clock::now();
    matcher.fill_next_token_mask(words);
    const auto t1 = std::chrono::steady_clock::now();
    const double c1 = thread_cpu_micros();
    out.micros.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    out.cpu_micros.push_back(c1 - c0);
    if (i == tokens.size()) break;
    const int32_t id = tokens[i];
    const bool in_mask = id >= 0 && static_cast<size_t>(id) / 32 < words.size() && (words[id / 32] >> (id % 32) & 1u);
    if (!in_mask || !matcher.accept_token(id)) {
      return invalid_argument(str_cat("token ", i, " (id ", id, ") is not allowed by the grammar"));
    }
    ++out.tokens_accepted;
  }
  out.ended_allowed = matcher.can_end();
  return out;
}

MaskStats summarize(std::vector<double> micros) {
  MaskStats s;
  s.count = micros.size();
  if (micros.empty()) return s;
  std::sort(micros.begin(), micros.end());
  double sum = 0;
  for (double m : micros) sum += m;
  s.mean = sum / static_cast<double>(micros.size());
  s.p50 = micros[micros.size() / 2];
  s.p99 = micros[std::min(micros.size() - 1, micros.size() * 99 / 100)];
  s.max = micros.back();
  return s;
}

}  // namespace kiln::grammar
