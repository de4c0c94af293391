// What the benchmark sends: synthetic prompts of a chosen token length, or prompts from a JSONL
// file. Request i is a pure function of (seed, i), so runs at different concurrencies or rates
// send the same requests.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "bench_serve/openai_api.h"
#include "kiln/core/status.h"

namespace kiln::bench_serve {

// A seeded generator whose draws are the same on every platform (std:: distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  double uniform();                // [0, 1)
  uint64_t below(uint64_t n);      // [0, n), n > 0
  int64_t between(int64_t lo, int64_t hi);  // [lo, hi]
  double exponential(double rate);  // mean 1 / rate

 private:
  std::mt19937_64 engine_;
};

// Independent seeds for numbered streams of one run (SplitMix64 finaliser).
uint64_t mix_seed(uint64_t seed, uint64_t stream);

// Words that are one token each after a space in common tokenizers (vocabulary.cpp).
const std::vector<std::string_view>& vocabulary();

// `n_words` words drawn from vocabulary(), separated by spaces.
std::string make_prompt(Rng& rng, int n_words);

// A length drawn uniformly from [base * (1 - ratio), base * (1 + ratio)], at least 1; `base` when
// ratio is 0.
int sample_length(Rng& rng, int base, double ratio);

struct WorkloadSettings {
  ApiEndpoint endpoint = ApiEndpoint::kChat;
  int prompt_tokens = 128;
  int output_tokens = 128;
  double range_ratio = 0;
  int shared_prefix_tokens = 0;  // a prefix every synthetic prompt starts with (prefix caching)
  uint64_t seed = 0;
  std::string dataset;  // JSONL file; empty for synthetic prompts
};

// Reads a JSONL file whose lines are {"prompt": "...", "max_tokens": N} or
// {"messages": [...], "max_tokens": N}; max_tokens is optional (default `default_max_tokens`).
Result<std::vector<RequestSpec>> load_dataset(const std::string& path, ApiEndpoint endpoint,
                                              int default_max_tokens);

class Workload {
 public:
  static Result<Workload> create(const WorkloadSettings& settings);

  // The i-th request. Warmup requests come from a stream of their own so that the number of
  // warmup requests never changes what the measured ones send.
  RequestSpec request(uint64_t index, bool warmup) const;
  size_t dataset_size() const { return dataset_.size(); }

 private:
  WorkloadSettings settings_;
  std::string shared_prefix_;
  std::vector<RequestSpec> dataset_;
};

}  // namespace kiln::bench_serve
