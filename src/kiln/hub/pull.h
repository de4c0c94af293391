// `kiln pull`: one revision of a Hub repository into the Hugging Face cache (docs/pull.md).
// Resolve the revision's file list, keep what kiln serves, check the free space, download the
// missing blobs (several files at once; each continues its `.incomplete` part with a Range
// request after an interruption), verify each against the Hub's sha256 (LFS) or git blob id,
// then publish the snapshot's symlinks and the ref. A snapshot appears only once all its files
// are verified, so a model is never half there for `kiln serve`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/hub/repo.h"

namespace kiln::hub {

struct PullOptions {
  std::filesystem::path hub_dir;                 // e.g. ~/.cache/huggingface/hub
  std::string endpoint = "https://huggingface.co";  // $HF_ENDPOINT
  std::optional<std::string> token;              // $HF_TOKEN
  int connections = 4;                           // files downloaded at once
  int retries = 5;                               // further attempts of a file after a failure a retry can cure
  std::chrono::milliseconds retry_delay{1000};   // doubled each attempt
  std::chrono::milliseconds progress_interval{250};
  int64_t stall_timeout_s = 60;
  std::string user_agent = "kiln";
  std::function<bool()> cancelled;               // polled; true stops the pull (parts are kept)
};

// What the pull will fetch, once the revision is resolved.
struct PullPlan {
  std::string repo, revision, commit;
  std::vector<RepoFile> files;  // the files kiln serves, largest first
  int64_t total_bytes = 0;      // their sizes together
  int64_t present_bytes = 0;    // already in the cache (whole blobs and `.incomplete` parts)
  int64_t free_bytes = 0;       // free space on the cache's file system before the pull
};

struct PullProgress {
  int64_t done_bytes = 0;   // bytes of the plan on disk (present + downloaded)
  int64_t total_bytes = 0;
  int files_done = 0;
  int files_total = 0;
};

// Called from the pull's threads, one call at a time.
struct PullObserver {
  virtual ~PullObserver() = default;
  virtual void resolved(const PullPlan&) {}
  // At most once per progress_interval, and once when all bytes are in.
  virtual void progress(const PullProgress&) {}
  // A file is verified in the cache (`cached`: it was there already).
  virtual void file_done(const RepoFile&, bool /*cached*/) {}
  // A file's transfer failed and is tried again from where it stopped.
  virtual void retrying(const RepoFile&, int /*attempt*/, const Status&) {}
};

struct PullResult {
  std::string commit;
  std::filesystem::path snapshot;  // hub/models--ORG--NAME/snapshots/COMMIT
  int64_t downloaded_bytes = 0;
};

// Headroom kept free beyond the bytes a pull writes.
inline constexpr int64_t kFreeSpaceMargin = 64LL << 20;

// Whether `missing` more bytes fit in `free_bytes` with kFreeSpaceMargin to spare; the error
// says how much is needed and free in `dir`.
Status check_free_space(int64_t missing, int64_t free_bytes, const std::filesystem::path& dir, std::string_view repo);

// Pulls `ref`. Fails with kFailedPrecondition when another pull of the same repository holds its
// lock (any process on this machine), kResourceExhausted when the space is short, kDataLoss when
// a file does not match its checksum (its part is deleted and nothing is published).
Result<PullResult> pull(const RepoRef& ref, const PullOptions& options, PullObserver* observer);

// Removes models--ORG--NAME (blobs, snapshots, refs) from `hub`; fails while a pull holds it.
Status remove_repo(const std::filesystem::path& hub, std::string_view repo);

}  // namespace kiln::hub
