#include "engine/config/config.hpp"

#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <span>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>

#include "engine/bus/subjects.hpp"

namespace wsgw::config {
namespace {

// gateway.workers is `unsigned`; the table reaches it through a uint32_t member pointer.
static_assert(std::is_same_v<unsigned, std::uint32_t>);

using Field = std::variant<std::string Config::*, bool Config::*, std::uint16_t Config::*,
                           std::uint32_t Config::*, std::vector<std::string> Config::*>;

// A setting's value between its source (TOML node, command-line text, Config)
// and its destination, before range and choice checks.
using Value = std::variant<std::string, bool, std::int64_t, std::vector<std::string>>;

enum class Kind { kString, kBool, kUint, kList };

struct Key {
  std::string_view name;  // "section.key"; [auth.jwt] keys are "auth.jwt.key"
  Field field;
  std::string_view unit = {};
  std::string_view doc = {};
  std::int64_t min = 0;  // kUint only
  std::int64_t max = 0;
  std::span<const std::string_view> choices = {};  // kString: an enum; kList: allowed items
  bool secret = false;                             // redacted by dump

  Kind kind() const {
    switch (field.index()) {
      case 0:
        return Kind::kString;
      case 1:
        return Kind::kBool;
      case 2:
      case 3:
        return Kind::kUint;
      default:
        return Kind::kList;
    }
  }
  std::string_view section() const { return name.substr(0, name.rfind('.')); }
  std::string_view leaf() const { return name.substr(name.rfind('.') + 1); }
};

constexpr std::string_view kAuthModes[] = {"jwt", "service", "none"};
constexpr std::string_view kAlgorithms[] = {"HS256", "RS256", "ES256"};
constexpr std::string_view kLogLevels[] = {"debug", "info", "warn", "error"};
constexpr std::int64_t kU32Max = std::numeric_limits<std::uint32_t>::max();
constexpr std::int64_t kMiB = 1024 * 1024;
// Workers are named by bits of a 64-bit mask where pushes are routed.
constexpr unsigned kMaxWorkers = 64;
constexpr std::size_t kMaxIdLength = 64;

// The one list of settings. Keys of a section must be contiguous and a
// section's own keys must precede its subsections' (dump relies on it).
const Key kKeys[] = {
    {.name = "gateway.id",
     .field = &Config::gateway_id,
     .doc = "Unique id of this gateway, a NATS subject token: [A-Za-z0-9_-]{1,64}, no dots. "
            "\"\" = <hostname>-<6 random hex digits>"},
    {.name = "gateway.workers",
     .field = &Config::workers,
     .unit = "threads",
     .doc = "Worker threads (one event loop each); 0 = one per CPU core (at most 64)",
     .min = 0,
     .max = kMaxWorkers},

    {.name = "server.address",
     .field = &Config::listen_address,
     .doc = "Address the listening socket binds to; \"0.0.0.0\" = all IPv4, \"::\" = all IPv6"},
    {.name = "server.port",
     .field = &Config::listen_port,
     .unit = "TCP port",
     .doc = "Port to listen on; 0 = any free port (the chosen one is logged)",
     .min = 0,
     .max = 65535},
    {.name = "server.path",
     .field = &Config::ws_path,
     .doc = "HTTP path that accepts the WebSocket upgrade; starts with '/'"},
    {.name = "server.allowed_origins",
     .field = &Config::allowed_origins,
     .doc = "Origins allowed to connect, each scheme://host[:port] (no path, no trailing slash, "
            "no default port); empty = any Origin"},
    {.name = "server.max_request_header_bytes",
     .field = &Config::max_request_header_bytes,
     .unit = "bytes",
     .doc = "Largest upgrade request header accepted; larger gets 431",
     .min = 1024,
     .max = kMiB},
    {.name = "server.handshake_timeout_ms",
     .field = &Config::handshake_timeout_ms,
     .unit = "ms",
     .doc = "Time from accept to a completed WebSocket handshake before the socket is closed",
     .min = 100,
     .max = 600000},
    {.name = "server.max_connections",
     .field = &Config::max_connections,
     .unit = "connections",
     .doc = "Open connections this gateway holds at most; further upgrades are refused",
     .min = 1,
     .max = kU32Max},
    {.name = "server.backlog",
     .field = &Config::backlog,
     .unit = "connections",
     .doc = "listen(2) backlog; the kernel caps it at net.core.somaxconn",
     .min = 1,
     .max = kMiB},

    {.name = "ws.max_message_bytes",
     .field = &Config::max_message_bytes,
     .unit = "bytes",
     .doc = "Largest message a client may send (after reassembly); larger closes with 1009",
     .min = 125,
     .max = 16 * kMiB},
    {.name = "ws.send_queue_limit_bytes",
     .field = &Config::send_queue_limit_bytes,
     .unit = "bytes",
     .doc = "Bytes queued for one client before it is dropped as a slow consumer; "
            ">= ws.max_message_bytes",
     .min = 125,
     .max = 1024 * kMiB},
    {.name = "ws.read_buffer_bytes",
     .field = &Config::read_buffer_bytes,
     .unit = "bytes",
     .doc = "Socket read buffer, one per worker",
     .min = 4096,
     .max = 16 * kMiB},
    {.name = "ws.tcp_nodelay",
     .field = &Config::tcp_nodelay,
     .doc = "Set TCP_NODELAY on client sockets (send small frames without Nagle delay)"},

    {.name = "heartbeat.ping_interval_ms",
     .field = &Config::ping_interval_ms,
     .unit = "ms",
     .doc = "Ping a client after this much silence from it; < heartbeat.idle_timeout_ms",
     .min = 10,
     .max = 3600000},
    {.name = "heartbeat.idle_timeout_ms",
     .field = &Config::idle_timeout_ms,
     .unit = "ms",
     .doc = "Close a connection after this much silence from the client",
     .min = 10,
     .max = 86400000},
    {.name = "heartbeat.tick_ms",
     .field = &Config::tick_ms,
     .unit = "ms",
     .doc = "Timing-wheel resolution for heartbeats and timeouts; <= heartbeat.ping_interval_ms",
     .min = 10,
     .max = 1000},

    {.name = "limits.max_connections_per_user",
     .field = &Config::max_connections_per_user,
     .unit = "connections",
     .doc = "Connections one user may hold on this gateway at once; 0 = no cap",
     .min = 0,
     .max = kU32Max},
    {.name = "limits.max_inflight_per_conn",
     .field = &Config::max_inflight_per_conn,
     .unit = "requests",
     .doc = "Requests of one connection awaiting a service reply; more are answered 429",
     .min = 1,
     .max = 65536},

    {.name = "auth.mode",
     .field = &Config::auth_mode,
     .doc = "\"jwt\" = a signed token verified here; \"service\" = the auth service over NATS "
            "decides; \"none\" = trust the user named in a query parameter (development only)",
     .choices = kAuthModes},
    {.name = "auth.expiry_warning_s",
     .field = &Config::expiry_warning_s,
     .unit = "s",
     .doc = "TOKEN_EXPIRING is pushed this long before a token expires; 0 = never",
     .min = 0,
     .max = 86400},
    {.name = "auth.revocation_ttl_s",
     .field = &Config::revocation_ttl_s,
     .unit = "s",
     .doc = "How long a revocation without ttlS refuses the revoked tokens",
     .min = 1,
     .max = 31536000},
    {.name = "auth.none_user_param",
     .field = &Config::none_user_param,
     .doc = "Query parameter naming the user when auth.mode = \"none\""},
    {.name = "auth.jwt.algorithms",
     .field = &Config::jwt_algorithms,
     .doc = "Signature algorithms accepted: HS256 (shared secret), RS256, ES256 (public key)",
     .choices = kAlgorithms},
    {.name = "auth.jwt.secret",
     .field = &Config::jwt_secret,
     .doc = "HS256 key, inline; prefer secret_file. HS256 needs exactly one of the two",
     .secret = true},
    {.name = "auth.jwt.secret_file",
     .field = &Config::jwt_secret_file,
     .unit = "path",
     .doc = "File holding the HS256 key (a trailing newline is ignored)"},
    {.name = "auth.jwt.public_key_file",
     .field = &Config::jwt_public_key_file,
     .unit = "path",
     .doc = "PEM public key verifying RS256/ES256 tokens; required for those algorithms"},
    {.name = "auth.jwt.issuer",
     .field = &Config::jwt_issuer,
     .doc = "Required `iss` claim; \"\" = not checked"},
    {.name = "auth.jwt.audience",
     .field = &Config::jwt_audience,
     .doc = "Value required in the `aud` claim; \"\" = not checked"},
    {.name = "auth.jwt.leeway_s",
     .field = &Config::jwt_leeway_s,
     .unit = "s",
     .doc = "Clock skew tolerated on exp, nbf and iat",
     .min = 0,
     .max = 3600},
    {.name = "auth.jwt.user_claim",
     .field = &Config::jwt_user_claim,
     .doc = "Claim holding the user id"},
    {.name = "auth.jwt.name_claim",
     .field = &Config::jwt_name_claim,
     .doc = "Claim holding the user's display name"},

    {.name = "auth.service.subject",
     .field = &Config::auth_service_subject,
     .doc = "NATS subject of the auth service; required by auth.mode = \"service\" and by "
            "re-validation"},
    {.name = "auth.service.timeout_ms",
     .field = &Config::auth_service_timeout_ms,
     .unit = "ms",
     .doc = "How long the gateway waits for the auth service's answer",
     .min = 10,
     .max = 60000},
    {.name = "auth.service.revalidate_interval_ms",
     .field = &Config::revalidate_interval_ms,
     .unit = "ms",
     .doc = "Every connection's token is re-validated by the auth service once per interval; "
            "0 = only when an answer's ttlMs runs out",
     .min = 0,
     .max = 86400000},
    {.name = "auth.service.revalidate_batch",
     .field = &Config::revalidate_batch,
     .unit = "tokens",
     .doc = "Tokens per re-validation request",
     .min = 1,
     .max = 1000},
    {.name = "auth.service.unavailable_grace_ms",
     .field = &Config::unavailable_grace_ms,
     .unit = "ms",
     .doc = "A connection whose re-validation gets no answer is kept this long after its last "
            "valid answer, then closed with 4007",
     .min = 0,
     .max = 86400000},

    {.name = "scripts.dir",
     .field = &Config::scripts_dir,
     .unit = "path",
     .doc = "Directory of command scripts (*.lua, one command each); \"\" = no scripts"},
    {.name = "scripts.watch",
     .field = &Config::scripts_watch,
     .doc = "Reload the scripts when a file in scripts.dir changes (SIGHUP always reloads)"},
    {.name = "scripts.debounce_ms",
     .field = &Config::scripts_debounce_ms,
     .unit = "ms",
     .doc = "Quiet time after the last change before a reload",
     .min = 10,
     .max = 60000},
    {.name = "scripts.memory_bytes",
     .field = &Config::scripts_memory_bytes,
     .unit = "bytes",
     .doc = "Memory cap of each worker's Lua state; a script past it fails with 520",
     .min = 1024 * 1024,
     .max = 1024 * kMiB},
    {.name = "scripts.instructions",
     .field = &Config::scripts_instructions,
     .unit = "instructions",
     .doc = "Budget units (Lua instructions, 64-byte pieces of work) one handle() call may "
            "use; past it the call fails with 520",
     .min = 1000,
     .max = kU32Max},
    {.name = "scripts.time_ms",
     .field = &Config::scripts_time_ms,
     .unit = "ms",
     .doc = "Wall time one handle() call may run; past it the call fails with 520",
     .min = 1,
     .max = 60000},

    {.name = "admin.enabled",
     .field = &Config::admin_enabled,
     .doc = "Serve the admin HTTP API (/metrics, /healthz, /readyz, push API)"},
    {.name = "admin.address",
     .field = &Config::admin_address,
     .doc = "Address of the admin listener; loopback by default, never the internet"},
    {.name = "admin.port",
     .field = &Config::admin_port,
     .unit = "TCP port",
     .doc = "Port of the admin listener; 0 = any free port (logged as admin_listening)",
     .min = 0,
     .max = 65535},
    {.name = "admin.api_key",
     .field = &Config::admin_api_key,
     .doc = "Key the push API and PUT /v1/log-level require (Authorization: Bearer or "
            "X-Api-Key); \"\" = those endpoints answer 403",
     .secret = true},

    {.name = "drain.window_ms",
     .field = &Config::drain_window_ms,
     .unit = "ms",
     .doc = "On SIGTERM, RECONNECT is sent to the clients spread over this window, so they "
            "do not all come back at once",
     .min = 0,
     .max = 3600000},
    {.name = "drain.timeout_ms",
     .field = &Config::drain_timeout_ms,
     .unit = "ms",
     .doc = "Drain deadline: connections still open then are closed and the gateway exits; "
            ">= drain.window_ms",
     .min = 100,
     .max = 3600000},

    {.name = "nats.url",
     .field = &Config::nats_url,
     .doc = "\"embedded\" = start a local nats-server child; otherwise comma-separated "
            "nats:// or tls:// URLs of the cluster"},
    {.name = "nats.prefix",
     .field = &Config::nats_prefix,
     .doc = "First token of the gateway's subjects (<prefix>.user.<id>, ...); [A-Za-z0-9_-]+"},
    {.name = "nats.name",
     .field = &Config::nats_name,
     .doc = "Connection name shown by the NATS server; \"\" = wsgw-<gateway.id>"},
    {.name = "nats.user", .field = &Config::nats_user, .doc = "User for user/password auth"},
    {.name = "nats.password",
     .field = &Config::nats_password,
     .doc = "Password for user/password auth",
     .secret = true},
    {.name = "nats.token",
     .field = &Config::nats_token,
     .doc = "Token for token auth",
     .secret = true},
    {.name = "nats.nkey",
     .field = &Config::nats_nkey,
     .doc = "NKey public key (U...) for NKey auth; needs nats.nkey_seed_file"},
    {.name = "nats.nkey_seed_file",
     .field = &Config::nats_nkey_seed_file,
     .unit = "path",
     .doc = "File holding an NKey seed (SU...) for NKey auth"},
    {.name = "nats.creds_file",
     .field = &Config::nats_creds_file,
     .unit = "path",
     .doc = "Credentials file (user JWT + NKey seed) for decentralized auth"},
    {.name = "nats.tls",
     .field = &Config::nats_tls,
     .doc = "Require TLS to the NATS servers"},
    {.name = "nats.tls_ca_file",
     .field = &Config::nats_tls_ca_file,
     .unit = "path",
     .doc = "CA bundle trusted for the servers' certificates; \"\" = system default"},
    {.name = "nats.tls_cert_file",
     .field = &Config::nats_tls_cert_file,
     .unit = "path",
     .doc = "Client certificate (PEM) for mutual TLS; needs nats.tls_key_file"},
    {.name = "nats.tls_key_file",
     .field = &Config::nats_tls_key_file,
     .unit = "path",
     .doc = "Client private key (PEM) for mutual TLS"},
    {.name = "nats.connect_timeout_ms",
     .field = &Config::nats_connect_timeout_ms,
     .unit = "ms",
     .doc = "Timeout of one connection attempt",
     .min = 100,
     .max = 600000},
    {.name = "nats.reconnect_wait_ms",
     .field = &Config::nats_reconnect_wait_ms,
     .unit = "ms",
     .doc = "Pause between reconnect attempts to the same server (the gateway retries forever)",
     .min = 10,
     .max = 600000},
    {.name = "nats.reconnect_jitter_ms",
     .field = &Config::nats_reconnect_jitter_ms,
     .unit = "ms",
     .doc = "Random extra pause per attempt, so a fleet does not reconnect in step",
     .min = 0,
     .max = 600000},
    {.name = "nats.reconnect_buffer_bytes",
     .field = &Config::nats_reconnect_buffer_bytes,
     .unit = "bytes",
     .doc = "Publishes held while disconnected; past it a publish fails at once (502 to clients)",
     .min = 0,
     .max = 1024 * kMiB},
    {.name = "nats.pending_limit_bytes",
     .field = &Config::nats_pending_limit_bytes,
     .unit = "bytes",
     .doc = "Messages waiting for delivery per subscription; past it NATS drops and counts them",
     .min = 64 * 1024,
     .max = 4096 * kMiB - 1},
    {.name = "nats.delivery_threads",
     .field = &Config::nats_delivery_threads,
     .unit = "threads",
     .doc = "Threads running NATS callbacks (they only hand messages to workers)",
     .min = 1,
     .max = 64},
    {.name = "nats.request_timeout_ms",
     .field = &Config::nats_request_timeout_ms,
     .unit = "ms",
     .doc = "Reply timeout of a request route that names none; the client then gets 504",
     .min = 10,
     .max = 600000},
    {.name = "nats.embedded.binary",
     .field = &Config::embedded_binary,
     .unit = "path",
     .doc = "nats-server executable started when nats.url = \"embedded\" (looked up in PATH)"},
    {.name = "nats.embedded.data_dir",
     .field = &Config::embedded_data_dir,
     .unit = "path",
     .doc = "State directory of the embedded server (JetStream store, config, logs)"},
    {.name = "nats.embedded.port",
     .field = &Config::embedded_port,
     .unit = "TCP port",
     .doc = "Loopback port of the embedded server; 0 = any free port",
     .min = 0,
     .max = 65535},
    {.name = "nats.embedded.jetstream",
     .field = &Config::embedded_jetstream,
     .doc = "Enable JetStream in the embedded server (state under data_dir)"},
    {.name = "nats.embedded.start_timeout_ms",
     .field = &Config::embedded_start_timeout_ms,
     .unit = "ms",
     .doc = "Time the embedded server has to start accepting connections",
     .min = 100,
     .max = 600000},

    {.name = "log.level",
     .field = &Config::log_level,
     .doc = "Least severe level written: debug, info, warn or error",
     .choices = kLogLevels},
};

const Key* find_key(std::string_view name) {
  for (const Key& k : kKeys) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

// True if `name` is a section or subsection ("auth", "auth.jwt").
bool is_section(std::string_view name) {
  for (const Key& k : kKeys) {
    if (k.name.size() > name.size() && k.name.starts_with(name) && k.name[name.size()] == '.') {
      return true;
    }
  }
  return false;
}

// Optimal string alignment distance: edits, counting a swap of neighbours as one.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The key `name` was probably meant to be: one at most two edits from `name`,
// or whose last part is (`port`, `prot` -> "server.port"); "" if none is
// close enough to be a useful guess.
std::string_view closest_key(std::string_view name) {
  std::string_view best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const Key& k : kKeys) {
    std::size_t d = std::min(edit_distance(name, k.name), edit_distance(name, k.leaf()));
    if (d < best_distance) {
      best_distance = d;
      best = k.name;
    }
  }
  bool close = best_distance == 0 || (best_distance <= 2 && 2 * best_distance < name.size());
  return close ? best : std::string_view();
}

std::string in_quotes(std::string_view s) {
  return "'" + std::string(s) + "'";
}

std::string join(std::span<const std::string_view> items, std::string_view sep) {
  std::string out;
  for (std::string_view item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

std::string_view expected_type(Kind kind) {
  switch (kind) {
    case Kind::kString:
      return "expected a string";
    case Kind::kBool:
      return "expected a boolean";
    case Kind::kUint:
      return "expected an integer";
    case Kind::kList:
      return "expected an array of strings";
  }
  return "";
}

Value get(const Key& k, const Config& cfg) {
  return std::visit(
      [&](auto member) -> Value {
        const auto& v = cfg.*member;
        if constexpr (std::is_integral_v<std::remove_cvref_t<decltype(v)>> &&
                      !std::is_same_v<std::remove_cvref_t<decltype(v)>, bool>) {
          return static_cast<std::int64_t>(v);
        } else {
          return v;
        }
      },
      k.field);
}

// Why `v` is not an acceptable value of `k` (range, allowed strings), without
// the key name; nullopt if it is. `v` holds the alternative k.kind() implies.
std::optional<std::string> check(const Key& k, const Value& v) {
  auto in_choices = [&](std::string_view s) {
    return std::find(k.choices.begin(), k.choices.end(), s) != k.choices.end();
  };
  switch (k.kind()) {
    case Kind::kUint: {
      std::int64_t n = std::get<std::int64_t>(v);
      if (n < k.min || n > k.max) {
        return std::to_string(n) + " is out of range " + std::to_string(k.min) + ".." +
               std::to_string(k.max);
      }
      break;
    }
    case Kind::kString:
      if (!k.choices.empty() && !in_choices(std::get<std::string>(v))) {
        return in_quotes(std::get<std::string>(v)) + " is not one of " + join(k.choices, ", ");
      }
      break;
    case Kind::kList:
      if (!k.choices.empty()) {
        for (const std::string& item : std::get<std::vector<std::string>>(v)) {
          if (!in_choices(item)) return in_quotes(item) + " is not one of " + join(k.choices, ", ");
        }
      }
      break;
    case Kind::kBool:
      break;
  }
  return std::nullopt;
}

std::optional<std::string> assign(const Key& k, Value v, Config& cfg) {
  if (auto why = check(k, v)) return why;
  std::visit(
      [&](auto member) {
        auto& dst = cfg.*member;
        using T = std::remove_cvref_t<decltype(dst)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          dst = static_cast<T>(std::get<std::int64_t>(v));
        } else {
          dst = std::move(std::get<T>(v));
        }
      },
      k.field);
  return std::nullopt;
}

std::optional<Value> from_toml(const Key& k, const toml::node& node) {
  switch (k.kind()) {
    case Kind::kString:
      if (auto s = node.value_exact<std::string>()) return Value(std::move(*s));
      break;
    case Kind::kBool:
      if (auto b = node.value_exact<bool>()) return Value(*b);
      break;
    case Kind::kUint:
      if (auto n = node.value_exact<std::int64_t>()) return Value(*n);
      break;
    case Kind::kList:
      if (const toml::array* array = node.as_array()) {
        std::vector<std::string> items;
        for (const toml::node& item : *array) {
          auto s = item.value_exact<std::string>();
          if (!s) return std::nullopt;
          items.push_back(std::move(*s));
        }
        return Value(std::move(items));
      }
      break;
  }
  return std::nullopt;
}

// ASCII only, whatever the process locale.
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_alnum(char c) {
  return is_alpha(c) || (c >= '0' && c <= '9');
}
bool is_space(char c) {
  return c == ' ' || c == '\t';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::optional<bool> parse_bool(std::string_view text) {
  std::string t = lower(text);
  if (t == "true" || t == "1" || t == "yes") return true;
  if (t == "false" || t == "0" || t == "no") return false;
  return std::nullopt;
}

// Parses command-line text as a value of `k`; on failure sets `why`.
std::optional<Value> from_text(const Key& k, std::string_view text, std::string& why) {
  switch (k.kind()) {
    case Kind::kString:
      return Value(std::string(text));
    case Kind::kBool:
      if (auto b = parse_bool(text)) return Value(*b);
      why = "expected a boolean (true/false/1/0/yes/no), got " + in_quotes(text);
      return std::nullopt;
    case Kind::kUint: {
      std::int64_t n = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (ec == std::errc::result_out_of_range) {
        why = std::string(text) + " is out of range " + std::to_string(k.min) + ".." +
              std::to_string(k.max);
        return std::nullopt;
      }
      if (ec != std::errc() || end != text.data() + text.size()) {
        why = "expected an integer, got " + in_quotes(text);
        return std::nullopt;
      }
      return Value(n);
    }
    case Kind::kList: {
      std::vector<std::string> items;
      while (!text.empty()) {
        std::size_t comma = text.find(',');
        std::string_view item = trim(text.substr(0, comma));
        if (!item.empty()) items.emplace_back(item);
        text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
      }
      return Value(std::move(items));
    }
  }
  return std::nullopt;
}

// Reads a whole file; on failure returns "cannot read 'path': <strerror>".
std::optional<std::string> read_file(const std::string& path, std::string& out) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return "cannot read " + in_quotes(path) + ": " + std::strerror(EISDIR);
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return "cannot read " + in_quotes(path) + ": " + std::strerror(errno);
  out.clear();
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  bool failed = std::ferror(f) != 0;
  int err = errno;
  std::fclose(f);
  if (failed) return "cannot read " + in_quotes(path) + ": " + std::strerror(err);
  return std::nullopt;
}

// Collects load errors and keeps the one earliest in the file: toml++ tables
// iterate in key order, not file order.
class FileErrors {
 public:
  explicit FileErrors(const std::string& path) : path_(path) {}
  void add(std::uint32_t line, std::string reason) {
    std::uint32_t order = line > 0 ? line : std::numeric_limits<std::uint32_t>::max();
    if (first_ && first_order_ <= order) return;
    first_order_ = order;
    std::string where = line > 0 ? path_ + ":" + std::to_string(line) : path_;
    first_ = LoadError{std::move(where), std::move(reason)};
  }
  std::optional<LoadError> first() && { return std::move(first_); }

 private:
  const std::string& path_;
  std::optional<LoadError> first_;
  std::uint32_t first_order_ = 0;
};

std::string did_you_mean(std::string_view name, std::string_view prefix) {
  std::string_view guess = closest_key(name);
  if (guess.empty()) return "";
  return " (did you mean " + in_quotes(std::string(prefix) + std::string(guess)) + "?)";
}

// [[routes]] tables: command, subject, mode, timeout_ms, ack.
void read_routes(const toml::node& node, std::uint32_t line, Config& cfg, FileErrors& errors) {
  const toml::array* arr = node.as_array();
  if (arr == nullptr || !arr->is_array_of_tables()) {
    errors.add(line, "routes: expected [[routes]] tables");
    return;
  }
  std::vector<Config::Route> routes;
  for (const toml::node& item : *arr) {
    const toml::table& t = *item.as_table();
    std::uint32_t at = t.source().begin.line;
    Config::Route r;
    bool ok = true;
    for (const auto& [k, v] : t) {
      std::uint32_t kline = v.source().begin.line ? v.source().begin.line : at;
      std::string_view key = k.str();
      if (key == "command" || key == "subject" || key == "mode") {
        auto str = v.value<std::string>();
        if (!str || !v.is_string()) {
          errors.add(kline, "routes." + std::string(key) + ": expected a string");
          ok = false;
          continue;
        }
        (key == "command" ? r.command : key == "subject" ? r.subject : r.mode) = *str;
      } else if (key == "timeout_ms") {
        auto n = v.value<std::int64_t>();
        if (!v.is_integer() || !n || *n < 0 || *n > 600000) {
          errors.add(kline, "routes.timeout_ms: expected an integer in 0..600000");
          ok = false;
          continue;
        }
        r.timeout_ms = static_cast<std::uint32_t>(*n);
      } else if (key == "ack") {
        if (!v.is_boolean()) {
          errors.add(kline, "routes.ack: expected true or false");
          ok = false;
          continue;
        }
        r.ack = *v.value<bool>();
      } else {
        errors.add(kline, "unknown key " + in_quotes("routes." + std::string(key)) +
                              " (routes take command, subject, mode, timeout_ms, ack)");
        ok = false;
      }
    }
    if (!ok) continue;
    if (r.command.empty() || r.subject.empty()) {
      errors.add(at, "routes: every route needs a command and a subject");
      continue;
    }
    if (r.mode != "request" && r.mode != "publish") {
      errors.add(at, "routes.mode: " + in_quotes(r.mode) + " is not one of request, publish");
      continue;
    }
    for (const auto& other : routes) {
      if (other.command == r.command) {
        errors.add(at, "routes: command " + in_quotes(r.command) + " is routed twice");
        ok = false;
      }
    }
    if (ok) routes.push_back(std::move(r));
  }
  cfg.routes = std::move(routes);
}

void walk(const toml::table& table, const std::string& prefix, Config& cfg, FileErrors& errors) {
  for (const auto& [key, node] : table) {
    std::string name =
        prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str());
    std::uint32_t line = node.source().begin.line;
    if (line == 0) line = key.source().begin.line;
    if (name == "routes") {
      read_routes(node, line, cfg, errors);
      continue;
    }
    if (const Key* k = find_key(name)) {
      std::optional<Value> v = from_toml(*k, node);
      if (!v) {
        errors.add(line, name + ": " + std::string(expected_type(k->kind())));
      } else if (auto why = assign(*k, std::move(*v), cfg)) {
        errors.add(line, name + ": " + *why);
      }
    } else if (is_section(name)) {
      if (const toml::table* sub = node.as_table()) {
        walk(*sub, name, cfg, errors);
      } else {
        errors.add(line, name + ": expected a table ([" + name + "])");
      }
    } else {
      errors.add(line, "unknown key " + in_quotes(name) + did_you_mean(name, ""));
    }
  }
}

std::string random_hex(int digits) {
  std::random_device rd;
  std::uniform_int_distribution<std::uint32_t> dist(0, (1u << (4 * digits)) - 1);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%0*x", digits, dist(rd));
  return buf;
}

bool is_id_char(char c) {
  return is_alnum(c) || c == '_' || c == '-';
}

bool valid_id(std::string_view id) {
  return !id.empty() && id.size() <= kMaxIdLength && std::all_of(id.begin(), id.end(), is_id_char);
}

// Checks `origin` is scheme://host[:port] and lowercases it in place: browsers
// send the Origin header lowercase, so the server can compare bytes.
std::optional<std::string> check_origin(std::string& origin) {
  const std::string shape = in_quotes(origin) + " is not scheme://host[:port]";
  std::size_t sep = origin.find("://");
  if (sep == std::string::npos || sep == 0) return shape + " (no scheme)";
  std::string scheme = lower(std::string_view(origin).substr(0, sep));
  if (!is_alpha(scheme[0]) || !std::all_of(scheme.begin(), scheme.end(), [](char c) {
        return is_alnum(c) || c == '+' || c == '-' || c == '.';
      })) {
    return shape + " (bad scheme)";
  }
  std::string rest = lower(std::string_view(origin).substr(sep + 3));
  if (rest.find_first_of("/?#@ \t") != std::string::npos) {
    return shape + " (no path, query, user or trailing slash)";
  }
  std::size_t host_end = 0;
  if (rest.starts_with('[')) {
    std::size_t close = rest.find(']');
    if (close == std::string::npos) return shape + " (unclosed '[')";
    host_end = close + 1;
  } else {
    host_end = std::min(rest.find(':'), rest.size());
  }
  std::string host = rest.substr(0, host_end);
  if (host.empty() || host == "[]") return shape + " (no host)";
  if (host_end < rest.size()) {
    if (rest[host_end] != ':') return shape;
    std::string port = rest.substr(host_end + 1);
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535) {
      return shape + " (bad port)";
    }
    bool default_port = ((scheme == "http" || scheme == "ws") && p == 80) ||
                        ((scheme == "https" || scheme == "wss") && p == 443);
    if (default_port) {
      return in_quotes(origin) + " names the default port; browsers omit it, so write " +
             in_quotes(scheme + "://" + host);
    }
  }
  origin = scheme + "://" + rest;
  return std::nullopt;
}

// Reads the HS256 key from its file into cfg.jwt_secret.
std::optional<LoadError> load_secret_file(Config& cfg) {
  const std::string where = "auth.jwt.secret_file";
  std::string text;
  if (auto why = read_file(cfg.jwt_secret_file, text)) return LoadError{where, *why};
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) return LoadError{where, in_quotes(cfg.jwt_secret_file) + " is empty"};
  cfg.jwt_secret = std::move(text);
  return std::nullopt;
}

