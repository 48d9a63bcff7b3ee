#include "nats/embedded_server.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "engine/log/log.hpp"

namespace wsgw::nats {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kNotFound =
    "nats-server not found: install Debian's nats-server package or set nats.embedded.binary";
constexpr milliseconds kStopGrace{5000};
constexpr milliseconds kPoll{10};

// Owns one file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

std::string errno_text(int e) {
  return std::strerror(e);
}

// Moves `fd` to a number >= 3 (close-on-exec kept), so the child's dup2 onto
// 0..2 can never clobber it even when the gateway runs with a closed stdio fd.
UniqueFd high_fd(int fd) {
  if (fd < 0 || fd >= 3) return UniqueFd(fd);
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  return UniqueFd(moved);
}

bool mkdir_p(const std::string& path, std::string& error) {
  std::string cur;
  std::size_t i = 0;
  while (i <= path.size()) {
    std::size_t slash = path.find('/', i);
    if (slash == std::string::npos) slash = path.size();
    cur = path.substr(0, slash);
    i = slash + 1;
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0750) != 0 && errno != EEXIST) {
      error = "cannot create nats.embedded.data_dir " + path + ": " + errno_text(errno);
      return false;
    }
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    error = "nats.embedded.data_dir " + path + " is not a directory";
    return false;
  }
  return true;
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// execv does no PATH search, so do it here (before fork). Debian's package
// puts nats-server in /usr/sbin, which a non-root user's PATH usually lacks.
std::optional<std::string> resolve_binary(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (is_executable_file(name)) return name;
    return std::nullopt;
  }
  const char* env = std::getenv("PATH");
  std::string path = env != nullptr && *env != '\0' ? env : "/usr/local/bin:/usr/bin:/bin";
  path += ":/usr/sbin:/usr/local/sbin:/sbin";
  std::size_t i = 0;
  while (i <= path.size()) {
    std::size_t colon = path.find(':', i);
    if (colon == std::string::npos) colon = path.size();
    std::string dir = path.substr(i, colon - i);
    i = colon + 1;
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    if (is_executable_file(candidate)) return candidate;
  }
  return std::nullopt;
}

std::optional<std::string> read_file(const std::string& path, std::size_t max = 1 << 16) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  std::string out;
  char buf[4096];
  while (out.size() < max) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// The last `lines` non-empty lines of a log file, joined with " | ", for an
// error message; "(log is empty)" when there is nothing.
std::string log_tail(const std::string& path, std::size_t lines = 6) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return "(no log at " + path + ")";
  constexpr off_t kWindow = 8192;
  off_t size = ::lseek(fd.get(), 0, SEEK_END);
  off_t from = size > kWindow ? size - kWindow : 0;
  std::string text(static_cast<std::size_t>(size - from), '\0');
  ssize_t n = ::pread(fd.get(), text.data(), text.size(), from);
  text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  std::vector<std::string_view> all;
  std::string_view sv(text);
  while (!sv.empty()) {
    std::size_t nl = sv.find('\n');
    std::string_view line = sv.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) all.push_back(line);
    if (nl == std::string_view::npos) break;
    sv.remove_prefix(nl + 1);
  }
  if (all.empty()) return "(log is empty)";
  std::string out;
  for (std::size_t k = all.size() > lines ? all.size() - lines : 0; k < all.size(); ++k) {
    if (!out.empty()) out += " | ";
    out += all[k];
  }
  return out;
}

std::vector<std::string> proc_cmdline(pid_t pid) {
  std::vector<std::string> args;
  auto raw = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  if (!raw) return args;
  std::size_t i = 0;
  while (i < raw->size()) {
    std::size_t end = raw->find('\0', i);
    if (end == std::string::npos) end = raw->size();
    args.emplace_back(raw->substr(i, end - i));
    i = end + 1;
  }
  return args;
}

// Alive and not a zombie. kill() alone is not enough: in a container whose
// init does not reap, an exited orphan stays a zombie forever.
bool process_alive(pid_t pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat", 512);
  if (!stat) return true;  // no /proc: trust kill()
  std::size_t paren = stat->rfind(')');
  return !(paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] == 'Z');
}

std::string basename_of(std::string_view p) {
  std::size_t slash = p.rfind('/');
  return std::string(slash == std::string_view::npos ? p : p.substr(slash + 1));
}

enum class PidOwner { none, ours, other_nats };

std::optional<pid_t> parse_pid(std::string_view text) {
  std::string t(text);
  char* end = nullptr;
  long v = std::strtol(t.c_str(), &end, 10);
  if (end == t.c_str() || v <= 0 || v > INT_MAX) return std::nullopt;
  return static_cast<pid_t>(v);
}

