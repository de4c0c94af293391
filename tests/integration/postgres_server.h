// A real PostgreSQL server for tests: initdb + pg_ctl (Debian's postgresql package) into a
// temporary directory, on a free loopback port, trust authentication, removed at the end. As
// root, initdb refuses to run, so the server then runs as the unprivileged `nobody` (runuser).
// Nothing is mocked: the job store talks to it through libpq like it would in production.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace kiln::testing {

inline std::string postgres_bin_dir() {
  if (const char* d = std::getenv("KILN_PG_BIN"); d != nullptr) return d;
  for (int v = 17; v >= 13; --v) {
    std::string dir = "/usr/lib/postgresql/" + std::to_string(v) + "/bin";
    if (std::filesystem::exists(dir + "/initdb")) return dir;
  }
  return "";
}

// A port nobody listens on now (the kernel's pick for a socket bound to port 0).
inline int free_tcp_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

class PostgresServer {
 public:
  // Creates the cluster and starts it; error() says why when it fails.
  bool start() {
    bin_ = postgres_bin_dir();
    if (bin_.empty()) return fail("no PostgreSQL server binaries (install Debian's postgresql package)");
    char tmpl[] = "/tmp/kiln_pg_XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return fail("mkdtemp failed");
    root_ = tmpl;
    std::filesystem::permissions(root_, std::filesystem::perms::all);  // the server user creates files here
    as_ = geteuid() == 0 ? "runuser -u nobody -- " : "";
    port_ = free_tcp_port();
    if (!run(bin_ + "/initdb -D " + data() + " -A trust -U kiln -E UTF8 --no-sync > " + root_ + "/initdb.log 2>&1")) {
      return fail("initdb failed: see " + root_ + "/initdb.log");
    }
    if (!resume()) return false;
    return run(bin_ + "/psql -h 127.0.0.1 -p " + std::to_string(port_) +
               " -U kiln -d postgres -q -c 'CREATE DATABASE kiln' > /dev/null 2>&1") ||
           fail("CREATE DATABASE failed");
  }

  // Starts a server that was stopped (same data, same port).
  bool resume() {
    const std::string opts = "-p " + std::to_string(port_) + " -k " + root_ + " -c listen_addresses=127.0.0.1 -c fsync=off";
    if (!run(bin_ + "/pg_ctl -D " + data() + " -o '" + opts + "' -l " + root_ + "/server.log -w -t 60 start > /dev/null 2>&1")) {
      return fail("pg_ctl start failed: see " + root_ + "/server.log");
    }
    running_ = true;
    return true;
  }

  // Stops it (fast: open connections are ended, like a database that goes away).
  bool stop() {
    if (!running_) return true;
    running_ = false;
    return run(bin_ + "/pg_ctl -D " + data() + " -m fast -w -t 60 stop > /dev/null 2>&1");
  }

  ~PostgresServer() {
    stop();
    if (!root_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(root_, ec);
    }
  }

  std::string url(const std::string& db = "kiln") const {
    return "postgresql://kiln@127.0.0.1:" + std::to_string(port_) + "/" + db;
  }
  int port() const { return port_; }
  const std::string& error() const { return error_; }

 private:
  std::string data() const { return root_ + "/data"; }
  bool run(const std::string& cmd) const { return std::system((as_ + cmd).c_str()) == 0; }
  bool fail(std::string m) {
    error_ = std::move(m);
    return false;
  }

  std::string bin_, root_, as_, error_;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace kiln::testing
