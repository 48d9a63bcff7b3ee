// EmbeddedServer against the real nats-server binary (Debian's package):
// start on free and fixed ports, a NATS round trip with nats.c, monitoring
// over HTTP, JetStream store, stop/destructor, and every documented failure.
#include "nats/embedded_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

extern char** environ;

namespace fs = std::filesystem;
using wsgw::nats::EmbeddedOptions;
using wsgw::nats::EmbeddedServer;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr const char* kHelperEnv = "WSGW_EMBEDDED_HELPER_DIR";

// Helper mode for the orphan test: the test re-executes this binary with
// kHelperEnv set; it starts a server there, prints the server's pid and waits
// to be SIGKILLed (bounded: it exits by itself after 60 s). Runs during
// static initialisation, before gtest parses anything.
bool run_helper_if_requested() {
  const char* dir = std::getenv(kHelperEnv);
  if (dir == nullptr) return false;
  EmbeddedOptions opt;
  opt.data_dir = dir;
  std::string err;
  auto srv = EmbeddedServer::start(opt, err);
  if (!srv) {
    std::fprintf(stderr, "helper: %s\n", err.c_str());
    std::_Exit(2);
  }
  std::printf("%d\n", srv->pid());
  std::fflush(stdout);
  std::this_thread::sleep_for(60s);
  std::_Exit(0);  // skip the destructor on purpose: the server must die by PDEATHSIG
}
const bool kIsHelper = run_helper_if_requested();

// Closes nats.c's library threads at exit so ASan sees no leak from them.
class NatsLibrary : public ::testing::Environment {
 public:
  void TearDown() override { nats_CloseAndWait(2000); }
};
const auto* const kNatsEnv = ::testing::AddGlobalTestEnvironment(new NatsLibrary);

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "wsgw-embedded-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    if (p == nullptr) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

bool can_connect(std::uint16_t port) {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback(port);
  return ::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

// A port that was free a moment ago (the kernel's pick for port 0).
std::uint16_t free_port() {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback(0);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return 0;
  socklen_t len = sizeof a;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// GET over a plain socket with HTTP/1.0 (the server closes after the
// response); bounded by a 5 s deadline.
std::string http_get(std::uint16_t port, const std::string& path) {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback(port);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return {};
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::write(s.get(), req.data(), req.size()) != static_cast<ssize_t>(req.size())) return {};
  std::string out;
  const auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline) {
    pollfd p{s.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(s.get(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// Gone = no such process, or a zombie nobody reaps (a container's init may not).
bool process_gone(int pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

bool wait_gone(int pid, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (process_gone(pid)) return true;
    std::this_thread::sleep_for(10ms);
  }
  return process_gone(pid);
}

EmbeddedOptions options_in(const TempDir& dir) {
  EmbeddedOptions opt;
  opt.data_dir = dir.str() + "/nats";  // not yet existing: start() must create it
  opt.start_timeout_ms = 10000;
  return opt;
}

// Publish/subscribe round trip through the server with nats.c.
void expect_round_trip(const std::string& url) {
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, url.c_str()), NATS_OK) << nats_GetLastError(nullptr);
  natsSubscription* sub = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&sub, nc, "wsgw.test.echo"), NATS_OK);
  ASSERT_EQ(natsConnection_Flush(nc), NATS_OK);
  ASSERT_EQ(natsConnection_PublishString(nc, "wsgw.test.echo", "hello-embedded"), NATS_OK);
  natsMsg* msg = nullptr;
  ASSERT_EQ(natsSubscription_NextMsg(&msg, sub, 5000), NATS_OK);
  EXPECT_EQ(std::string(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))),
            "hello-embedded");
  natsMsg_Destroy(msg);
  natsSubscription_Destroy(sub);
  natsConnection_Destroy(nc);
}

