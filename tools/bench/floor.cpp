#include "tools/bench/floor.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace wsgw::bench {
namespace {

double thread_cpu_s() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

[[noreturn]] void fail(const char* what) {
  throw std::runtime_error(std::string("floor: ") + what + ": " + std::strerror(errno));
}

}  // namespace

boost::json::object measure_floor(int sends, int bytes) {
  // A null system call: the price of entering the kernel at all.
  constexpr int kNullCalls = 200000;
  double c0 = thread_cpu_s();
  for (int i = 0; i < kNullCalls; ++i) syscall(SYS_getppid);
  const double null_us = (thread_cpu_s() - c0) / kNullCalls * 1e6;

  Fd listener(::socket(AF_INET, SOCK_STREAM, 0));
  if (listener.fd < 0) fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("bind");
  if (::listen(listener.fd, 1) != 0) fail("listen");
  socklen_t len = sizeof addr;
  if (::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) fail("getsockname");
  Fd sender(::socket(AF_INET, SOCK_STREAM, 0));
  if (sender.fd < 0) fail("socket");
  if (::connect(sender.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("connect");
  Fd receiver(::accept(listener.fd, nullptr, nullptr));
  if (receiver.fd < 0) fail("accept");
  int one = 1;
  ::setsockopt(sender.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  double reader_cpu = 0;
  std::uint64_t reads = 0;
  std::thread reader([&] {
    std::vector<char> buf(65536);
    double r0 = thread_cpu_s();
    for (;;) {
      ssize_t n = ::read(receiver.fd, buf.data(), buf.size());
      if (n <= 0) break;  // the sender closed (or an error): done either way
      ++reads;
    }
    reader_cpu = thread_cpu_s() - r0;
  });
  std::vector<char> msg(static_cast<std::size_t>(bytes), 'x');
  int sent = 0;
  c0 = thread_cpu_s();
  for (; sent < sends; ++sent) {
    if (::send(sender.fd, msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size()))
      break;
  }
  const double send_cpu = thread_cpu_s() - c0;
  ::shutdown(sender.fd, SHUT_WR);
  reader.join();
  if (sent < sends) fail("send");

  boost::json::object r;
  r["scenario"] = "floor";
  r["sends"] = sends;
  r["bytes"] = bytes;
  r["null_syscall_us"] = round3(null_us);
  r["send_cpu_us"] = round3(send_cpu / sends * 1e6);
  r["reader_cpu_us_per_message"] = round3(reader_cpu / sends * 1e6);
  r["reads"] = reads;
  return r;
}

}  // namespace wsgw::bench
