// wsgw: parses the command line, loads the configuration and runs the
// gateway until SIGINT/SIGTERM. Everything else lives in engine/server.
#include <sys/resource.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "engine/auth/jwt_signer.hpp"
#include "engine/config/config.hpp"
#include "engine/log/log.hpp"
#include "engine/admin/admin_server.hpp"
#include "engine/admin/metrics.hpp"
#include "engine/script/script_runtime.hpp"
#include "engine/script/script_watcher.hpp"
#include "engine/server/gateway.hpp"
#include "engine/server/metrics_collector.hpp"
#include "nats/embedded_server.hpp"
#include "nats/nats_bus.hpp"

namespace {

constexpr const char* kUsage =
    "Usage:\n"
    "  wsgw --config FILE [--section.key=value ...]   run the gateway\n"
    "  wsgw token --config FILE --user ID [--name NAME] [--ttl SECONDS]\n"
    "                                                print an HS256 token signed with the\n"
    "                                                configured secret (development)\n"
    "  wsgw check-scripts DIR [--config FILE] load DIR as a reload would and print what is\n"
    "                                                wrong (exit 1) or the commands (exit 0)\n"
    "  wsgw --help | --version\n\n"
    "Every setting below can be given in the config file or on the command line;\n"
    "the command line wins.\n\n";

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "wsgw: %s\n(see wsgw --help)\n", msg.c_str());
  return 2;
}

// Loads --config FILE and the remaining --key=value overrides into cfg.
// `rest` receives arguments the caller must interpret itself (prefix match on
// `own`), e.g. the token subcommand's --user.
int load_config(const std::vector<std::string>& args, const std::vector<std::string>& own,
                wsgw::config::Config& cfg, std::vector<std::string>& rest) {
  std::string config_path;
  std::vector<std::string> overrides;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto takes = [&](const std::string& name, std::string& out) {
      if (a == name) {
        if (i + 1 >= args.size()) return false;
        out = args[++i];
        return true;
      }
      if (a.rfind(name + "=", 0) == 0) {
        out = a.substr(name.size() + 1);
        return true;
      }
      return false;
    };
    if (takes("--config", config_path)) continue;
    bool is_own = false;
    for (const auto& o : own) {
      std::string v;
      if (takes(o, v)) {
        rest.push_back(o);
        rest.push_back(v);
        is_own = true;
        break;
      }
    }
    if (!is_own) overrides.push_back(a);
  }
  if (!config_path.empty()) {
    if (auto err = wsgw::config::load_file(config_path, cfg)) return usage_error(err->to_string());
  }
  if (auto err = wsgw::config::apply_overrides(overrides, cfg)) return usage_error(err->to_string());
  if (auto err = wsgw::config::validate(cfg)) return usage_error(err->to_string());
  return 0;
}

void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  WSGW_LOG(info, "fd_limit").kv("open_files", static_cast<std::uint64_t>(rl.rlim_cur));
}

int run_token(const std::vector<std::string>& args) {
  wsgw::config::Config cfg;
  std::vector<std::string> own;
  if (int rc = load_config(args, {"--user", "--name", "--ttl"}, cfg, own)) return rc;
  std::string user, name;
  long ttl = 3600;
  for (std::size_t i = 0; i + 1 < own.size(); i += 2) {
    if (own[i] == "--user") user = own[i + 1];
    if (own[i] == "--name") name = own[i + 1];
    if (own[i] == "--ttl") {
      try {
        ttl = std::stol(own[i + 1]);
      } catch (...) {
        return usage_error("--ttl must be a number of seconds");
      }
    }
  }
  if (user.empty()) return usage_error("token: --user is required");
  if (cfg.jwt_secret.empty()) return usage_error("token: needs auth.jwt.secret or auth.jwt.secret_file (HS256)");
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  boost::json::object claims;
  claims[cfg.jwt_user_claim] = user;
  if (!name.empty()) claims[cfg.jwt_name_claim] = name;
  claims["iat"] = now;
  claims["exp"] = now + ttl;
  if (!cfg.jwt_issuer.empty()) claims["iss"] = cfg.jwt_issuer;
  if (!cfg.jwt_audience.empty()) claims["aud"] = cfg.jwt_audience;
  std::cout << wsgw::auth::sign_hs256(claims, cfg.jwt_secret) << "\n";
  return 0;
}

