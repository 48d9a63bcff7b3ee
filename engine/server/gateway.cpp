#include "engine/server/gateway.hpp"

#include <boost/asio/ip/address.hpp>
#include <fstream>
#include <sstream>

#include "engine/auth/jwt_verifier.hpp"
#include "engine/log/log.hpp"
#include "engine/options/from_config.hpp"

namespace wsgw::server {
namespace asio = boost::asio;

namespace {

std::optional<std::string> read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot read " + path;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return std::nullopt;
}

}  // namespace

Gateway::Gateway(config::Config cfg) { shared_.cfg = std::move(cfg); }

Gateway::~Gateway() {
  for (auto& w : workers_) w->join();
}

std::optional<std::string> Gateway::prepare() {
  const auto& cfg = shared_.cfg;
  shared_.upgrade = options::upgrade_options_from(cfg);
  shared_.worker_count = cfg.workers;

  if (cfg.auth_mode == "jwt") {
    auth::JwtOptions opt = options::jwt_options_from(cfg);
    if (!cfg.jwt_public_key_file.empty()) {
      if (auto err = read_file(cfg.jwt_public_key_file, opt.public_key_pem)) return err;
    }
    std::string error;
    shared_.verifier = auth::JwtVerifier::create(opt, error);
    if (!shared_.verifier) return "auth.jwt: " + error;
  } else if (cfg.auth_mode == "none") {
    WSGW_LOG(warn, "auth_disabled")
        .kv("detail", "auth.mode is \"none\": clients name themselves; never use this in production");
  }

  std::string route_error;
  shared_.routes = routing::RouteTable::from_config(cfg, route_error);
  if (!shared_.routes) return "routes: " + route_error;

  boost::system::error_code ec;
  auto address = asio::ip::make_address(cfg.listen_address, ec);
  if (ec) return "server.address: '" + cfg.listen_address + "' is not an IP address";

  std::uint16_t port = cfg.listen_port;
  for (unsigned i = 0; i < cfg.workers; ++i) {
    auto w = std::make_unique<Worker>(i, shared_);
    // With port 0 the first worker picks a free port and the others share it.
    std::uint16_t bound = w->listen({address, port}, ec);
    if (ec) {
      workers_.clear();
      return "cannot listen on " + cfg.listen_address + ":" + std::to_string(port) + ": " +
             ec.message();
    }
    port = bound;
    workers_.push_back(std::move(w));
  }
  port_ = port;
  std::vector<delivery::Inbox*> inboxes;
  for (auto& w : workers_) {
    inboxes.push_back(&w->inbox());
    shared_.workers.push_back(w.get());
  }
  if (!cfg.scripts_dir.empty()) {
    std::vector<std::string> errors;
    if (!reload_scripts(errors)) {
      std::string all = "scripts: ";
      for (const auto& e : errors) all += e + "; ";
      return all;
    }
  }
  router_ = std::make_unique<delivery::PushRouter>(std::move(inboxes), cfg.gateway_id);
  return std::nullopt;
}

void Gateway::start() {
  const auto& cfg = shared_.cfg;
  for (auto& w : workers_) w->start();
  WSGW_LOG(info, "listening")
      .kv("address", cfg.listen_address)
      .kv("port", static_cast<unsigned>(port_))
      .kv("path", cfg.ws_path)
      .kv("workers", cfg.workers)
      .kv("gateway", cfg.gateway_id)
      .kv("auth", cfg.auth_mode)
      .kv("routes", static_cast<std::uint64_t>(cfg.routes.size()));
}

bool Gateway::reload_scripts(std::vector<std::string>& errors) {
  std::lock_guard<std::mutex> lock(reload_mu_);
  const auto& cfg = shared_.cfg;
  script::ScriptLimits limits = options::script_limits_from(cfg);
  std::vector<std::shared_ptr<script::ScriptRuntime>> fresh;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    errors.clear();
    auto rt = script::ScriptRuntime::load(cfg.scripts_dir, limits, cfg.nats_prefix,
                                          cfg.nats_request_timeout_ms, errors);
    if (!rt) break;
    // A command may live in a script or in [[routes]], not both.
    for (const auto& spec : rt->commands()) {
      if (shared_.routes && shared_.routes->find(spec.command)) {
        errors.push_back(spec.file + ": command " + spec.command + " is also in [[routes]]");
      }
    }
    if (!errors.empty()) break;
    fresh.push_back(std::move(rt));
  }
  if (fresh.size() != workers_.size()) {
    shared_.script_reload_failures.fetch_add(1, std::memory_order_relaxed);
    for (const auto& e : errors) WSGW_LOG(error, "script_error").kv("detail", e);
    WSGW_LOG(error, "scripts_not_reloaded")
        .kv("dir", cfg.scripts_dir)
        .kv("errors", static_cast<std::uint64_t>(errors.size()))
        .kv("detail", "the previous scripts stay live");
    return false;
  }
  std::string names;
  for (const auto& spec : fresh.front()->commands()) names += (names.empty() ? "" : ",") + spec.command;
  for (std::size_t i = 0; i < workers_.size(); ++i) workers_[i]->set_scripts(std::move(fresh[i]));
  shared_.script_reloads.fetch_add(1, std::memory_order_relaxed);
  WSGW_LOG(info, "scripts_loaded").kv("dir", cfg.scripts_dir).kv("commands", names);
  return true;
}

void Gateway::drain() {
  shared_.accepting.store(false);
  std::chrono::milliseconds window(shared_.cfg.drain_window_ms);
  std::chrono::milliseconds deadline(shared_.cfg.drain_timeout_ms);
  for (auto& w : workers_) w->drain(window, deadline);
}

void Gateway::wait() {
  for (auto& w : workers_) w->join();
}

}  // namespace wsgw::server
