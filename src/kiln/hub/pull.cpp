#include "kiln/hub/pull.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include <openssl/evp.h>

#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/hub/http_client.h"

namespace kiln::hub {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxInfoBytes = 16 << 20;  // a model's info JSON (siblings of big repos included)

std::string errno_text(int e) { return std::strerror(e); }

// An exclusive lock on the repository for the pull's or removal's duration, shared with every
// kiln process on the machine (flock: released when the process dies, so no stale locks).
class RepoLock {
 public:
  static Result<std::unique_ptr<RepoLock>> acquire(const fs::path& hub, std::string_view repo) {
    const fs::path dir = hub / ".locks" / repo_cache_dir("", repo);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return failed_precondition(str_cat(dir.string(), ": cannot create: ", ec.message()));
    const fs::path path = dir / "kiln-pull.lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return failed_precondition(str_cat(path.string(), ": cannot open: ", errno_text(errno)));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return failed_precondition(str_cat("a pull of ", repo, " is already running"));
    }
    return std::unique_ptr<RepoLock>(new RepoLock(fd));
  }
  ~RepoLock() { ::close(fd_); }
  RepoLock(const RepoLock&) = delete;
  RepoLock& operator=(const RepoLock&) = delete;

 private:
  explicit RepoLock(int fd) : fd_(fd) {}
  int fd_;
};

// sha256 of the content (an LFS file's oid) or git's blob sha1 ("blob SIZE\0" + content).
class Checksum {
 public:
  explicit Checksum(const RepoFile& f) : git_(f.sha256.empty()), size_(f.size), expected_(blob_name(f)) {}
  ~Checksum() { EVP_MD_CTX_free(ctx_); }
  Checksum(const Checksum&) = delete;
  Checksum& operator=(const Checksum&) = delete;
  void reset() {
    EVP_DigestInit_ex(ctx_, git_ ? EVP_sha1() : EVP_sha256(), nullptr);
    if (git_) {
      const std::string header = str_cat("blob ", size_, std::string(1, '\0'));
      update(header.data(), header.size());
    }
  }
  void update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }
  // The digest in lower-case hex.
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out += kHex[md[i] >> 4];
      out += kHex[md[i] & 15];
    }
    return out;
  }
  const std::string& expected() const { return expected_; }
  const char* name() const { return git_ ? "git blob sha1" : "sha256"; }

 private:
  EVP_MD_CTX* ctx_ = EVP_MD_CTX_new();
  bool git_;
  int64_t size_;
  std::string expected_;
};

// A file descriptor closed on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status write_all(int fd, const char* data, size_t n, const fs::path& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return resource_exhausted(str_cat(path.string(), ": write failed: ", errno_text(errno)));
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::ok();
}

