#include "serve_pulls.h"

#include <chrono>
#include <future>

#include "kiln/pool/registry.h"

namespace kiln::app {

std::unique_ptr<http::PullService> make_pull_service(pool::ModelPool& pool) {
  http::PullServiceOptions o;
  o.pull.hub_dir = pool::default_hf_hub_dir();
  o.pull.endpoint = hub::endpoint_from_environment();
  o.pull.token = hub::token_from_environment();
  o.pull.user_agent = std::string("kiln/") + KILN_VERSION;
  // Runs on the pull's thread: rescan, wait for it (the loader thread answers), then look.
  auto publish = [&pool](const std::string& repo) {
    auto done = std::make_shared<std::promise<void>>();
    auto rescanned = done->get_future();
    pool.rescan([done](Result<int64_t>) { done->set_value(); });
    if (rescanned.wait_for(std::chrono::seconds(60)) != std::future_status::ready) return false;
    return pool.model_status(repo).has_value();
  };
  return std::make_unique<http::PullService>(std::move(o), std::move(publish));
}

}  // namespace kiln::app
