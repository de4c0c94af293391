// kiln pull ORG/NAME[@REVISION] | kiln ls | kiln rm ORG/NAME: models from the Hugging Face Hub in
// the Hugging Face cache that `kiln serve` reads (docs/pull.md).
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "command.h"
#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/hub/progress.h"
#include "kiln/hub/pull.h"
#include "kiln/pool/registry.h"

namespace kiln::app {
namespace {

namespace fs = std::filesystem;

int fail(const char* cmd, const Status& s) {
  std::fprintf(stderr, "kiln %s: %s\n", cmd, s.to_string().c_str());
  return 1;
}

fs::path hub_dir_or_default(const std::string& dir) { return dir.empty() ? pool::default_hf_hub_dir() : fs::path(dir); }

// Shows the pull on stderr: a bar redrawn in place on a terminal, a line every few seconds and
// one per file otherwise (logs, CI).
class ConsoleProgress : public hub::PullObserver {
 public:
  ConsoleProgress(bool tty, bool quiet) : tty_(tty), quiet_(quiet), start_(std::chrono::steady_clock::now()) {}

  void resolved(const hub::PullPlan& p) override {
    if (quiet_) return;
    std::fprintf(stderr, "pull: %s@%s is commit %s: %zu files, %s (%s in the cache already)\n", p.repo.c_str(),
                 p.revision.c_str(), p.commit.c_str(), p.files.size(), format_bytes(static_cast<double>(p.total_bytes)).c_str(),
                 format_bytes(static_cast<double>(p.present_bytes)).c_str());
  }
  void progress(const hub::PullProgress& p) override {
    if (quiet_) return;
    const double t = seconds();
    meter_.add(t, p.done_bytes);
    const double rate = meter_.bytes_per_second();
    if (tty_) {
      std::string line = hub::progress_bar_line(p.done_bytes, p.total_bytes, rate, bar_width());
      std::fprintf(stderr, "\r%s\033[K", line.c_str());
      drawn_ = true;
    } else if (t - last_plain_ >= 5.0 || p.done_bytes == p.total_bytes) {
      last_plain_ = t;
      std::fprintf(stderr, "%s\n", hub::progress_plain_line(p.done_bytes, p.total_bytes, rate).c_str());
    }
  }
  void file_done(const hub::RepoFile& f, bool cached) override {
    if (quiet_) return;
    clear_bar();
    std::fprintf(stderr, "pull: %s %s (%s)\n", cached ? "have" : "got", f.path.c_str(),
                 format_bytes(static_cast<double>(f.size)).c_str());
  }
  void retrying(const hub::RepoFile& f, int attempt, const Status& why) override {
    clear_bar();
    std::fprintf(stderr, "pull: %s: %s; continuing (attempt %d)\n", f.path.c_str(), why.message().c_str(), attempt + 1);
  }
  void finish() { clear_bar(); }

