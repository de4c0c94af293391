// Pulls from the Hugging Face Hub run by the server (POST /v1/admin/models/pull, docs/pull.md).
// Each pull runs on a thread of its own and outlives the request that started it: a client that
// goes away stops reading the events, not the download. A second request for a repository being
// pulled (same revision) joins the running pull and gets its events from where it stands; one
// for another revision of it is refused. When a pull ends, `publish` (a registry rescan) makes
// the model servable without a restart, and its answer says whether the registry now has it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/hub/pull.h"

namespace kiln::http {

struct PullServiceOptions {
  hub::PullOptions pull;  // hub_dir, endpoint, token, connections…
  int max_running = 4;    // pulls of different repositories at once
};

class PullService {
 public:
  // `publish(repo)` runs on the pull's thread after a pull succeeds: it rescans the registry and
  // returns whether `repo` is now a servable model id.
  PullService(PullServiceOptions options, std::function<bool(const std::string& repo)> publish);
  // Cancels the running pulls (their parts stay for the next pull) and joins their threads.
  ~PullService();
  PullService(const PullService&) = delete;
  PullService& operator=(const PullService&) = delete;

  // Receives the pull's SSE events (named events, see docs/pull.md), from the pull's thread;
  // `last` is set on the done or error event that ends it.
  using Listener = std::function<void(const std::string& event, bool last)>;
  // Starts the pull of `ref`, or joins the one running; the listener first gets the events that
  // say where it stands. Unsubscribes when the handle is dropped. kFailedPrecondition: another
  // revision of the repository is being pulled; kResourceExhausted: too many pulls are running.
  Result<std::shared_ptr<void>> subscribe(const hub::RepoRef& ref, Listener listener);

  // The pulls running now (GET /v1/admin/pulls), by repository.
  struct Running {
    hub::RepoRef ref;
    std::string commit;  // empty until resolved
    hub::PullProgress progress;
  };
  std::vector<Running> running() const;

 private:
  struct Job;
  void run(const std::shared_ptr<Job>& job);
  void reap_locked();

  PullServiceOptions options_;
  std::function<bool(const std::string&)> publish_;
  mutable std::mutex mu_;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<Job>> running_;  // by repository
  std::vector<std::shared_ptr<Job>> ended_;               // threads not yet joined
};

}  // namespace kiln::http