std::optional<LoadError> validate_jwt(Config& cfg) {
  if (cfg.jwt_algorithms.empty()) {
    return LoadError{
        "auth.jwt.algorithms",
        "must not be empty when auth.mode = \"jwt\"; use some of " + join(kAlgorithms, ", ")};
  }
  auto uses = [&](std::string_view alg) {
    return std::find(cfg.jwt_algorithms.begin(), cfg.jwt_algorithms.end(), alg) !=
           cfg.jwt_algorithms.end();
  };
  if (uses("HS256")) {
    bool inline_secret = !cfg.jwt_secret.empty();
    bool file_secret = !cfg.jwt_secret_file.empty();
    if (inline_secret == file_secret) {
      return LoadError{"auth.jwt.secret",
                       std::string(inline_secret ? "both" : "neither") +
                           " of auth.jwt.secret and auth.jwt.secret_file set; HS256 needs "
                           "exactly one"};
    }
    if (file_secret) {
      if (auto e = load_secret_file(cfg)) return e;
    }
  }
  if (uses("RS256") && uses("ES256")) {
    return LoadError{"auth.jwt.algorithms",
                     "RS256 and ES256 together need two public keys; only one "
                     "auth.jwt.public_key_file can be given"};
  }
  if (uses("RS256") || uses("ES256")) {
    const char* where = "auth.jwt.public_key_file";
    if (cfg.jwt_public_key_file.empty()) {
      return LoadError{where, "must be set for RS256/ES256"};
    }
    std::error_code ec;
    if (std::filesystem::is_directory(cfg.jwt_public_key_file, ec)) {
      return LoadError{where, "cannot read " + in_quotes(cfg.jwt_public_key_file) + ": " +
                                  std::strerror(EISDIR)};
    }
    std::FILE* f = std::fopen(cfg.jwt_public_key_file.c_str(), "rb");
    if (f == nullptr) {
      return LoadError{
          where, "cannot read " + in_quotes(cfg.jwt_public_key_file) + ": " + std::strerror(errno)};
    }
    std::fclose(f);
  }
  if (cfg.jwt_user_claim.empty()) return LoadError{"auth.jwt.user_claim", "must not be empty"};
  return std::nullopt;
}

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string toml_value(const Value& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::remove_cvref_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return toml_string(x);
        } else if constexpr (std::is_same_v<T, bool>) {
          return x ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          return std::to_string(x);
        } else {
          std::string out = "[";
          for (std::size_t i = 0; i < x.size(); ++i) {
            if (i > 0) out += ", ";
            out += toml_string(x[i]);
          }
          return out + "]";
        }
      },
      v);
}