// What `pid` (taken from a pid or lock file) is now: nothing alive (a stale
// file), a nats-server running this very config (an orphan of a previous
// gateway of this data_dir), or some other nats-server. A live process that
// is no nats-server is a recycled pid and counts as nothing.
PidOwner classify(pid_t pid, const std::string& config_path, const std::string& binary_path) {
  if (pid == ::getpid() || !process_alive(pid)) return PidOwner::none;
  auto args = proc_cmdline(pid);
  for (const auto& a : args) {
    if (a == config_path) return PidOwner::ours;
  }
  if (args.empty()) return PidOwner::other_nats;  // cannot tell: be safe
  std::string exe = basename_of(args[0]);
  if (exe.find("nats-server") != std::string::npos || exe == basename_of(binary_path)) {
    return PidOwner::other_nats;
  }
  return PidOwner::none;
}

// Ports files end in "_<pid>.ports"; the prefix is the server's argv[0]
// basename. `pid` < 0 matches every ports file.
std::vector<std::string> ports_files(const std::string& dir, pid_t pid) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  const std::string suffix = pid < 0 ? ".ports" : "_" + std::to_string(pid) + ".ports";
  while (dirent* e = ::readdir(d)) {
    std::string_view name(e->d_name);
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
      out.push_back(dir + "/" + std::string(name));
    }
  }
  ::closedir(d);
  return out;
}

// Port of the first URL in `"key":["scheme://host:port",...]`; 0 if absent.
std::uint16_t first_url_port(std::string_view json, std::string_view key) {
  std::string needle = "\"" + std::string(key) + "\"";
  std::size_t k = json.find(needle);
  if (k == std::string_view::npos) return 0;
  std::size_t q1 = json.find('"', json.find('[', k + needle.size()));
  if (q1 == std::string_view::npos) return 0;
  std::size_t q2 = json.find('"', q1 + 1);
  if (q2 == std::string_view::npos) return 0;
  std::string_view url = json.substr(q1 + 1, q2 - q1 - 1);
  std::size_t colon = url.rfind(':');
  if (colon == std::string_view::npos) return 0;
  unsigned long port = 0;
  std::size_t digits = 0;
  for (char c : url.substr(colon + 1)) {
    if (c < '0' || c > '9' || ++digits > 5) return 0;
    port = port * 10 + static_cast<unsigned long>(c - '0');
  }
  return port > 0 && port <= 65535 ? static_cast<std::uint16_t>(port) : 0;
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Whether 127.0.0.1:port can be bound now, with SO_REUSEADDR like Go's
// listener, so a TIME_WAIT leftover does not count as "in use".
bool port_bindable(std::uint16_t port) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return true;  // cannot tell; let nats-server report it
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = loopback(port);
  return ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

// Readiness probe: a NATS server greets every client with "INFO {...}\r\n".
bool answers_info(std::uint16_t port, milliseconds wait) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return false;
  sockaddr_in a = loopback(port);
  // Loopback connect completes (or is refused) at once; no need for non-blocking.
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
  std::string got;
  const auto deadline = Clock::now() + wait;
  while (got.size() < 5) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{s.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    char buf[512];
    ssize_t n = ::read(s.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got.compare(0, 5, "INFO ") == 0;
}

// Strings go into the generated config between double quotes; refuse what
// would need escaping rather than risk a config that means something else.
bool config_safe(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') return false;
  }
  return true;
}

bool write_file(const std::string& path, const std::string& text, std::string& error) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!fd) {
    error = "cannot write " + path + ": " + errno_text(errno);
    return false;
  }
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = "cannot write " + path + ": " + errno_text(errno);
      return false;
    }
    off += static_cast<std::size_t>(n);
  }
  return true;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

milliseconds left_until(Clock::time_point deadline) {
  auto d = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  return d.count() > 0 ? d : milliseconds(0);
}

}  // namespace