int run_check_scripts(const std::vector<std::string>& args) {
  if (args.empty() || args[0].starts_with("--")) return usage_error("check-scripts: give DIR");
  std::string dir = args[0];
  wsgw::config::Config cfg;
  std::vector<std::string> unused;
  // The config is optional here: it only supplies limits and the prefix.
  cfg.auth_mode = "none";
  if (int rc = load_config({args.begin() + 1, args.end()}, {}, cfg, unused)) return rc;
  wsgw::script::ScriptLimits limits;
  limits.memory_bytes = cfg.scripts_memory_bytes;
  limits.instructions = cfg.scripts_instructions;
  limits.time_ms = cfg.scripts_time_ms;
  std::vector<std::string> errors;
  auto rt = wsgw::script::ScriptRuntime::load(dir, limits, cfg.nats_prefix,
                                              cfg.nats_request_timeout_ms, errors);
  if (!rt) {
    for (const auto& e : errors) std::cout << e << "\n";
    std::cout << errors.size() << " error(s); a reload with these scripts would be refused\n";
    return 1;
  }
  for (const auto& spec : rt->commands()) {
    const char* mode = spec.local ? "local"
                       : spec.route.mode == wsgw::routing::Route::Mode::publish ? "publish"
                                                                                 : "request";
    std::cout << spec.command << "  " << mode << "  " << (spec.local ? "-" : spec.route.subject)
              << (spec.has_handle ? "  handle" : "") << "  (" << spec.file << ")\n";
  }
  std::cout << "ok: " << rt->commands().size() << " command(s)\n";
  return 0;
}