std::string type_name(const Key& k) {
  switch (k.kind()) {
    case Kind::kString:
      return k.choices.empty() ? "string" : join(k.choices, "|");
    case Kind::kBool:
      return "bool";
    case Kind::kUint:
      return "integer " + std::to_string(k.min) + ".." + std::to_string(k.max);
    case Kind::kList:
      return k.choices.empty() ? "[string]" : "[" + join(k.choices, "|") + "]";
  }
  return "";
}

std::optional<LoadError> validate_nats(Config& cfg) {
  if (cfg.nats_url.empty()) return LoadError{"nats.url", "must not be empty"};
  if (!valid_id(cfg.nats_prefix)) {
    return LoadError{"nats.prefix", in_quotes(cfg.nats_prefix) +
                                        " must match [A-Za-z0-9_-]{1,64}: it is one subject token"};
  }
  int methods = (!cfg.nats_user.empty() || !cfg.nats_password.empty()) + !cfg.nats_token.empty() +
                !cfg.nats_nkey_seed_file.empty() + !cfg.nats_creds_file.empty();
  if (methods > 1) {
    return LoadError{"nats", "give one of user/password, token, nkey_seed_file, creds_file"};
  }
  if (cfg.nats_nkey.empty() != cfg.nats_nkey_seed_file.empty()) {
    return LoadError{"nats.nkey", "NKey auth needs both nats.nkey and nats.nkey_seed_file"};
  }
  if (cfg.nats_tls_cert_file.empty() != cfg.nats_tls_key_file.empty()) {
    return LoadError{"nats.tls_cert_file", "a client certificate needs nats.tls_key_file too"};
  }
  if (cfg.nats_name.empty()) cfg.nats_name = "wsgw-" + cfg.gateway_id;
  return std::nullopt;
}

}  // namespace

