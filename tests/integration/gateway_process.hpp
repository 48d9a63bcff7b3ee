// Test harness for integration tests: runs the real `wsgw` binary as a child
// process on a loopback port the OS picks, keeps every line it logs (JSON, one
// object per line on stderr) and stops it (SIGTERM, then SIGKILL as a last
// resort). Also mints tokens the started gateway accepts, and runs Asio
// operations against a deadline so no test can hang on a read.
#pragma once

#include <sys/types.h>

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace wsgw::itest {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

// Thrown by test helpers that cannot go on (no gateway, no reply, no
// connection); GoogleTest reports the message and ends the test.
struct TestFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parses a JSON object; throws TestFailure for anything else.
boost::json::object parse_object(std::string_view text);

// HS256 secret every test gateway is started with (32+ bytes, as required).
inline constexpr std::string_view kJwtSecret = "integration-test-secret-0123456789abcdef";

// Seconds since the epoch.
std::int64_t unix_now();

// An HS256 token with claims sub=`user`, name="User <user>", iat=now and
// exp=`exp_unix` (in the past: an expired token).
std::string mint_token(std::string_view user, std::int64_t exp_unix,
                       std::string_view secret = kJwtSecret);
// A token of `user` valid for an hour.
std::string valid_token(std::string_view user);

// How a child process ended, from waitpid(2).
struct ExitStatus {
  int raw = 0;
  bool exited() const;
  int code() const;    // exit code when exited()
  int signal() const;  // terminating signal otherwise
  bool clean() const { return exited() && code() == 0; }
  std::string describe() const;
};

// The binary under test: $WSGW_BINARY if set (to run the tests against
// another build), else the wsgw target of this build.
std::string default_binary();

class GatewayProcess {
 public:
  // `args` come after `--server.address=127.0.0.1 --server.port=0
  // --auth.jwt.secret=<kJwtSecret>`, so a test can override any of them.
  explicit GatewayProcess(std::vector<std::string> args, std::string binary = default_binary());
  ~GatewayProcess();  // stop() if still running; never throws
  GatewayProcess(const GatewayProcess&) = delete;
  GatewayProcess& operator=(const GatewayProcess&) = delete;

  // Spawns the binary (in a fresh scratch directory, removed by the
  // destructor) and waits for its `listening` log line. Returns false
  // (see error()) if it cannot start, exits first, or does not listen in time.
  bool start(Millis timeout = 10s);
  const std::string& error() const { return error_; }
  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }

  // True while the child has not exited (reaps it if it has).
  bool alive();
  void send_signal(int sig);
  // Waits up to `timeout` for the child to exit; nullopt if it is still running.
  std::optional<ExitStatus> wait_exit(Millis timeout);
  // SIGTERM, wait up to `grace`, then SIGKILL (to its whole process group).
  // Returns how the child ended.
  ExitStatus stop(Millis grace = 10s);
  bool was_killed() const { return killed_; }

  // The first log line (at or after line `from`) whose JSON object satisfies
  // `pred`, waiting up to `timeout`; nullopt on timeout or when the child's
  // stderr closed without one.
  std::optional<boost::json::object> wait_for_log(
      const std::function<bool(const boost::json::object&)>& pred, Millis timeout,
      std::size_t from = 0);
  // Shorthand: a line with "event" equal to `event`.
  std::optional<boost::json::object> wait_for_event(std::string_view event, Millis timeout,
                                                    std::size_t from = 0);
  std::vector<std::string> lines() const;
  std::size_t line_count() const;
  // The last `n` lines, one per line, for failure messages.
  std::string log_tail(std::size_t n = 40) const;

 private:
  void read_stderr(int fd);
  bool reap(int options);

  std::string binary_;
  std::vector<std::string> args_;
  std::string scratch_;  // the child's working directory
  pid_t pid_ = -1;
  std::optional<ExitStatus> status_;
  bool killed_ = false;
  std::uint16_t port_ = 0;
  std::string error_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  bool eof_ = false;
  std::thread reader_;
};

// A started gateway with `args` (see GatewayProcess); throws TestFailure with
// its log if it does not start.
std::unique_ptr<GatewayProcess> launch_gateway(std::vector<std::string> args);

// Runs `ioc` until `done()` is true or `timeout` passes; returns done().
// Restarts the context first, so it may be called repeatedly.
bool run_until(boost::asio::io_context& ioc, const std::function<bool()>& done, Millis timeout);

// Runs one asynchronous operation against a deadline: `start(handler)`
// initiates it, `ioc` runs until it completes. On timeout `cancel()` must make
// the operation finish (closing its socket does), and the result is
// asio::error::timed_out.
template <class Start>
boost::system::error_code run_op(boost::asio::io_context& ioc, Start&& start,
                                 const std::function<void()>& cancel, Millis timeout) {
  // Shared, so a handler that completes late never writes to a dead frame.
  auto result = std::make_shared<std::optional<boost::system::error_code>>();
  start([result](boost::system::error_code ec, auto&&...) { *result = ec; });
  auto done = [&] { return result->has_value(); };
  if (run_until(ioc, done, timeout)) return **result;
  cancel();
  run_until(ioc, done, 2s);
  return boost::asio::error::timed_out;
}

}  // namespace wsgw::itest