 private:
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  int bar_width() const {
    winsize w{};
    const int cols = ::ioctl(STDERR_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 0 ? w.ws_col : 80;
    return std::clamp(cols - 62, 0, 40);
  }
  void clear_bar() {
    if (!drawn_) return;
    std::fprintf(stderr, "\r\033[K");
    drawn_ = false;
  }
  bool tty_, quiet_;
  bool drawn_ = false;
  double last_plain_ = -1e9;
  std::chrono::steady_clock::time_point start_;
  hub::RateMeter meter_;
};

struct PullArgs {
  std::string ref;
  std::string hub_dir;
  int connections = 4;
  int retries = 5;
  bool quiet = false;
};

int run_pull(const PullArgs& a) {
  auto ref = hub::parse_repo_ref(a.ref);
  if (!ref.is_ok()) return fail("pull", ref.status());
  if (a.connections < 1 || a.connections > 16) return fail("pull", invalid_argument("--connections: 1 to 16"));
  if (a.retries < 0 || a.retries > 100) return fail("pull", invalid_argument("--retries: 0 to 100"));
  hub::PullOptions o;
  o.hub_dir = hub_dir_or_default(a.hub_dir);
  o.endpoint = hub::endpoint_from_environment();
  o.token = hub::token_from_environment();
  o.connections = a.connections;
  o.retries = a.retries;
  o.user_agent = std::string("kiln/") + KILN_VERSION;
  ConsoleProgress progress(::isatty(STDERR_FILENO) == 1, a.quiet);
  auto r = hub::pull(*ref, o, &progress);
  progress.finish();
  if (!r.is_ok()) return fail("pull", r.status());
  std::printf("%s\n", r->snapshot.string().c_str());
  if (!a.quiet) {
    std::fprintf(stderr, "pull: %s@%s ready (%s downloaded); serve it with `kiln serve` (model id %s)\n",
                 ref->repo.c_str(), r->commit.c_str(), format_bytes(static_cast<double>(r->downloaded_bytes)).c_str(),
                 ref->repo.c_str());
  }
  return 0;
}

int64_t dir_bytes(const fs::path& dir) {
  int64_t total = 0;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code e2;
    if (fs::is_regular_file(it->path(), e2)) total += static_cast<int64_t>(fs::file_size(it->path(), e2));
  }
  return total;
}

struct LsArgs {
  std::vector<std::string> models_dirs;
  std::string hub_dir;
};

int run_ls(const LsArgs& a) {
  pool::RegistryScan scan;
  for (const auto& d : a.models_dirs) scan.models_dirs.emplace_back(d);
  if (scan.models_dirs.empty()) scan.models_dirs.push_back(user_data_dir() / "models");
  scan.hf_hub = hub_dir_or_default(a.hub_dir);
  const auto entries = pool::scan_registry(scan);
  if (entries.empty()) {
    std::fprintf(stderr, "kiln ls: no models in %s or the Hugging Face cache %s\n", scan.models_dirs[0].string().c_str(),
                 scan.hf_hub->string().c_str());
    return 0;
  }
  size_t w = 5;
  for (const auto& e : entries) w = std::max(w, e.id.size());
  std::printf("%-*s  %10s  %-10s  %s\n", static_cast<int>(w), "MODEL", "SIZE", "SOURCE", "PATH");
  for (const auto& e : entries) {
    std::printf("%-*s  %10s  %-10s  %s\n", static_cast<int>(w), e.id.c_str(),
                format_bytes(static_cast<double>(dir_bytes(e.dir))).c_str(),
                std::string(pool::model_source_name(e.source)).c_str(), e.dir.string().c_str());
  }
  return 0;
}

struct RmArgs {
  std::string repo;
  std::string hub_dir;
};

int run_rm(const RmArgs& a) {
  const fs::path hub = hub_dir_or_default(a.hub_dir);
  Status s = hub::remove_repo(hub, a.repo);
  if (!s.is_ok()) return fail("rm", s);
  std::fprintf(stderr, "rm: removed %s from %s\n", a.repo.c_str(), hub.string().c_str());
  return 0;
}

void add_hub_dir(CLI::App& sub, std::string& dir) {
  sub.add_option("--hub-dir", dir,
                 "The Hugging Face cache (default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)");
}

}  // namespace

KILN_REGISTER_COMMAND(kPull, "pull", "Download a model from the Hugging Face Hub into the Hugging Face cache",
                      [](CLI::App& sub) -> std::function<int()> {
  auto a = std::make_shared<PullArgs>();
  sub.add_option("model", a->ref, "ORG/NAME or ORG/NAME@REVISION (a branch, tag or commit; default main)")->required();
  add_hub_dir(sub, a->hub_dir);
  sub.add_option("--connections", a->connections, "Files downloaded at once")->capture_default_str();
  sub.add_option("--retries", a->retries, "Further attempts of a file after a dropped connection (each resumes)")
      ->capture_default_str();
  sub.add_flag("--quiet", a->quiet, "Print only the snapshot's path");
  sub.footer("Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN (or HF_TOKEN_PATH, $HF_HOME/token).");
  return [a] { return run_pull(*a); };
});

KILN_REGISTER_COMMAND(kLs, "ls", "List the models kiln can serve from disk, with size and place",
                      [](CLI::App& sub) -> std::function<int()> {
  auto a = std::make_shared<LsArgs>();
  // As `kiln serve` takes it, so that ls lists what serve finds.
  sub.add_option("--models-dir", a->models_dirs, "Directories of models (NAME/ or ORG/NAME/; default: DATA_DIR/models)")
      ->envname("KILN_MODELS_DIR")
      ->delimiter(',');
  add_hub_dir(sub, a->hub_dir);
  return [a] { return run_ls(*a); };
});

KILN_REGISTER_COMMAND(kRm, "rm", "Remove a pulled model from the Hugging Face cache",
                      [](CLI::App& sub) -> std::function<int()> {
  auto a = std::make_shared<RmArgs>();
  sub.add_option("model", a->repo, "ORG/NAME")->required();
  add_hub_dir(sub, a->hub_dir);
  return [a] { return run_rm(*a); };
});

}  // namespace kiln::app