std::optional<LoadError> load_file(const std::string& path, Config& cfg) {
  std::string text;
  if (auto why = read_file(path, text)) return LoadError{path, *why};
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const toml::source_position& at = e.source().begin;
    return LoadError{path + ":" + std::to_string(at.line) + ":" + std::to_string(at.column),
                     std::string(e.description())};
  }
  Config next = cfg;
  FileErrors errors(path);
  walk(root, "", next, errors);
  if (auto e = std::move(errors).first()) return e;
  cfg = std::move(next);
  return std::nullopt;
}

std::optional<LoadError> apply_overrides(const std::vector<std::string>& args, Config& cfg) {
  Config next = cfg;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (!arg.starts_with("--") || arg.size() == 2) {
      return LoadError{std::string(arg),
                       "unexpected argument; settings are given as --section.key=value"};
    }
    std::string_view name = arg.substr(2);
    std::optional<std::string_view> text;
    if (std::size_t eq = name.find('='); eq != std::string_view::npos) {
      text = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const std::string option = "--" + std::string(name);
    const Key* k = find_key(name);
    if (k == nullptr) {
      return LoadError{option,
                       "unknown option" + did_you_mean(name, "--") + "; see --help for settings"};
    }
    if (!text) {
      bool has_next = i + 1 < args.size() && !std::string_view(args[i + 1]).starts_with("--");
      if (k->kind() == Kind::kBool) {
        // A bare flag means true; a following boolean word is its value.
        text = has_next && parse_bool(args[i + 1]) ? std::string_view(args[++i]) : "true";
      } else if (has_next) {
        text = args[++i];
      } else {
        return LoadError{option, "missing value (" + option + "=VALUE)"};
      }
    }
    std::string why;
    std::optional<Value> v = from_text(*k, *text, why);
    if (!v) return LoadError{option, why};
    if (auto bad = assign(*k, std::move(*v), next)) return LoadError{option, *bad};
  }
  cfg = std::move(next);
  return std::nullopt;
}