int run_gateway(const std::vector<std::string>& args) {
  wsgw::config::Config cfg;
  std::vector<std::string> unused;
  if (int rc = load_config(args, {}, cfg, unused)) return rc;
  wsgw::log::Level lvl;
  if (wsgw::log::parse_level(cfg.log_level, lvl)) wsgw::log::set_level(lvl);

  std::signal(SIGPIPE, SIG_IGN);
  // Signals are caught from here on (a SIGTERM during start-up is queued and
  // drains the gateway once it runs) and handled on their own small
  // io_context, so no worker is ever blocked by them.
  boost::asio::io_context signals_ioc(1);
  boost::asio::signal_set signals(signals_ioc, SIGINT, SIGTERM);
  boost::asio::signal_set reload_signal(signals_ioc, SIGHUP);
  raise_fd_limit();

  // The embedded nats-server is forked before any thread exists.
  std::unique_ptr<wsgw::nats::EmbeddedServer> embedded;
  std::vector<std::string> servers;
  if (cfg.nats_url == "embedded") {
    wsgw::nats::EmbeddedOptions eo;
    eo.binary = cfg.embedded_binary;
    eo.data_dir = cfg.embedded_data_dir;
    eo.port = cfg.embedded_port;
    eo.jetstream = cfg.embedded_jetstream;
    eo.start_timeout_ms = cfg.embedded_start_timeout_ms;
    eo.server_name = "wsgw-" + cfg.gateway_id;
    std::string error;
    embedded = wsgw::nats::EmbeddedServer::start(eo, error);
    if (!embedded) {
      WSGW_LOG(error, "start_failed").kv("reason", "embedded nats-server: " + error);
      return 1;
    }
    servers.push_back(embedded->url());
  } else {
    std::string_view urls = cfg.nats_url;
    while (!urls.empty()) {
      auto comma = urls.find(',');
      std::string_view u = urls.substr(0, comma);
      while (!u.empty() && u.front() == ' ') u.remove_prefix(1);
      while (!u.empty() && u.back() == ' ') u.remove_suffix(1);
      if (!u.empty()) servers.emplace_back(u);
      urls = comma == std::string_view::npos ? std::string_view() : urls.substr(comma + 1);
    }
  }

  wsgw::nats::BusOptions bo;
  bo.servers = servers;
  bo.name = cfg.nats_name;
  bo.user = cfg.nats_user;
  bo.password = cfg.nats_password;
  bo.token = cfg.nats_token;
  bo.nkey = cfg.nats_nkey;
  bo.nkey_seed_file = cfg.nats_nkey_seed_file;
  bo.creds_file = cfg.nats_creds_file;
  bo.tls = cfg.nats_tls;
  bo.tls_ca_file = cfg.nats_tls_ca_file;
  bo.tls_cert_file = cfg.nats_tls_cert_file;
  bo.tls_key_file = cfg.nats_tls_key_file;
  bo.connect_timeout_ms = cfg.nats_connect_timeout_ms;
  bo.reconnect_wait_ms = cfg.nats_reconnect_wait_ms;
  bo.reconnect_jitter_ms = cfg.nats_reconnect_jitter_ms;
  bo.reconnect_buffer_bytes = cfg.nats_reconnect_buffer_bytes;
  bo.pending_limit_bytes = cfg.nats_pending_limit_bytes;
  bo.delivery_threads = cfg.nats_delivery_threads;
  bo.subjects = {cfg.nats_prefix, cfg.gateway_id};
  bo.workers = cfg.workers;

  wsgw::server::Gateway gateway(std::move(cfg));
  if (auto err = gateway.prepare()) {
    WSGW_LOG(error, "start_failed").kv("reason", *err);
    return 1;
  }
  std::string bus_error;
  auto bus = wsgw::nats::NatsBus::connect(bo, gateway.bus_handler(), bus_error);
  if (!bus) {
    WSGW_LOG(error, "start_failed").kv("reason", "nats: " + bus_error);
    return 1;
  }
  gateway.attach_bus(bus.get());
  gateway.start();

  std::unique_ptr<wsgw::admin::AdminServer> admin;
  if (gateway.shared().cfg.admin_enabled) {
    const auto& c = gateway.shared().cfg;
    wsgw::admin::AdminOptions ao;
    ao.address = c.admin_address;
    ao.port = c.admin_port;
    ao.api_key = c.admin_api_key;
    wsgw::admin::AdminHooks hooks;
    hooks.subjects = {c.nats_prefix, c.gateway_id};
    hooks.publish = [&bus](std::string_view subject, std::string_view payload) {
      return bus->publish(subject, payload);
    };
    hooks.ready = [&gateway, &bus](std::string& why) {
      if (!gateway.shared().accepting.load()) {
        why = "draining";
        return false;
      }
      if (!bus->connected()) {
        why = "NATS is not connected";
        return false;
      }
      return true;
    };
    hooks.collect = [&gateway, &bus](wsgw::admin::MetricsWriter& m) {
      wsgw::server::collect_metrics(gateway, *bus, m);
    };
    std::string error;
    admin = wsgw::admin::AdminServer::start(ao, std::move(hooks), error);
    if (!admin) {
      WSGW_LOG(error, "start_failed").kv("reason", "admin: " + error);
      gateway.drain();
      gateway.wait();
      return 1;
    }
    WSGW_LOG(info, "admin_listening")
        .kv("address", c.admin_address)
        .kv("port", static_cast<unsigned>(admin->port()));
  }

  // Scripts reload on SIGHUP and, when watched, on a change in their folder.
  std::function<void(const boost::system::error_code&, int)> on_hup =
      [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        WSGW_LOG(info, "scripts_reload").kv("trigger", "SIGHUP");
        std::vector<std::string> errors;
        gateway.reload_scripts(errors);
        reload_signal.async_wait(on_hup);
      };
  reload_signal.async_wait(on_hup);
  std::unique_ptr<wsgw::script::ScriptWatcher> watcher;
  const auto& running_cfg = gateway.shared().cfg;
  if (!running_cfg.scripts_dir.empty() && running_cfg.scripts_watch) {
    std::string error;
    watcher = wsgw::script::ScriptWatcher::start(
        running_cfg.scripts_dir, running_cfg.scripts_debounce_ms,
        [&] {
          // Reload on the signal thread, one at a time, never on a worker.
          boost::asio::post(signals_ioc, [&] {
            WSGW_LOG(info, "scripts_reload").kv("trigger", "file change");
            std::vector<std::string> errors;
            gateway.reload_scripts(errors);
          });
        },
        error);
    if (!watcher) {
      WSGW_LOG(warn, "script_watch_failed").kv("error", error);
    }
  }

  int received = 0;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (++received > 1) {
          WSGW_LOG(warn, "shutdown_forced").kv("signal", sig);
          std::_Exit(1);
        }
        WSGW_LOG(info, "shutdown").kv("signal", sig);
        gateway.drain();
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);
  std::thread signal_thread([&] { signals_ioc.run(); });

  gateway.wait();
  watcher.reset();
  admin.reset();  // its hooks use the bus
  signals_ioc.stop();
  signal_thread.join();
  // The bus goes before the embedded server it talks to.
  bus.reset();
  if (embedded) embedded->stop();
  WSGW_LOG(info, "stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage << wsgw::config::help_text();
    return 0;
  }
  if (args[0] == "--version") {
    std::cout << "wsgw " << WSGW_VERSION << "\n";
    return 0;
  }
  try {
    if (args[0] == "token") return run_token({args.begin() + 1, args.end()});
    if (args[0] == "check-scripts") return run_check_scripts({args.begin() + 1, args.end()});
    return run_gateway(args);
  } catch (const std::exception& e) {
    WSGW_LOG(error, "fatal").kv("error", e.what());
    return 1;
  }
}