std::unique_ptr<EmbeddedServer> EmbeddedServer::start(const EmbeddedOptions& opt,
                                                      std::string& error) {
  error.clear();
  const auto t0 = Clock::now();
  const auto deadline = t0 + milliseconds(opt.start_timeout_ms);
  if (opt.start_timeout_ms == 0) {
    error = "nats.embedded.start_timeout_ms must be > 0";
    return nullptr;
  }
  if (opt.server_name.empty() || !config_safe(opt.server_name) ||
      opt.server_name.find_first_of(" \t") != std::string::npos) {
    error = "embedded nats server_name \"" + opt.server_name +
            "\" must be non-empty without spaces, quotes or backslashes";
    return nullptr;
  }
  if (opt.data_dir.empty()) {
    error = "nats.embedded.data_dir is empty";
    return nullptr;
  }

  auto binary = opt.binary.empty() ? std::nullopt : resolve_binary(opt.binary);
  if (!binary) {
    error = std::string(kNotFound) + " (looked for \"" + opt.binary + "\")";
    return nullptr;
  }

  if (!mkdir_p(opt.data_dir, error)) return nullptr;
  char* real = ::realpath(opt.data_dir.c_str(), nullptr);
  if (real == nullptr) {
    error = "cannot resolve nats.embedded.data_dir " + opt.data_dir + ": " + errno_text(errno);
    return nullptr;
  }
  const std::string dir = real;
  std::free(real);
  if (!config_safe(dir)) {
    error = "nats.embedded.data_dir " + dir + " contains quotes, backslashes or control characters";
    return nullptr;
  }

  std::unique_ptr<EmbeddedServer> srv(new EmbeddedServer());
  srv->data_dir_ = dir;
  srv->log_path_ = dir + "/nats-server.log";
  srv->pid_path_ = dir + "/nats-server.pid";
  const std::string config_path = dir + "/nats-server.conf";
  const std::string lock_path = dir + "/nats-server.lock";

  // flock, not the pid file, is what makes two gateways starting at the same
  // moment exclusive. O_CLOEXEC: nats-server must not inherit (and so keep)
  // the lock; it is released when this object stops or the gateway dies.
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640));
  if (!lock) {
    error = "cannot open " + lock_path + ": " + errno_text(errno);
    return nullptr;
  }
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    error = "nats.embedded.data_dir " + dir +
            " is in use by another gateway's embedded nats-server (lock " + lock_path +
            " is held): give each gateway its own data_dir";
    return nullptr;
  }

  // The lock does not cover a server whose gateway died (SIGKILL): PDEATHSIG
  // sends it SIGTERM, but it may still be flushing JetStream when a restarted
  // gateway gets here, and it may already have removed its pid file. So the
  // lock file records our child's pid too. Wait (bounded) for such an orphan
  // of our own config; refuse any other live nats-server using this pid file.
  std::vector<std::pair<pid_t, const std::string*>> candidates;  // pid, file naming it
  char lock_text[32] = {};
  if (::pread(lock.get(), lock_text, sizeof lock_text - 1, 0) > 0) {
    if (auto p = parse_pid(lock_text)) candidates.emplace_back(*p, &lock_path);
  }
  if (auto text = read_file(srv->pid_path_, 64)) {
    if (auto p = parse_pid(*text)) candidates.emplace_back(*p, &srv->pid_path_);
  }
  for (const auto& [other, source] : candidates) {
    PidOwner owner = classify(other, config_path, *binary);
    // The lock file only ever names our own child: any other process with
    // that pid is a reuse after the child is long gone.
    if (source == &lock_path && owner == PidOwner::other_nats) owner = PidOwner::none;
    if (owner == PidOwner::ours) {
      const auto orphan_deadline = std::min(deadline, Clock::now() + kStopGrace);
      while (process_alive(other) && Clock::now() < orphan_deadline) {
        std::this_thread::sleep_for(kPoll);
      }
      owner = process_alive(other) ? PidOwner::other_nats : PidOwner::none;
    }
    if (owner != PidOwner::none) {
      error = "nats.embedded.data_dir " + dir + " is in use by a running nats-server (pid " +
              std::to_string(other) + ", from " + *source +
              "): stop it or give this gateway its own data_dir";
      return nullptr;
    }
  }
  // Stale files of a server that did not shut down cleanly. A leftover ports
  // file would otherwise be mistaken for the new server's.
  ::unlink(srv->pid_path_.c_str());
  for (const auto& f : ports_files(dir, -1)) ::unlink(f.c_str());

  if (opt.port != 0 && !port_bindable(opt.port)) {
    error = "nats.embedded.port 127.0.0.1:" + std::to_string(opt.port) +
            " is already in use: choose another port or 0 for any free port";
    return nullptr;
  }

  // port -1 = the OS picks a free port inside nats-server itself, which then
  // reports it in the ports file: no probe-then-bind race.
  std::string conf;
  conf += "# Generated by wsgw for its embedded NATS server at every start: edits are lost.\n";
  conf += "# Loopback only; set nats.url to a real cluster for production.\n";
  conf += "server_name: \"" + opt.server_name + "\"\n";
  conf += "listen: \"127.0.0.1:" + (opt.port != 0 ? std::to_string(opt.port) : "-1") + "\"\n";
  conf += "http: \"127.0.0.1:-1\"\n";
  conf += "pid_file: \"" + srv->pid_path_ + "\"\n";
  conf += "ports_file_dir: \"" + dir + "\"\n";
  conf += "log_file: \"" + srv->log_path_ + "\"\n";
  if (opt.jetstream) {
    // nats-server 2.9 always appends "jetstream" to store_dir.
    conf += "jetstream {\n  store_dir: \"" + dir + "\"\n  max_mem: 64MB\n  max_file: 1GB\n}\n";
  }
  if (!write_file(config_path, conf, error)) return nullptr;

  // One previous log survives a restart (the crash that caused it, usually).
  if (::rename(srv->log_path_.c_str(), (srv->log_path_ + ".1").c_str()) != 0 && errno != ENOENT) {
    error = "cannot rotate " + srv->log_path_ + ": " + errno_text(errno);
    return nullptr;
  }
  // stdout/stderr go to the log too: whatever nats-server prints before it
  // opens log_file (a config error, a Go panic) ends up where we read the tail.
  UniqueFd log_fd =
      high_fd(::open(srv->log_path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
  UniqueFd null_fd = high_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int pipe_fds[2];
  if (!log_fd || !null_fd || ::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    error = "cannot prepare nats-server's stdio in " + dir + ": " + errno_text(errno);
    return nullptr;
  }
  // Exec-status pipe: the child writes errno if execv fails; EOF (the
  // close-on-exec write end vanishing) means execv succeeded.
  UniqueFd exec_r(pipe_fds[0]);
  UniqueFd exec_w = high_fd(pipe_fds[1]);
  if (!exec_w) {
    error = "cannot prepare nats-server's exec pipe: " + errno_text(errno);
    return nullptr;
  }

  // Everything the child touches is prepared here: between fork and exec only
  // async-signal-safe calls are allowed.
  std::vector<std::string> args = {*binary, "-c", config_path};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  const int max_fd = static_cast<int>(std::min<long>(::sysconf(_SC_OPEN_MAX), 1 << 20));
  const int in_fd = null_fd.get(), out_fd = log_fd.get(), err_pipe = exec_w.get();

  const pid_t pid = ::fork();
  if (pid < 0) {
    error = "cannot fork nats-server: " + errno_text(errno);
    return nullptr;
  }
  if (pid == 0) {
    // Child. Die with the gateway; if it died before prctl took effect the
    // reparenting already happened, so check and leave.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    // Own process group: a Ctrl-C at the gateway's terminal reaches only the
    // gateway, which then stops the server in order (after draining).
    ::setpgid(0, 0);
    // The gateway may block or ignore signals (asio signal_set, SIGPIPE);
    // a blocked mask and SIG_IGN survive exec, so reset both.
    ::sigprocmask(SIG_SETMASK, &empty_mask, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
    }
    if (::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(out_fd, 2) < 0) ::_exit(127);
    // Keep the exec pipe on fd 3 (close-on-exec) and close every other fd, so
    // the server holds none of the gateway's sockets or files.
    int status_fd = 3;
    if (err_pipe != 3 && ::dup3(err_pipe, 3, O_CLOEXEC) < 0) status_fd = err_pipe;
    if (status_fd == 3) {
      if (::close_range(4, ~0U, 0) != 0) {
        for (int fd = 4; fd < max_fd; ++fd) ::close(fd);
      }
    }
    ::execv(argv[0], argv.data());
    int e = errno;
    [[maybe_unused]] ssize_t w = ::write(status_fd, &e, sizeof e);
    ::_exit(127);
  }

  // Parent. Same setpgid as the child: whichever runs first wins the race.
  ::setpgid(pid, pid);
  srv->pid_ = pid;
  srv->reaped_ = false;
  // Record the child for the orphan check of the next start (see above).
  const std::string pid_text = std::to_string(pid) + "\n";
  if (::ftruncate(lock.get(), 0) != 0 ||
      ::pwrite(lock.get(), pid_text.data(), pid_text.size(), 0) < 0) {
    WSGW_LOG(warn, "nats_embedded_lock_write_failed")
        .kv("path", lock_path)
        .kv("error", errno_text(errno));
  }
  srv->lock_fd_ = lock.release();
  exec_w.reset();
  log_fd.reset();
  null_fd.reset();

  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(exec_r.get(), &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    srv->stop();
    error = "cannot execute " + *binary + " (nats.embedded.binary): " + errno_text(exec_errno);
    return nullptr;
  }

  while (true) {
    {
      std::lock_guard<std::mutex> g(srv->mu_);
      if (srv->reap_locked(false)) {
        std::string tail = log_tail(srv->log_path_);
        if (opt.port != 0 && tail.find("address already in use") != std::string::npos) {
          error = "nats.embedded.port 127.0.0.1:" + std::to_string(opt.port) +
                  " is already in use: choose another port or 0 for any free port; log: " + tail;
        } else {
          error = "nats-server (" + *binary + ") exited during startup with " +
                  describe_status(srv->wait_status_) + "; last lines of " + srv->log_path_ + ": " +
                  tail;
        }
        return nullptr;  // the child is reaped: the destructor cleans up and unlocks
      }
    }
    if (srv->port_ == 0) {
      for (const auto& f : ports_files(dir, pid)) {
        // The server may still be writing it: an incomplete file parses as
        // zero ports and is read again on the next round.
        auto json = read_file(f);
        if (!json) continue;
        std::uint16_t p = first_url_port(*json, "nats");
        std::uint16_t m = first_url_port(*json, "monitoring");
        if (p != 0 && m != 0) {
          srv->port_ = p;
          srv->monitor_port_ = m;
        }
      }
    }
    auto left = left_until(deadline);
    if (srv->port_ != 0 && answers_info(srv->port_, std::min(left, milliseconds(500)))) {
      break;
    }
    if (left_until(deadline).count() == 0) {
      srv->stop();
      error = "nats-server (" + *binary + ") did not accept connections within " +
              std::to_string(opt.start_timeout_ms) + " ms (nats.embedded.start_timeout_ms); " +
              "last lines of " + srv->log_path_ + ": " + log_tail(srv->log_path_);
      return nullptr;
    }
    std::this_thread::sleep_for(std::min(kPoll, left_until(deadline)));
  }

  srv->started_ = true;
  WSGW_LOG(info, "nats_embedded_started")
      .kv("pid", static_cast<std::int64_t>(pid))
      .kv("url", srv->url())
      .kv("monitor_port", static_cast<unsigned>(srv->monitor_port_))
      .kv("data_dir", dir)
      .kv("jetstream", opt.jetstream)
      .kv("ms", static_cast<std::int64_t>(
                    std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count()));
  return srv;
}

EmbeddedServer::~EmbeddedServer() {
  stop();
}

bool EmbeddedServer::reap_locked(bool block) const {
  if (reaped_) return true;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      wait_status_ = status;
      return true;
    }
    if (r == 0) return false;
    if (errno == EINTR) continue;
    // ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN). Either way the
    // child is gone and its pid must no longer be signalled.
    reaped_ = true;
    return true;
  }
}