std::optional<LoadError> validate(Config& cfg) {
  for (const Key& k : kKeys) {
    if (auto why = check(k, get(k, cfg))) return LoadError{std::string(k.name), *why};
  }

  if (cfg.workers == 0) {
    cfg.workers = std::clamp(std::thread::hardware_concurrency(), 1u, kMaxWorkers);
  }
  if (cfg.gateway_id.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    cfg.gateway_id = generate_gateway_id(host);
  }
  if (!valid_id(cfg.gateway_id)) {
    return LoadError{"gateway.id",
                     in_quotes(cfg.gateway_id) +
                         " must match [A-Za-z0-9_-]{1,64}: it is a NATS subject token, and a "
                         "'.' would split the subject"};
  }

  if (!cfg.ws_path.starts_with('/')) {
    return LoadError{"server.path", in_quotes(cfg.ws_path) + " must start with '/'"};
  }
  if (cfg.ws_path.find_first_of("?# \t") != std::string::npos) {
    return LoadError{"server.path", in_quotes(cfg.ws_path) + " must not hold '?', '#' or spaces"};
  }
  if (cfg.listen_address.empty()) return LoadError{"server.address", "must not be empty"};
  for (std::string& origin : cfg.allowed_origins) {
    if (auto why = check_origin(origin)) return LoadError{"server.allowed_origins", *why};
  }

  if (cfg.ping_interval_ms >= cfg.idle_timeout_ms) {
    return LoadError{"heartbeat.ping_interval_ms",
                     std::to_string(cfg.ping_interval_ms) +
                         " must be less than heartbeat.idle_timeout_ms (" +
                         std::to_string(cfg.idle_timeout_ms) + ")"};
  }
  if (cfg.tick_ms > cfg.ping_interval_ms) {
    return LoadError{"heartbeat.tick_ms", std::to_string(cfg.tick_ms) +
                                              " must not exceed heartbeat.ping_interval_ms (" +
                                              std::to_string(cfg.ping_interval_ms) + ")"};
  }
  if (cfg.send_queue_limit_bytes < cfg.max_message_bytes) {
    return LoadError{"ws.send_queue_limit_bytes", std::to_string(cfg.send_queue_limit_bytes) +
                                                      " must be at least ws.max_message_bytes (" +
                                                      std::to_string(cfg.max_message_bytes) + ")"};
  }

  if (cfg.auth_mode == "jwt") {
    if (auto e = validate_jwt(cfg)) return e;
  } else if (cfg.auth_mode == "none" && cfg.none_user_param.empty()) {
    return LoadError{"auth.none_user_param", "must not be empty when auth.mode = \"none\""};
  }
  if (cfg.auth_mode == "service" && cfg.auth_service_subject.empty()) {
    return LoadError{"auth.service.subject", "must be set when auth.mode = \"service\""};
  }
  if (cfg.revalidate_interval_ms != 0 && cfg.auth_service_subject.empty()) {
    return LoadError{"auth.service.revalidate_interval_ms",
                     "re-validation needs auth.service.subject"};
  }
  if (cfg.revalidate_interval_ms != 0 && cfg.auth_mode == "none") {
    return LoadError{"auth.service.revalidate_interval_ms",
                     "auth.mode = \"none\" has no tokens to re-validate"};
  }
  if (cfg.revalidate_interval_ms != 0 && cfg.revalidate_interval_ms < 1000) {
    return LoadError{"auth.service.revalidate_interval_ms",
                     std::to_string(cfg.revalidate_interval_ms) + " is below 1000 (or 0 = off)"};
  }
  if (!cfg.auth_service_subject.empty() &&
      !bus::valid_route_subject(cfg.auth_service_subject, cfg.nats_prefix)) {
    return LoadError{"auth.service.subject",
                     "'" + cfg.auth_service_subject +
                         "' is not a valid NATS subject outside the gateway's own prefix"};
  }
  if (auto e = validate_nats(cfg)) return e;
  if (cfg.drain_timeout_ms < cfg.drain_window_ms) {
    return LoadError{"drain.timeout_ms", std::to_string(cfg.drain_timeout_ms) +
                                             " must be at least drain.window_ms (" +
                                             std::to_string(cfg.drain_window_ms) + ")"};
  }
  return std::nullopt;
}

