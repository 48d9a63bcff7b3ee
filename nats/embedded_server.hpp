// The embedded NATS server (DESIGN.md §5 "Embedded default"): with
// nats.url = "embedded" the gateway runs Debian's nats-server as a child
// process on loopback, with JetStream in a state directory, and stops it on
// exit. Production points nats.url at a real cluster instead.
//
// Layout of data_dir (created if missing):
//   nats-server.conf    generated config (rewritten at every start)
//   nats-server.log     the server's log, plus its stdout/stderr (previous run: .log.1)
//   nats-server.pid     written by the server; checked to refuse a second server
//   nats-server.lock    flock held by the owning gateway while its server runs; holds the
//                       child pid so a restarted gateway can wait for an orphan to exit
//   <exe>_<pid>.ports   written by the server once listening ("nats"/"monitoring" URLs)
//   jetstream/          JetStream store (nats-server appends "jetstream" to store_dir)
//
// Call order: start() must run on a thread that outlives the server, in
// practice the main thread before any other thread exists: the child gets
// PR_SET_PDEATHSIG, which Linux fires when the *forking thread* exits. The
// process must not set SIGCHLD to SIG_IGN (children would be auto-reaped and
// stop() could not tell the server's exit from a lost child).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace wsgw::nats {

struct EmbeddedOptions {
  // Looked up in PATH when it has no '/', then in /usr/sbin and
  // /usr/local/sbin (Debian installs nats-server in /usr/sbin, which is not in
  // an ordinary user's PATH).
  std::string binary = "nats-server";
  // Created (mkdir -p) if missing; see the layout above.
  std::string data_dir = "var/nats";
  std::uint16_t port =
      0;  // 0 = any free port (chosen by nats-server, read back from the ports file)
  bool jetstream = true;
  std::uint32_t start_timeout_ms = 10000;
  std::string server_name = "wsgw-embedded";  // no whitespace, quotes or backslashes
};

// One nats-server child process. Not copyable or movable; all members may be
// called from any thread (a mutex serialises them; stop() holds it while it
// waits for the child, so running() blocks during a stop).
class EmbeddedServer {
 public:
  // Starts nats-server listening on 127.0.0.1 only (client port and HTTP
  // monitoring port), with JetStream when enabled, and returns once it
  // answers a client connection with its INFO line. On failure returns
  // nullptr and sets `error` to one line naming the cause: binary missing,
  // data_dir unusable or owned by another server, port in use, early exit
  // (with the last lines of its log), or timeout (start_timeout_ms, which
  // bounds the whole call). A failed start leaves no child behind.
  static std::unique_ptr<EmbeddedServer> start(const EmbeddedOptions& opt, std::string& error);

  ~EmbeddedServer();  // calls stop()
  EmbeddedServer(const EmbeddedServer&) = delete;
  EmbeddedServer& operator=(const EmbeddedServer&) = delete;

  // SIGTERM (nats-server shuts down cleanly, flushing JetStream), waits up to
  // 5 s, then SIGKILL; reaps the child and releases the data_dir lock.
  // Idempotent; blocks at most ~5 s.
  void stop();

  std::string url() const;  // "nats://127.0.0.1:<port>"
  std::uint16_t port() const { return port_; }
  std::uint16_t monitor_port() const { return monitor_port_; }  // /varz, /subsz, /connz, /healthz
  int pid() const { return static_cast<int>(pid_); }  // stays valid for logging after stop()
  // True while the child has not exited (waitpid WNOHANG; reaps it if it has).
  bool running() const;

  const std::string& data_dir() const { return data_dir_; }  // absolute
  const std::string& log_path() const { return log_path_; }

 private:
  EmbeddedServer() = default;
  // Reaps the child if it has exited; true when it is gone. Needs mu_.
  bool reap_locked(bool block) const;
  void remove_runtime_files() const;

  mutable std::mutex mu_;
  pid_t pid_ = -1;
  mutable bool reaped_ = true;
  mutable int wait_status_ = 0;  // from waitpid, once reaped
  bool started_ = false;         // start() succeeded (only then stop() logs)
  int lock_fd_ = -1;             // flock on data_dir/nats-server.lock, held while the child may run
  std::uint16_t port_ = 0;
  std::uint16_t monitor_port_ = 0;
  std::string data_dir_;
  std::string log_path_;
  std::string pid_path_;
};

}  // namespace wsgw::nats