void EmbeddedServer::remove_runtime_files() const {
  // nats-server removes these on a clean exit; after SIGKILL or a crash we do,
  // but only the pid file naming our child, never another server's.
  auto text = read_file(pid_path_, 64);
  if (text && std::atol(text->c_str()) == pid_) ::unlink(pid_path_.c_str());
  for (const auto& f : ports_files(data_dir_, pid_)) ::unlink(f.c_str());
}

void EmbeddedServer::stop() {
  std::lock_guard<std::mutex> g(mu_);
  if (lock_fd_ < 0) return;  // already stopped (the lock is released last)
  bool killed = false;
  if (!reap_locked(false)) {
    // Unreaped, so the pid cannot have been reused: signalling it is safe.
    ::kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + kStopGrace;
    while (!reap_locked(false) && Clock::now() < deadline) std::this_thread::sleep_for(kPoll);
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      reap_locked(true);
      killed = true;
    }
  }
  // Also when the child died by itself earlier (running() reaped it).
  remove_runtime_files();
  if (started_) {
    // nats-server exits with status 1 after a clean SIGTERM shutdown.
    WSGW_LOG(info, "nats_embedded_stopped")
        .kv("pid", static_cast<std::int64_t>(pid_))
        .kv("status", describe_status(wait_status_))
        .kv("sigkill", killed);
  }
  // Forget the child's pid (it is reaped) before the flock is released.
  if (::ftruncate(lock_fd_, 0) != 0) {
    // Harmless: the next start ignores a dead pid.
  }
  ::close(lock_fd_);  // releases the flock: the data_dir is free again
  lock_fd_ = -1;
}

std::string EmbeddedServer::url() const {
  return "nats://127.0.0.1:" + std::to_string(port_);
}

bool EmbeddedServer::running() const {
  std::lock_guard<std::mutex> g(mu_);
  return !reap_locked(false);
}

}  // namespace wsgw::nats