std::string help_text() {
  const Config defaults;
  struct Row {
    std::string name, type, value, unit;
    std::string_view doc;
  };
  std::vector<Row> rows;
  std::size_t widths[4] = {};
  for (const Key& k : kKeys) {
    Row r{std::string(k.name), type_name(k), toml_value(get(k, defaults)), std::string(k.unit),
          k.doc};
    widths[0] = std::max(widths[0], r.name.size());
    widths[1] = std::max(widths[1], r.type.size());
    widths[2] = std::max(widths[2], r.value.size());
    widths[3] = std::max(widths[3], r.unit.size());
    rows.push_back(std::move(r));
  }
  auto pad = [](const std::string& s, std::size_t width) {
    return s + std::string(width - s.size() + 2, ' ');
  };
  std::string out =
      "Settings ([section] key = value in the config file, or --section.key=value):\n";
  out += "  " + pad("KEY", widths[0]) + pad("TYPE", widths[1]) + pad("DEFAULT", widths[2]) +
         pad("UNIT", widths[3]) + "MEANING\n";
  std::string_view section;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (kKeys[i].section() != section) {
      section = kKeys[i].section();
      out += "\n[" + std::string(section) + "]\n";
    }
    const Row& r = rows[i];
    out += "  " + pad(r.name, widths[0]) + pad(r.type, widths[1]) + pad(r.value, widths[2]) +
           pad(r.unit, widths[3]) + std::string(r.doc) + "\n";
  }
  return out;
}

