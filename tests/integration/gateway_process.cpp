#include "tests/integration/gateway_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "engine/auth/jwt_signer.hpp"

namespace wsgw::itest {
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

json::object parse_object(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) throw TestFailure("not a JSON object: " + std::string(text));
  return std::move(v.as_object());
}

std::unique_ptr<GatewayProcess> launch_gateway(std::vector<std::string> args) {
  auto gw = std::make_unique<GatewayProcess>(std::move(args));
  if (!gw->start()) throw TestFailure("gateway did not start: " + gw->error());
  return gw;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string mint_token(std::string_view user, std::int64_t exp_unix, std::string_view secret) {
  json::object claims;
  claims["sub"] = user;
  claims["name"] = "User " + std::string(user);
  claims["iat"] = unix_now();
  claims["exp"] = exp_unix;
  return auth::sign_hs256(claims, secret);
}

std::string valid_token(std::string_view user) {
  return mint_token(user, unix_now() + 3600);
}

bool ExitStatus::exited() const {
  return WIFEXITED(raw);
}
int ExitStatus::code() const {
  return WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
}
int ExitStatus::signal() const {
  return WIFSIGNALED(raw) ? WTERMSIG(raw) : 0;
}

std::string ExitStatus::describe() const {
  if (exited()) return "exited with code " + std::to_string(code());
  if (WIFSIGNALED(raw)) {
    return "killed by signal " + std::to_string(signal()) + " (" + strsignal(signal()) + ")";
  }
  return "unknown wait status " + std::to_string(raw);
}

std::string default_binary() {
  const char* env = std::getenv("WSGW_BINARY");
  return env != nullptr && *env != '\0' ? env : WSGW_BINARY;
}

GatewayProcess::GatewayProcess(std::vector<std::string> args, std::string binary)
    : binary_(std::move(binary)), args_(std::move(args)) {}

GatewayProcess::~GatewayProcess() {
  try {
    stop();
  } catch (...) {
  }
  if (reader_.joinable()) reader_.join();
  if (!scratch_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(scratch_, ignored);
  }
}

bool GatewayProcess::start(Millis timeout) {
  if (pid_ > 0) {
    error_ = "already started";
    return false;
  }
  // Each gateway runs in its own scratch directory, so relative paths in its
  // defaults (the embedded NATS server's data_dir) never collide between
  // gateways running in parallel, nor litter the build tree.
  std::string scratch_template = std::filesystem::temp_directory_path() / "wsgw-itest-XXXXXX";
  if (mkdtemp(scratch_template.data()) == nullptr) {
    error_ = std::string("mkdtemp: ") + std::strerror(errno);
    return false;
  }
  scratch_ = scratch_template;
  std::error_code abs_ec;
  std::vector<std::string> argv_s = {std::filesystem::absolute(binary_, abs_ec).string(),
                                     "--server.address=127.0.0.1", "--server.port=0",
                                     "--auth.jwt.secret=" + std::string(kJwtSecret)};
  argv_s.insert(argv_s.end(), args_.begin(), args_.end());
  // Built before fork: only async-signal-safe calls may run in the child.
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    error_ = std::string("pipe2: ") + std::strerror(errno);
    return false;
  }
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    error_ = std::string("fork: ") + std::strerror(errno);
    close(fds[0]);
    close(fds[1]);
    if (devnull >= 0) close(devnull);
    return false;
  }
  if (pid == 0) {
    // The gateway must not outlive a test binary killed by a ctest timeout.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    // Its own process group, so a last-resort SIGKILL also reaches whatever
    // the gateway started (an embedded NATS server).
    setpgid(0, 0);
    if (chdir(scratch_.c_str()) != 0) _exit(125);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    dup2(fds[1], STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;
  close(fds[1]);
  if (devnull >= 0) close(devnull);
  reader_ = std::thread([this, fd = fds[0]] { read_stderr(fd); });

  auto listening = wait_for_event("listening", timeout);
  if (!listening) {
    // Its stderr may have closed just before it exits: give it a moment.
    auto exited = wait_exit(1s);
    error_ = exited ? "gateway " + exited->describe() + " before listening"
                    : "no `listening` log line within " + std::to_string(timeout.count()) + " ms";
    error_ += "; command:";
    for (auto& a : argv_s) error_ += " " + a;
    error_ += "\nlog:\n" + log_tail();
    return false;
  }
  const json::value* port = listening->if_contains("port");
  if (port == nullptr || !port->is_number()) {
    error_ = "`listening` line without a port: " + json::serialize(*listening);
    return false;
  }
  port_ = static_cast<std::uint16_t>(port->to_number<std::int64_t>());
  return true;
}

void GatewayProcess::read_stderr(int fd) {
  const bool echo = std::getenv("WSGW_ITEST_ECHO") != nullptr;
  std::string partial;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    partial.append(buf, static_cast<std::size_t>(n));
    std::vector<std::string> complete;
    std::size_t start = 0;
    for (std::size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
      complete.push_back(partial.substr(start, nl - start));
    }
    partial.erase(0, start);
    if (complete.empty()) continue;
    if (echo) {
      for (auto& l : complete)
        std::fprintf(stderr, "[wsgw %d] %s\n", static_cast<int>(pid_), l.c_str());
    }
    std::lock_guard lk(mu_);
    for (auto& l : complete) lines_.push_back(std::move(l));
    cv_.notify_all();
  }
  close(fd);
  std::lock_guard lk(mu_);
  if (!partial.empty()) lines_.push_back(std::move(partial));
  eof_ = true;
  cv_.notify_all();
}