// Hashes the first `n` bytes of `fd` (a part being resumed).
Status hash_prefix(int fd, int64_t n, Checksum& sum, const fs::path& path) {
  std::vector<char> buf(1 << 20);
  int64_t off = 0;
  while (off < n) {
    const ssize_t r = ::pread(fd, buf.data(), static_cast<size_t>(std::min<int64_t>(n - off, buf.size())), off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return data_loss(str_cat(path.string(), ": cannot read the partial download"));
    sum.update(buf.data(), static_cast<size_t>(r));
    off += r;
  }
  return Status::ok();
}

bool retryable(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kOutOfRange ||
         s.code() == StatusCode::kDeadlineExceeded;
}

int64_t file_size_or_zero(const fs::path& p) {
  std::error_code ec;
  const auto n = fs::file_size(p, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

class Puller {
 public:
  Puller(const PullOptions& o, PullObserver* observer) : o_(o), observer_(observer) {}

  Result<PullResult> run(const RepoRef& ref) {
    std::error_code ec;
    fs::create_directories(o_.hub_dir, ec);
    if (ec) return failed_precondition(str_cat(o_.hub_dir.string(), ": cannot create the cache: ", ec.message()));
    KILN_ASSIGN_OR_RETURN(auto lock, RepoLock::acquire(o_.hub_dir, ref.repo));
    const std::string api = str_cat(o_.endpoint, "/api/models/", ref.repo, "/revision/", url_segment(ref.revision), "?blobs=true");
    auto text = get_text(api);
    if (!text.is_ok()) return text.status().with_context(str_cat("resolving ", ref.repo, "@", ref.revision));
    KILN_ASSIGN_OR_RETURN(RepoInfo info, parse_repo_info(*text));
    KILN_ASSIGN_OR_RETURN(std::vector<RepoFile> files, files_to_pull(info));
    repo_dir_ = repo_cache_dir(o_.hub_dir, ref.repo);
    // Which shards kiln opens is the index's to say: read it before choosing the weights. A blob
    // in the cache was verified when it was stored; else the Hub is asked.
    std::optional<std::string> index;
    auto index_file = std::find_if(files.begin(), files.end(), [](const RepoFile& f) { return f.path == kIndexFile; });
    if (index_file != files.end()) {
      const fs::path cached = blob_path(*index_file);
      auto got = index_file->size > 0 && file_size_or_zero(cached) == index_file->size ? read_file(cached)
                 : get_text(resolve_url(ref, info.commit, kIndexFile));
      if (!got.is_ok()) return got.status().with_context(std::string(kIndexFile));
      index = std::move(*got);
    }
    KILN_ASSIGN_OR_RETURN(files, select_weights(std::move(files), index));
    std::stable_sort(files.begin(), files.end(), [](const RepoFile& a, const RepoFile& b) { return a.size > b.size; });

    fs::create_directories(repo_dir_ / "blobs", ec);
    if (ec) return failed_precondition(str_cat((repo_dir_ / "blobs").string(), ": cannot create: ", ec.message()));
    PullPlan plan{ref.repo, ref.revision, info.commit, files, 0, 0, 0};
    int64_t missing = 0;
    for (const auto& f : files) {
      plan.total_bytes += f.size;
      const fs::path blob = blob_path(f);
      if (file_size_or_zero(blob) == f.size && fs::exists(blob, ec)) {
        plan.present_bytes += f.size;
        continue;
      }
      const int64_t part = std::min(file_size_or_zero(part_path(f)), f.size);
      plan.present_bytes += part;
      missing += f.size - part;
    }
    const auto space = fs::space(o_.hub_dir, ec);
    plan.free_bytes = ec ? -1 : static_cast<int64_t>(space.available);
    if (!ec) KILN_RETURN_IF_ERROR(check_free_space(missing, plan.free_bytes, o_.hub_dir, ref.repo));
    if (observer_ != nullptr) observer_->resolved(plan);
    progress_.total_bytes = plan.total_bytes;
    progress_.done_bytes = plan.present_bytes;
    progress_.files_total = static_cast<int>(files.size());

    KILN_RETURN_IF_ERROR(download_all(ref, info.commit, files));
    emit_progress(/*force=*/true);
    KILN_ASSIGN_OR_RETURN(fs::path snapshot, publish(ref, info.commit, files));
    return PullResult{info.commit, snapshot, downloaded_.load()};
  }

 private:
  HttpOptions http_options() const {
    HttpOptions h;
    h.token = o_.token;
    h.stall_timeout_s = o_.stall_timeout_s;
    h.user_agent = o_.user_agent;
    h.cancelled = [this] { return stopped(); };
    return h;
  }
  // A small document (the model info, the index), retried like a file's transfer.
  Result<std::string> get_text(const std::string& url) {
    auto text = http_get_text(url, http_options(), kMaxInfoBytes);
    for (int attempt = 1; !text.is_ok() && retryable(text.status()) && attempt <= o_.retries; ++attempt) {
      if (!wait_before_retry(attempt)) break;
      text = http_get_text(url, http_options(), kMaxInfoBytes);
    }
    return text;
  }
  // The revision is pinned to the resolved commit, so every file comes from the same one.
  std::string resolve_url(const RepoRef& ref, const std::string& commit, std::string_view path) const {
    return str_cat(o_.endpoint, "/", ref.repo, "/resolve/", commit, "/", url_path(path));
  }
  bool stopped() const { return failed_.load(std::memory_order_relaxed) || (o_.cancelled && o_.cancelled()); }
  fs::path blob_path(const RepoFile& f) const { return repo_dir_ / "blobs" / blob_name(f); }
  fs::path part_path(const RepoFile& f) const { return repo_dir_ / "blobs" / (blob_name(f) + ".incomplete"); }

  void emit_progress(bool force) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_progress_ < o_.progress_interval) return;
    last_progress_ = now;
    if (observer_ != nullptr) observer_->progress(progress_);
  }
  void add_bytes(int64_t n) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      progress_.done_bytes += n;
    }
    emit_progress(false);
  }

  Status download_all(const RepoRef& ref, const std::string& commit, const std::vector<RepoFile>& files) {
    std::atomic<size_t> next{0};
    Status first_error;
    std::mutex err_mu;
    auto worker = [&] {
      for (size_t i = next++; i < files.size(); i = next++) {
        if (stopped()) return;
        Status s = fetch_file(ref, commit, files[i]);
        if (!s.is_ok()) {
          std::lock_guard<std::mutex> lock(err_mu);
          if (first_error.is_ok()) first_error = s;
          failed_ = true;
          return;
        }
      }
    };
    const int n = std::clamp(o_.connections, 1, 16);
    std::vector<std::thread> threads;
    for (int i = 1; i < std::min<int>(n, static_cast<int>(files.size())); ++i) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
    if (!first_error.is_ok()) return first_error;
    if (o_.cancelled && o_.cancelled()) return cancelled("the pull was cancelled; run it again to continue");
    return Status::ok();
  }

  void file_done(const RepoFile& f, bool cached) {
    std::lock_guard<std::mutex> lock(mu_);
    ++progress_.files_done;
    if (observer_ != nullptr) observer_->file_done(f, cached);
  }

  Status fetch_file(const RepoRef& ref, const std::string& commit, const RepoFile& f) {
    const fs::path blob = blob_path(f), part = part_path(f);
    std::error_code ec;
    if (fs::exists(blob, ec) && file_size_or_zero(blob) == f.size) {
      file_done(f, true);
      return Status::ok();
    }
    const std::string url = resolve_url(ref, commit, f.path);
    Status last;
    for (int attempt = 0; attempt <= o_.retries; ++attempt) {
      if (attempt > 0) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (observer_ != nullptr) observer_->retrying(f, attempt, last);
        }
        if (!wait_before_retry(attempt)) break;
      }
      last = fetch_once(url, f, part);
      if (last.is_ok()) break;
      if (!retryable(last) || stopped()) return last.with_context(f.path);
    }
    if (!last.is_ok()) return last.with_context(str_cat(f.path, " (after ", o_.retries + 1, " attempts)"));
    fs::rename(part, blob, ec);
    if (ec) return failed_precondition(str_cat(blob.string(), ": cannot move the download into place: ", ec.message()));
    file_done(f, false);
    return Status::ok();
  }

  // Sleeps retry_delay · 2^(attempt−1) (at most 30 s) unless the pull stops first.
  bool wait_before_retry(int attempt) {
    auto delay = o_.retry_delay * (1LL << std::min(attempt - 1, 5));
    delay = std::min<std::chrono::milliseconds>(delay, std::chrono::seconds(30));
    const auto until = std::chrono::steady_clock::now() + delay;
    while (std::chrono::steady_clock::now() < until) {
      if (stopped()) return false;
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(delay, std::chrono::milliseconds(50)));
    }
    return !stopped();
  }

  // One transfer: continues `part` from its end, then checks size and checksum.
  Status fetch_once(const std::string& url, const RepoFile& f, const fs::path& part) {
    Fd fd{::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)};
    if (fd.fd < 0) return failed_precondition(str_cat(part.string(), ": cannot open: ", errno_text(errno)));
    int64_t have = file_size_or_zero(part);
    Checksum sum(f);
    sum.reset();
    if (have > f.size) have = 0;  // not this file: start over
    if (have > 0) KILN_RETURN_IF_ERROR(hash_prefix(fd.fd, have, sum, part));
    if (::ftruncate(fd.fd, have) != 0) return failed_precondition(str_cat(part.string(), ": ", errno_text(errno)));
    if (::lseek(fd.fd, have, SEEK_SET) < 0) return failed_precondition(str_cat(part.string(), ": ", errno_text(errno)));
    int64_t at = have;
    RangeSink sink;
    sink.start = [&](int64_t start) -> Status {
      if (start == at) return Status::ok();
      // The server sent the whole file instead of the rest: drop the part and take it all.
      add_bytes(-at);
      at = 0;
      sum.reset();
      if (::ftruncate(fd.fd, 0) != 0 || ::lseek(fd.fd, 0, SEEK_SET) < 0) {
        return failed_precondition(str_cat(part.string(), ": ", errno_text(errno)));
      }
      return Status::ok();
    };
    sink.write = [&](const char* data, size_t n) -> Status {
      if (at + static_cast<int64_t>(n) > f.size) {
        return data_loss(str_cat("the Hub sent more than the ", f.size, " bytes its file list gives"));
      }
      KILN_RETURN_IF_ERROR(write_all(fd.fd, data, n, part));
      sum.update(data, n);
      at += static_cast<int64_t>(n);
      downloaded_ += static_cast<int64_t>(n);
      add_bytes(static_cast<int64_t>(n));
      return Status::ok();
    };
    // A part that is already whole needs no transfer (a range past the end would answer 416).
    if (have < f.size || f.size == 0) {
      Status s = http_get_range(url, http_options(), have, sink);
      if (s.code() == StatusCode::kOutOfRange) {
        // 416: the part does not fit the file on the Hub; start it over on the next attempt.
        add_bytes(-at);
        if (::ftruncate(fd.fd, 0) != 0) return failed_precondition(str_cat(part.string(), ": ", errno_text(errno)));
        return s;
      }
      if (s.code() == StatusCode::kDataLoss) {
        add_bytes(-at);
        std::error_code ec;
        fs::remove(part, ec);
        return s;
      }
      KILN_RETURN_IF_ERROR(s);
    }
    if (at != f.size) {
      return unavailable(str_cat("the transfer ended after ", at, " of ", f.size, " bytes"));
    }
    if (::fsync(fd.fd) != 0) return resource_exhausted(str_cat(part.string(), ": fsync failed: ", errno_text(errno)));
    const std::string got = sum.hex();
    if (got != sum.expected()) {
      // A corrupt part must not be continued by the next pull: delete it.
      add_bytes(-at);
      std::error_code ec;
      fs::remove(part, ec);
      return data_loss(str_cat("checksum mismatch: the Hub gives ", sum.name(), " ", sum.expected(),
                               ", the downloaded bytes have ", got, " (the download was deleted; pull again)"));
    }
    return Status::ok();
  }

  Result<fs::path> publish(const RepoRef& ref, const std::string& commit, const std::vector<RepoFile>& files) {
    const fs::path snapshot = repo_dir_ / "snapshots" / commit;
    std::error_code ec;
    for (const auto& f : files) {
      const fs::path link = snapshot / f.path;
      fs::create_directories(link.parent_path(), ec);
      if (ec) return failed_precondition(str_cat(link.parent_path().string(), ": cannot create: ", ec.message()));
      const fs::path target = blob_link_target(f.path, blob_name(f));
      std::error_code read_ec;
      if (fs::is_symlink(link, read_ec) && fs::read_symlink(link, read_ec) == target) continue;
      fs::remove(link, ec);
      fs::create_symlink(target, link, ec);
      if (ec) return failed_precondition(str_cat(link.string(), ": cannot link: ", ec.message()));
    }
    // A branch or tag points at the commit (huggingface_hub writes no ref for a commit id).
    if (ref.revision != commit) {
      const fs::path refp = repo_dir_ / "refs" / ref.revision;
      fs::create_directories(refp.parent_path(), ec);
      if (ec) return failed_precondition(str_cat(refp.parent_path().string(), ": cannot create: ", ec.message()));
      KILN_RETURN_IF_ERROR(write_file_atomic(refp, commit));
    }
    return snapshot;
  }

  const PullOptions& o_;
  PullObserver* observer_;
  fs::path repo_dir_;
  std::mutex mu_;  // progress_ and the observer's calls
  PullProgress progress_;
  std::chrono::steady_clock::time_point last_progress_{};
  std::atomic<int64_t> downloaded_{0};
  std::atomic<bool> failed_{false};
};

}  // namespace

