#include "engine/admin/admin_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/admin/admin_router.hpp"
#include "engine/admin/admin_session.hpp"
#include "engine/log/log.hpp"

namespace wsgw::admin {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Everything below is touched by the admin thread only, except `stopped`,
// `stop_mutex` and `thread` (the owner's side of stop()).
//
// Member order matters: the io_context is destroyed before the registry and
// the router, because destroying it destroys the pending handlers and with
// them the sessions, whose destructors unregister and which refer to the
// router.
struct AdminServer::Impl {
  Impl(const AdminOptions& o, AdminHooks hooks) : options(o), router(o.api_key, std::move(hooks)) {}

  void do_accept();
  void on_accept(boost::system::error_code ec, tcp::socket socket);
  void refuse_connection(tcp::socket& socket);
  void shutdown();  // on the admin thread
  void run();       // the thread's body

  const AdminOptions options;
  Router router;
  std::unordered_map<std::uint64_t, std::weak_ptr<AdminSession>> sessions;
  std::uint64_t next_session = 0;
  std::chrono::steady_clock::time_point last_refusal_log{};
  std::uint64_t refused_since_log = 0;
  std::uint16_t port = 0;

  std::atomic<bool> stopped{false};
  std::mutex stop_mutex;

  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  asio::steady_timer accept_retry{ioc};
  std::thread thread;
};

void AdminServer::Impl::do_accept() {
  acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void AdminServer::Impl::on_accept(boost::system::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
  if (ec) {
    // Usually EMFILE/ENFILE: retrying at once would spin; the condition
    // clears as connections close.
    WSGW_LOG(warn, "admin_accept_failed").kv("reason", ec.message());
    accept_retry.expires_after(std::chrono::milliseconds(100));
    accept_retry.async_wait([this](boost::system::error_code wait_ec) {
      if (!wait_ec) do_accept();
    });
    return;
  }
  if (sessions.size() >= options.max_connections) {
    refuse_connection(socket);
  } else {
    // Only allocation can throw here; catching keeps the accept loop armed.
    try {
      const std::uint64_t id = next_session++;
      auto session = std::make_shared<AdminSession>(std::move(socket), router, options.read_timeout,
                                                    [this, id] { sessions.erase(id); });
      sessions.emplace(id, session);
      session->run();
    } catch (const std::exception& e) {
      WSGW_LOG(error, "admin_session_failed").kv("what", e.what());
    }
  }
  do_accept();
}

void AdminServer::Impl::refuse_connection(tcp::socket& socket) {
  boost::system::error_code ignored;
  socket.close(ignored);
  // A scraper storm or a leak in a client can refuse thousands per second;
  // one line every 10 s with the count is enough to notice.
  ++refused_since_log;
  auto now = std::chrono::steady_clock::now();
  if (now - last_refusal_log >= std::chrono::seconds(10)) {
    WSGW_LOG(warn, "admin_connections_refused")
        .kv("count", refused_since_log)
        .kv("max_connections", static_cast<std::uint64_t>(options.max_connections));
    last_refusal_log = now;
    refused_since_log = 0;
  }
}

void AdminServer::Impl::shutdown() {
  boost::system::error_code ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  // Copy first: closing does not destroy a session here (its pending
  // handler still owns it), but the registry must not change under the loop.
  std::vector<std::shared_ptr<AdminSession>> open;
  open.reserve(sessions.size());
  for (auto& [id, weak] : sessions)
    if (auto s = weak.lock()) open.push_back(std::move(s));
  for (auto& s : open) s->close();
  open.clear();
  // Stop without running the aborted handlers: the sockets are closed (the
  // peers see it now); the handlers and sessions go with the io_context.
  ioc.stop();
}

void AdminServer::Impl::run() {
  for (;;) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      // Handlers catch their own errors; this is the last line of defence
      // so the admin endpoint outlives a bug in one request.
      WSGW_LOG(error, "admin_loop_exception").kv("what", e.what());
    } catch (...) {
      WSGW_LOG(error, "admin_loop_exception").kv("what", "unknown");
    }
  }
}

std::unique_ptr<AdminServer> AdminServer::start(const AdminOptions& options, AdminHooks hooks,
                                                std::string& error) {
  auto impl = std::make_unique<Impl>(options, std::move(hooks));
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(options.address, ec);
  if (ec) {
    error = "admin address \"" + options.address + "\" is not an IP address";
    return nullptr;
  }
  const tcp::endpoint endpoint(address, options.port);
  const std::string where = options.address + ":" + std::to_string(options.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) impl->port = impl->acceptor.local_endpoint(ec).port();
  if (ec) {
    error = "cannot listen on " + where + " for the admin API: " + ec.message();
    return nullptr;
  }
  impl->do_accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->run(); });
  WSGW_LOG(info, "admin_listening")
      .kv("address", options.address)
      .kv("port", static_cast<unsigned>(impl->port))
      .kv("api", !options.api_key.empty());
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
}

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AdminServer::~AdminServer() {
  stop();
}

void AdminServer::stop() {
  std::lock_guard lock(impl_->stop_mutex);
  if (!impl_->stopped.exchange(true)) {
    Impl* raw = impl_.get();
    asio::post(impl_->ioc, [raw] { raw->shutdown(); });
  }
  // Joining from the admin thread itself (a hook calling stop) would
  // deadlock; the contract forbids it, this keeps a violation from hanging.
  if (impl_->thread.joinable() && impl_->thread.get_id() != std::this_thread::get_id()) {
    impl_->thread.join();
  }
}

std::uint16_t AdminServer::port() const {
  return impl_->port;
}

}  // namespace wsgw::admin