std::vector<std::string> all_keys() {
  std::vector<std::string> names;
  for (const Key& k : kKeys) names.emplace_back(k.name);
  return names;
}

std::string dump(const Config& cfg) {
  std::string out;
  std::string_view section;
  for (const Key& k : kKeys) {
    if (k.section() != section) {
      section = k.section();
      out += (out.empty() ? "[" : "\n[") + std::string(section) + "]\n";
    }
    Value v = get(k, cfg);
    if (k.secret && !std::get<std::string>(v).empty()) v = std::string("<redacted>");
    out += std::string(k.leaf()) + " = " + toml_value(v) + "\n";
  }
  for (const Config::Route& r : cfg.routes) {
    out += "\n[[routes]]\ncommand = " + toml_string(r.command) + "\nsubject = " +
           toml_string(r.subject) + "\nmode = " + toml_string(r.mode) +
           "\ntimeout_ms = " + std::to_string(r.timeout_ms) + "\nack = " +
           (r.ack ? "true" : "false") + "\n";
  }
  return out;
}

std::string generate_gateway_id(std::string_view hostname) {
  constexpr std::size_t kSuffix = 7;  // "-" + 6 hex digits
  std::string id(hostname.substr(0, kMaxIdLength - kSuffix));
  if (id.empty()) id = "wsgw";
  std::replace_if(
      id.begin(), id.end(), [](char c) { return !is_id_char(c); }, '-');
  return id + "-" + random_hex(6);
}

}  // namespace wsgw::config