TEST(EmbeddedServer, StartsOnFreePortWithMonitoringAndJetStream) {
  TempDir dir;
  std::string err;
  auto srv = EmbeddedServer::start(options_in(dir), err);
  ASSERT_NE(srv, nullptr) << err;
  EXPECT_TRUE(err.empty());
  EXPECT_TRUE(srv->running());
  EXPECT_GT(srv->pid(), 0);
  ASSERT_NE(srv->port(), 0);
  ASSERT_NE(srv->monitor_port(), 0);
  EXPECT_NE(srv->port(), srv->monitor_port());
  EXPECT_EQ(srv->url(), "nats://127.0.0.1:" + std::to_string(srv->port()));

  expect_round_trip(srv->url());

  std::string varz = http_get(srv->monitor_port(), "/varz");
  EXPECT_NE(varz.find("200 OK"), std::string::npos) << varz;
  EXPECT_NE(varz.find("\"server_name\": \"wsgw-embedded\""), std::string::npos) << varz;
  EXPECT_NE(varz.find("\"host\": \"127.0.0.1\""), std::string::npos) << "not loopback-only";
  EXPECT_NE(varz.find("\"port\": " + std::to_string(srv->port())), std::string::npos);
  EXPECT_NE(http_get(srv->monitor_port(), "/healthz").find("200 OK"), std::string::npos);
  // JetStream on, with the modest limits of the generated config.
  std::string jsz = http_get(srv->monitor_port(), "/jsz");
  EXPECT_EQ(jsz.find("\"disabled\": true"), std::string::npos) << jsz;
  EXPECT_NE(jsz.find("\"max_memory\": 67108864"), std::string::npos) << jsz;
  EXPECT_NE(jsz.find("\"max_storage\": 1073741824"), std::string::npos) << jsz;

  const fs::path data = dir.path() / "nats";
  EXPECT_TRUE(fs::is_directory(data / "jetstream"));
  EXPECT_TRUE(fs::exists(data / "nats-server.conf"));
  EXPECT_TRUE(fs::exists(data / "nats-server.log"));
  EXPECT_EQ(srv->data_dir(), fs::canonical(data).string());
}

TEST(EmbeddedServer, StopEndsTheProcessClosesThePortAndIsIdempotent) {
  TempDir dir;
  std::string err;
  auto srv = EmbeddedServer::start(options_in(dir), err);
  ASSERT_NE(srv, nullptr) << err;
  const int pid = srv->pid();
  const auto port = srv->port();
  ASSERT_TRUE(can_connect(port));

  srv->stop();
  EXPECT_FALSE(srv->running());
  // Reaped by stop(): the pid no longer exists at all.
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(can_connect(port));
  // Runtime files of a cleanly stopped server are gone; state stays.
  const fs::path data = dir.path() / "nats";
  EXPECT_FALSE(fs::exists(data / "nats-server.pid"));
  for (const auto& e : fs::directory_iterator(data)) {
    EXPECT_NE(e.path().extension(), ".ports") << e.path();
  }
  EXPECT_TRUE(fs::is_directory(data / "jetstream"));
  srv->stop();  // idempotent
  EXPECT_FALSE(srv->running());

  // The data_dir is free again: a new server starts there.
  auto again = EmbeddedServer::start(options_in(dir), err);
  ASSERT_NE(again, nullptr) << err;
  expect_round_trip(again->url());
}

TEST(EmbeddedServer, DestructorStopsTheChild) {
  TempDir dir;
  std::string err;
  int pid = 0;
  std::uint16_t port = 0;
  {
    auto srv = EmbeddedServer::start(options_in(dir), err);
    ASSERT_NE(srv, nullptr) << err;
    pid = srv->pid();
    port = srv->port();
    ASSERT_FALSE(process_gone(pid));
  }
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(can_connect(port));
}

TEST(EmbeddedServer, FixedPortIsUsed) {
  TempDir dir;
  EmbeddedOptions opt = options_in(dir);
  opt.port = free_port();
  ASSERT_NE(opt.port, 0);
  std::string err;
  auto srv = EmbeddedServer::start(opt, err);
  ASSERT_NE(srv, nullptr) << err;
  EXPECT_EQ(srv->port(), opt.port);
  EXPECT_EQ(srv->url(), "nats://127.0.0.1:" + std::to_string(opt.port));
  EXPECT_NE(srv->monitor_port(), 0);
  expect_round_trip(srv->url());
}