bool GatewayProcess::reap(int options) {
  if (status_) return true;
  if (pid_ <= 0) return false;
  int st = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &st, options);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    status_ = ExitStatus{st};
    return true;
  }
  if (r < 0) {
    // Not our child any more (should not happen): treat as gone.
    status_ = ExitStatus{-1};
    return true;
  }
  return false;
}

bool GatewayProcess::alive() {
  return pid_ > 0 && !reap(WNOHANG);
}

void GatewayProcess::send_signal(int sig) {
  if (alive()) kill(pid_, sig);
}

std::optional<ExitStatus> GatewayProcess::wait_exit(Millis timeout) {
  auto deadline = Clock::now() + timeout;
  while (!reap(WNOHANG)) {
    if (pid_ <= 0 || Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
  return status_;
}

ExitStatus GatewayProcess::stop(Millis grace) {
  if (pid_ <= 0) return ExitStatus{-1};
  if (alive()) {
    kill(pid_, SIGTERM);
    if (!wait_exit(grace)) {
      killed_ = true;
      kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
      reap(0);
    }
  }
  return *status_;
}

std::optional<json::object> GatewayProcess::wait_for_log(
    const std::function<bool(const json::object&)>& pred, Millis timeout, std::size_t from) {
  auto deadline = Clock::now() + timeout;
  std::unique_lock lk(mu_);
  for (std::size_t i = from;;) {
    for (; i < lines_.size(); ++i) {
      boost::system::error_code ec;
      json::value v = json::parse(lines_[i], ec);
      if (!ec && v.is_object() && pred(v.as_object())) return std::move(v.as_object());
    }
    if (eof_) return std::nullopt;
    if (cv_.wait_until(lk, deadline) == std::cv_status::timeout && i == lines_.size()) {
      return std::nullopt;
    }
  }
}

std::optional<json::object> GatewayProcess::wait_for_event(std::string_view event, Millis timeout,
                                                           std::size_t from) {
  return wait_for_log(
      [event](const json::object& o) {
        const json::value* e = o.if_contains("event");
        return e != nullptr && e->is_string() && e->as_string() == event;
      },
      timeout, from);
}

std::vector<std::string> GatewayProcess::lines() const {
  std::lock_guard lk(mu_);
  return lines_;
}

std::size_t GatewayProcess::line_count() const {
  std::lock_guard lk(mu_);
  return lines_.size();
}

std::string GatewayProcess::log_tail(std::size_t n) const {
  std::lock_guard lk(mu_);
  std::string out;
  for (std::size_t i = lines_.size() > n ? lines_.size() - n : 0; i < lines_.size(); ++i) {
    out += lines_[i];
    out += '\n';
  }
  return out;
}

bool run_until(boost::asio::io_context& ioc, const std::function<bool()>& done, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  ioc.restart();
  while (!done()) {
    if (ioc.run_one_until(deadline) == 0 && (ioc.stopped() || Clock::now() >= deadline)) break;
  }
  return done();
}

}  // namespace wsgw::itest
