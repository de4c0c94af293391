// Starts the real `kiln serve` binary on a free loopback port for integration tests, and stops it.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace kiln::testing {

// The random-weight model directory the CMake test registration passes in; empty when unset.
inline std::string test_model_dir() {
  const char* d = std::getenv("KILN_TEST_MODEL_DIR");
  return d != nullptr ? d : "";
}

// A per-process path in the temp directory: "<dir>/kiln_<prefix>_<name>_<pid>".
inline std::string temp_test_path(const std::string& prefix, const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("kiln_" + prefix + "_" + name + "_" + std::to_string(getpid()))).string();
}

class ServerProcess {
 public:
  // Runs `binary serve --host 127.0.0.1 --port 0 <args>` with stderr to `log_path`, and waits
  // for the "serving ... on http://127.0.0.1:PORT" line.
  bool start(const std::string& binary, const std::vector<std::string>& args, const std::string& log_path,
             int timeout_ms = 60000) {
    log_path_ = log_path;
    std::vector<std::string> argv = {binary, "serve", "--host", "127.0.0.1", "--port", "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawn(&pid_, binary.c_str(), &fa, nullptr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    static const std::regex kListening(R"(on http://127\.0\.0\.1:(\d+))");
    while (std::chrono::steady_clock::now() < deadline) {
      std::smatch m;
      std::string text = log();
      if (std::regex_search(text, m, kListening)) {
        port_ = std::atoi(m[1].str().c_str());
        return true;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  ~ServerProcess() { kill_now(); }

  int port() const { return port_; }
  std::string log() const {
    std::ifstream f(log_path_);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  // Sends `sig` and waits up to `timeout_ms` for the exit; returns the exit code, -1 if it did
  // not exit in time (then it is killed), or 128+signal when a signal ended it.
  int stop(int sig = SIGTERM, int timeout_ms = 30000) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill_now();
    return -1;
  }

  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_path_;
};

}  // namespace kiln::testing