TEST(EmbeddedServer, FixedPortInUseFailsClearly) {
  Fd holder(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback(0);
  ASSERT_EQ(::bind(holder.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(holder.get(), 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(holder.get(), reinterpret_cast<sockaddr*>(&a), &len);

  TempDir dir;
  EmbeddedOptions opt = options_in(dir);
  opt.port = ntohs(a.sin_port);
  std::string err;
  auto srv = EmbeddedServer::start(opt, err);
  EXPECT_EQ(srv, nullptr);
  EXPECT_NE(err.find("127.0.0.1:" + std::to_string(opt.port)), std::string::npos) << err;
  EXPECT_NE(err.find("already in use"), std::string::npos) << err;
}

TEST(EmbeddedServer, MissingBinaryGivesTheDocumentedError) {
  const std::string documented =
      "nats-server not found: install Debian's nats-server package or set nats.embedded.binary";
  TempDir dir;
  for (const char* binary : {"wsgw-no-such-nats-server", "/nonexistent/bin/nats-server"}) {
    EmbeddedOptions opt = options_in(dir);
    opt.binary = binary;
    std::string err;
    EXPECT_EQ(EmbeddedServer::start(opt, err), nullptr);
    EXPECT_NE(err.find(documented), std::string::npos) << err;
    EXPECT_NE(err.find(binary), std::string::npos) << err;
  }
}

TEST(EmbeddedServer, SecondStartOnTheSameDataDirFailsAndLeavesTheFirstAlone) {
  TempDir dir;
  std::string err;
  auto first = EmbeddedServer::start(options_in(dir), err);
  ASSERT_NE(first, nullptr) << err;

  EmbeddedOptions opt = options_in(dir);
  opt.start_timeout_ms = 2000;
  auto second = EmbeddedServer::start(opt, err);
  EXPECT_EQ(second, nullptr);
  EXPECT_NE(err.find(first->data_dir()), std::string::npos) << err;
  EXPECT_NE(err.find("in use"), std::string::npos) << err;

  // The first is untouched: same process, its log not rotated, still serving.
  EXPECT_TRUE(first->running());
  EXPECT_FALSE(fs::exists(dir.path() / "nats" / "nats-server.log.1"));
  EXPECT_TRUE(fs::exists(dir.path() / "nats" / "nats-server.pid"));
  expect_round_trip(first->url());
}

TEST(EmbeddedServer, PidFileNamingAnotherLiveServerIsRefused) {
  // A server this gateway does not own (no lock held) whose pid file sits in
  // the data_dir, e.g. one an operator started by hand.
  TempDir a, b;
  std::string err;
  auto other = EmbeddedServer::start(options_in(a), err);
  ASSERT_NE(other, nullptr) << err;
  fs::create_directories(b.path() / "nats");
  std::ofstream(b.path() / "nats" / "nats-server.pid") << other->pid();

  EmbeddedOptions opt = options_in(b);
  opt.start_timeout_ms = 2000;
  const auto t0 = Clock::now();
  EXPECT_EQ(EmbeddedServer::start(opt, err), nullptr);
  EXPECT_LT(Clock::now() - t0, 1s) << "not someone's orphan: no reason to wait";
  EXPECT_NE(err.find(fs::canonical(b.path() / "nats").string()), std::string::npos) << err;
  EXPECT_NE(err.find("pid " + std::to_string(other->pid())), std::string::npos) << err;
  EXPECT_TRUE(other->running());
}

TEST(EmbeddedServer, StalePidAndPortsFilesAreIgnored) {
  TempDir dir;
  const fs::path data = dir.path() / "nats";
  fs::create_directories(data);
  // A pid that surely is dead: a child we started and reaped.
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_GT(dead, 0);
  ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);
  std::ofstream(data / "nats-server.pid") << dead;
  // A leftover ports file naming a port nobody listens on.
  std::ofstream(data / "nats-server_1.ports")
      << R"({"nats":["nats://127.0.0.1:1"],"monitoring":["http://127.0.0.1:2"]})";

  std::string err;
  auto srv = EmbeddedServer::start(options_in(dir), err);
  ASSERT_NE(srv, nullptr) << err;
  EXPECT_NE(srv->port(), 1);
  EXPECT_FALSE(fs::exists(data / "nats-server_1.ports"));
  expect_round_trip(srv->url());
}

TEST(EmbeddedServer, EarlyExitIsReportedQuickly) {
  TempDir dir;
  EmbeddedOptions opt = options_in(dir);
  opt.binary = "/bin/false";
  std::string err;
  const auto t0 = Clock::now();
  EXPECT_EQ(EmbeddedServer::start(opt, err), nullptr);
  EXPECT_LT(Clock::now() - t0, 2s) << "must not wait for start_timeout_ms (10 s)";
  EXPECT_NE(err.find("exited during startup"), std::string::npos) << err;
  EXPECT_NE(err.find("exit status 1"), std::string::npos) << err;
}

TEST(EmbeddedServer, EarlyExitQuotesTheLogTail) {
  TempDir dir;
  const std::string script = dir.str() + "/fake-nats-server";
  std::ofstream(script)
      << "#!/bin/sh\necho 'first line' >&2\necho 'fake: bad config marker-42' >&2\nexit 3\n";
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  EmbeddedOptions opt = options_in(dir);
  opt.binary = script;
  std::string err;
  EXPECT_EQ(EmbeddedServer::start(opt, err), nullptr);
  EXPECT_NE(err.find("exit status 3"), std::string::npos) << err;
  EXPECT_NE(err.find("marker-42"), std::string::npos) << err;
  EXPECT_NE(err.find("first line"), std::string::npos) << err;
}

TEST(EmbeddedServer, UnexecutableBinaryIsReported) {
  TempDir dir;
  const std::string bogus = dir.str() + "/not-a-program";
  std::ofstream(bogus) << "neither ELF nor a #! script\n";  // execv: ENOEXEC
  ASSERT_EQ(::chmod(bogus.c_str(), 0755), 0);
  EmbeddedOptions opt = options_in(dir);
  opt.binary = bogus;
  std::string err;
  EXPECT_EQ(EmbeddedServer::start(opt, err), nullptr);
  EXPECT_NE(err.find("cannot execute " + bogus), std::string::npos) << err;
  EXPECT_NE(err.find(std::strerror(ENOEXEC)), std::string::npos) << err;
}

TEST(EmbeddedServer, TimeoutWhenTheServerNeverListens) {
  TempDir dir;
  const std::string script = dir.str() + "/silent-nats-server";
  // Runs, never listens, never writes a ports file; exec keeps the pid so
  // stop() signals the sleeping process itself.
  std::ofstream(script) << "#!/bin/sh\nexec sleep 30\n";
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  EmbeddedOptions opt = options_in(dir);
  opt.binary = script;
  opt.start_timeout_ms = 300;
  std::string err;
  const auto t0 = Clock::now();
  EXPECT_EQ(EmbeddedServer::start(opt, err), nullptr);
  EXPECT_LT(Clock::now() - t0, 3s);
  EXPECT_NE(err.find("did not accept connections within 300 ms"), std::string::npos) << err;
}

TEST(EmbeddedServer, InvalidOptionsAreRejected) {
  TempDir dir;
  std::string err;
  EmbeddedOptions opt = options_in(dir);
  opt.server_name = "two words";
  EXPECT_EQ(EmbeddedServer::start(opt, err), nullptr);
  EXPECT_NE(err.find("server_name"), std::string::npos) << err;

  opt = options_in(dir);
  opt.data_dir = dir.str() + "/quo\"te";
  EXPECT_EQ(EmbeddedServer::start(opt, err), nullptr);
  EXPECT_NE(err.find("quotes"), std::string::npos) << err;

  opt = options_in(dir);
  std::ofstream(dir.path() / "afile") << "x";
  opt.data_dir = dir.str() + "/afile";
  EXPECT_EQ(EmbeddedServer::start(opt, err), nullptr);
  EXPECT_NE(err.find("afile"), std::string::npos) << err;
}

TEST(EmbeddedServer, JetStreamCanBeDisabled) {
  TempDir dir;
  EmbeddedOptions opt = options_in(dir);
  opt.jetstream = false;
  std::string err;
  auto srv = EmbeddedServer::start(opt, err);
  ASSERT_NE(srv, nullptr) << err;
  expect_round_trip(srv->url());
  EXPECT_FALSE(fs::exists(dir.path() / "nats" / "jetstream"));
  std::string jsz = http_get(srv->monitor_port(), "/jsz");
  EXPECT_NE(jsz.find("\"disabled\": true"), std::string::npos) << jsz;
}

// The gateway dies by SIGKILL: the server must follow (PDEATHSIG), and a
// restarted gateway must get the same data_dir back without operator help.
TEST(EmbeddedServer, ServerDiesWithItsGatewayAndTheDataDirIsReusable) {
  TempDir dir;
  const std::string data = dir.str() + "/nats";
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  Fd out_r(out[0]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  std::string env_entry = std::string(kHelperEnv) + "=" + data;
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  envp.push_back(env_entry.data());
  envp.push_back(nullptr);
  char self[] = "/proc/self/exe";
  char* argv[] = {self, nullptr};
  pid_t helper = 0;
  int rc = posix_spawn(&helper, "/proc/self/exe", &fa, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  ASSERT_EQ(rc, 0);

  std::string line;
  const auto deadline = Clock::now() + 15s;
  while (line.find('\n') == std::string::npos && Clock::now() < deadline) {
    pollfd p{out_r.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[64];
    ssize_t n = ::read(out_r.get(), buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<std::size_t>(n));
  }
  const int server_pid = std::atoi(line.c_str());
  // Should the server survive (the bug this test catches), do not leak it:
  // kill it at the end, after checking the pid still runs our config.
  struct OrphanReaper {
    int pid;
    std::string data;
    ~OrphanReaper() {
      if (pid <= 0 || process_gone(pid)) return;
      std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
      std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (cmd.find(data) != std::string::npos) ::kill(pid, SIGKILL);
    }
  } reaper{server_pid, data};
  ::kill(helper, SIGKILL);
  ASSERT_EQ(::waitpid(helper, nullptr, 0), helper);
  ASSERT_GT(server_pid, 0) << "helper did not start a server: '" << line << "'";

  // Restart at once, as systemd would: start() waits for the orphan to exit.
  EmbeddedOptions opt;
  opt.data_dir = data;
  std::string err;
  auto srv = EmbeddedServer::start(opt, err);
  ASSERT_NE(srv, nullptr) << err;
  EXPECT_TRUE(process_gone(server_pid)) << "the orphaned server survived its gateway";
  expect_round_trip(srv->url());
  EXPECT_TRUE(wait_gone(server_pid, 1s));
}

}  // namespace