Status check_free_space(int64_t missing, int64_t free_bytes, const fs::path& dir, std::string_view repo) {
  if (missing + kFreeSpaceMargin <= free_bytes) return Status::ok();
  return resource_exhausted(str_cat("not enough free space for ", repo, ": it needs ",
                                    format_bytes(static_cast<double>(missing)), " more (and ",
                                    format_bytes(static_cast<double>(kFreeSpaceMargin)), " to spare) in ", dir.string(),
                                    ", which has ", format_bytes(static_cast<double>(free_bytes)), " free"));
}

Result<PullResult> pull(const RepoRef& ref, const PullOptions& options, PullObserver* observer) {
  KILN_RETURN_IF_ERROR(check_repo_id(ref.repo));
  KILN_RETURN_IF_ERROR(check_revision(ref.revision));
  Puller p(options, observer);
  return p.run(ref);
}

Status remove_repo(const fs::path& hub, std::string_view repo) {
  KILN_RETURN_IF_ERROR(check_repo_id(repo));
  const fs::path dir = repo_cache_dir(hub, repo);
  std::error_code ec;
  if (!fs::exists(dir, ec)) return not_found(str_cat(repo, " is not in the Hugging Face cache ", hub.string()));
  KILN_ASSIGN_OR_RETURN(auto lock, RepoLock::acquire(hub, repo));
  fs::remove_all(dir, ec);
  if (ec) return failed_precondition(str_cat(dir.string(), ": cannot remove: ", ec.message()));
  return Status::ok();
}

}  // namespace kiln::hub
