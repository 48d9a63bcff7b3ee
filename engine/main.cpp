// wsgw: parses the command line, loads the configuration and runs the
// gateway until SIGINT/SIGTERM. Everything else lives in engine/server.
#include <sys/resource.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/admin/admin_server.hpp"
#include "engine/admin/metrics.hpp"
#include "engine/auth/jwt_signer.hpp"
#include "engine/config/config.hpp"
#include "engine/log/log.hpp"
#include "engine/options/from_config.hpp"
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
  std::vector<std::string> errors;
  auto rt = wsgw::script::ScriptRuntime::load(dir, wsgw::options::script_limits_from(cfg),
                                              cfg.nats_prefix, cfg.nats_request_timeout_ms, errors);
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

int start_failed(const std::string& reason) {
  WSGW_LOG(error, "start_failed").kv("reason", reason);
  return 1;
}

// Where NATS is: the embedded nats-server, started here, or nats.url's list.
struct NatsServers {
  std::unique_ptr<wsgw::nats::EmbeddedServer> embedded;  // nats.url = "embedded" only
  std::vector<std::string> urls;
};

// Starts the embedded nats-server when nats.url is "embedded". It is forked,
// so this runs before any thread exists. nullopt (logged) when it fails.
std::optional<NatsServers> start_nats(const wsgw::config::Config& cfg) {
  NatsServers n;
  if (cfg.nats_url != "embedded") {
    n.urls = wsgw::options::nats_servers_from(cfg);
    return n;
  }
  std::string error;
  n.embedded = wsgw::nats::EmbeddedServer::start(wsgw::options::embedded_options_from(cfg), error);
  if (!n.embedded) {
    start_failed("embedded nats-server: " + error);
    return std::nullopt;
  }
  n.urls.push_back(n.embedded->url());
  return n;
}

// The admin listener, when admin.enabled: /metrics, /healthz, /readyz and
// the push API. False (logged) when it cannot listen.
bool start_admin(wsgw::server::Gateway& gateway, wsgw::nats::NatsBus& bus,
                 std::unique_ptr<wsgw::admin::AdminServer>& admin) {
  const auto& cfg = gateway.shared().cfg;
  if (!cfg.admin_enabled) return true;
  wsgw::admin::AdminHooks hooks;
  hooks.subjects = wsgw::options::subjects_from(cfg);
  hooks.publish = [&bus](std::string_view subject, std::string_view payload) {
    return bus.publish(subject, payload);
  };
  hooks.ready = [&gateway, &bus](std::string& why) {
    if (!gateway.shared().accepting.load()) {
      why = "draining";
      return false;
    }
    if (!bus.connected()) {
      why = "NATS is not connected";
      return false;
    }
    return true;
  };
  hooks.collect = [&gateway, &bus](wsgw::admin::MetricsWriter& m) {
    wsgw::server::collect_metrics(gateway, bus, m);
  };
  std::string error;
  admin = wsgw::admin::AdminServer::start(wsgw::options::admin_options_from(cfg), std::move(hooks),
                                          error);
  if (!admin) {
    start_failed("admin: " + error);
    return false;
  }
  WSGW_LOG(info, "admin_listening")
      .kv("address", cfg.admin_address)
      .kv("port", static_cast<unsigned>(admin->port()));
  return true;
}

// The process's signals, handled on their own small io_context and thread
// so that no worker is ever blocked by them: SIGINT and SIGTERM drain the
// gateway (a second one exits at once), SIGHUP reloads the scripts. They are
// caught from construction on; what arrives before run() waits for it.
class Signals {
 public:
  Signals() : shutdown_(ioc_, SIGINT, SIGTERM), reload_(ioc_, SIGHUP) {}
  ~Signals() { stop(); }

  // Runs `fn` on the signal thread, after everything posted before it.
  template <class Fn>
  void post(Fn fn) {
    boost::asio::post(ioc_, std::move(fn));
  }

  void run(wsgw::server::Gateway& gateway) {
    on_hup_ = [this, &gateway](const boost::system::error_code& ec, int) {
      if (ec) return;
      WSGW_LOG(info, "scripts_reload").kv("trigger", "SIGHUP");
      std::vector<std::string> errors;
      gateway.reload_scripts(errors);
      reload_.async_wait(on_hup_);
    };
    reload_.async_wait(on_hup_);
    on_signal_ = [this, &gateway](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (++received_ > 1) {
        WSGW_LOG(warn, "shutdown_forced").kv("signal", sig);
        std::_Exit(1);
      }
      WSGW_LOG(info, "shutdown").kv("signal", sig);
      gateway.drain();
      shutdown_.async_wait(on_signal_);
    };
    shutdown_.async_wait(on_signal_);
    thread_ = std::thread([this] { ioc_.run(); });
  }

  void stop() {
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  using Handler = std::function<void(const boost::system::error_code&, int)>;
  boost::asio::io_context ioc_{1};
  boost::asio::signal_set shutdown_;
  boost::asio::signal_set reload_;
  Handler on_hup_, on_signal_;
  int received_ = 0;
  std::thread thread_;
};

// With scripts.watch, a change in scripts.dir reloads the scripts, on the
// signal thread (one reload at a time, never on a worker). Null when not
// watched, or when the watch cannot start (logged: SIGHUP still reloads).
std::unique_ptr<wsgw::script::ScriptWatcher> watch_scripts(wsgw::server::Gateway& gateway,
                                                           Signals& signals) {
  const auto& cfg = gateway.shared().cfg;
  if (cfg.scripts_dir.empty() || !cfg.scripts_watch) return nullptr;
  std::string error;
  auto watcher = wsgw::script::ScriptWatcher::start(
      cfg.scripts_dir, cfg.scripts_debounce_ms,
      [&gateway, &signals] {
        signals.post([&gateway] {
          WSGW_LOG(info, "scripts_reload").kv("trigger", "file change");
          std::vector<std::string> errors;
          gateway.reload_scripts(errors);
        });
      },
      error);
  if (!watcher) {
    WSGW_LOG(warn, "script_watch_failed").kv("error", error);
  }
  return watcher;
}

int run_gateway(const std::vector<std::string>& args) {
  wsgw::config::Config cfg;
  std::vector<std::string> unused;
  if (int rc = load_config(args, {}, cfg, unused)) return rc;
  wsgw::log::Level lvl;
  if (wsgw::log::parse_level(cfg.log_level, lvl)) wsgw::log::set_level(lvl);

  std::signal(SIGPIPE, SIG_IGN);
  // A SIGTERM during start-up is kept and drains the gateway once it runs.
  Signals signals;
  raise_fd_limit();
  auto nats = start_nats(cfg);
  if (!nats) return 1;

  wsgw::server::Gateway gateway(std::move(cfg));
  if (auto err = gateway.prepare()) return start_failed(*err);
  const auto& running = gateway.shared().cfg;
  std::string bus_error;
  auto bus = wsgw::nats::NatsBus::connect(wsgw::options::nats_options_from(running, nats->urls),
                                          gateway.bus_handler(), bus_error);
  if (!bus) return start_failed("nats: " + bus_error);
  gateway.attach_bus(bus.get());
  gateway.start();

  std::unique_ptr<wsgw::admin::AdminServer> admin;
  if (!start_admin(gateway, *bus, admin)) {
    gateway.drain();
    gateway.wait();
    return 1;
  }
  auto watcher = watch_scripts(gateway, signals);
  signals.run(gateway);

  gateway.wait();
  // Each goes before what it uses.
  watcher.reset();
  admin.reset();
  signals.stop();
  bus.reset();
  if (nats->embedded) nats->embedded->stop();
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
