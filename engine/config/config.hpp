// The gateway's configuration: one struct with every setting, its default and
// unit. It is filled from a TOML file (config/wsgw.toml documents every key)
// and then from command-line overrides (`--section.key=value`), and validated
// before anything starts. Every key has one entry in the key table of
// config.cpp, which drives the TOML loader, the command line and `--help`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wsgw::config {

struct Config {
  // [gateway]
  std::string gateway_id;  // gateway.id: "" = <hostname>-<random>; [A-Za-z0-9_-]{1,64}
  unsigned workers = 0;    // gateway.workers: worker threads; 0 = one per core

  // [server]
  std::string listen_address = "0.0.0.0";         // server.address
  std::uint16_t listen_port = 8080;               // server.port: 0 = any free port (logged)
  std::string ws_path = "/ws";                    // server.path: the upgrade path
  std::vector<std::string> allowed_origins;       // server.allowed_origins: empty = any Origin
  std::uint32_t max_request_header_bytes = 8192;  // server.max_request_header_bytes
  std::uint32_t handshake_timeout_ms = 5000;      // server.handshake_timeout_ms
  std::uint32_t max_connections = 1000000;        // server.max_connections: per gateway
  std::uint32_t backlog = 4096;                   // server.backlog: listen(2) backlog

  // [ws]
  std::uint32_t max_message_bytes = 64 * 1024;         // ws.max_message_bytes
  std::uint32_t send_queue_limit_bytes = 1024 * 1024;  // ws.send_queue_limit_bytes: slow consumer
  std::uint32_t read_buffer_bytes = 64 * 1024;         // ws.read_buffer_bytes: per worker
  bool tcp_nodelay = true;                             // ws.tcp_nodelay

  // [heartbeat]
  std::uint32_t ping_interval_ms = 25000;  // heartbeat.ping_interval_ms: ping when silent
  std::uint32_t idle_timeout_ms = 60000;   // heartbeat.idle_timeout_ms: close when silent
  std::uint32_t tick_ms = 100;             // heartbeat.tick_ms: timing-wheel resolution

  // [limits]
  std::uint32_t max_connections_per_user = 16;  // limits.max_connections_per_user: 0 = no cap

  // [auth]
  std::string auth_mode = "jwt";         // auth.mode: "jwt", "service" or "none" (development only)
  std::string none_user_param = "user";  // auth.none_user_param: query parameter naming the user
  std::vector<std::string> jwt_algorithms = {"HS256"};  // auth.jwt.algorithms: HS256, RS256, ES256
  std::string jwt_secret;               // auth.jwt.secret: HS256 key (prefer secret_file)
  std::string jwt_secret_file;          // auth.jwt.secret_file: file holding the HS256 key
  std::string jwt_public_key_file;      // auth.jwt.public_key_file: PEM for RS256/ES256
  std::string jwt_issuer;               // auth.jwt.issuer: required `iss` ("" = not checked)
  std::string jwt_audience;             // auth.jwt.audience: required in `aud` ("" = not checked)
  std::uint32_t jwt_leeway_s = 30;      // auth.jwt.leeway_s: clock skew allowed on exp/nbf/iat
  std::string jwt_user_claim = "sub";   // auth.jwt.user_claim
  std::string jwt_name_claim = "name";  // auth.jwt.name_claim
  std::uint32_t expiry_warning_s = 60;      // auth.expiry_warning_s: TOKEN_EXPIRING lead; 0 = off
  std::uint32_t revocation_ttl_s = 86400;   // auth.revocation_ttl_s: default life of a revocation
  // [auth.service]
  std::string auth_service_subject;               // auth.service.subject
  std::uint32_t auth_service_timeout_ms = 2000;   // auth.service.timeout_ms
  std::uint32_t revalidate_interval_ms = 0;       // auth.service.revalidate_interval_ms: 0 = off
  std::uint32_t revalidate_batch = 100;           // auth.service.revalidate_batch
  std::uint32_t unavailable_grace_ms = 300000;    // auth.service.unavailable_grace_ms

  // [log]
  std::string log_level = "info";  // log.level: debug, info, warn, error

  // [limits] (continued)
  std::uint32_t max_inflight_per_conn = 64;  // limits.max_inflight_per_conn: requests awaiting a reply

  // [scripts]
  std::string scripts_dir;                      // scripts.dir: "" = no scripts
  bool scripts_watch = true;                    // scripts.watch: reload on file changes
  std::uint32_t scripts_debounce_ms = 200;      // scripts.debounce_ms
  std::uint32_t scripts_memory_bytes = 32 * 1024 * 1024;  // scripts.memory_bytes: per Lua state
  std::uint32_t scripts_instructions = 1000000;  // scripts.instructions: per handle() call
  std::uint32_t scripts_time_ms = 50;           // scripts.time_ms: per handle() call

  // [admin]
  bool admin_enabled = true;               // admin.enabled
  std::string admin_address = "127.0.0.1"; // admin.address: keep it off the internet
  std::uint16_t admin_port = 0;            // admin.port: 0 = any free port (logged)
  std::string admin_api_key;               // admin.api_key: "" = push API disabled

  // [drain]
  std::uint32_t drain_window_ms = 10000;   // drain.window_ms: RECONNECT spread over this
  std::uint32_t drain_timeout_ms = 30000;  // drain.timeout_ms: close whatever is left after this

  // [nats]
  std::string nats_url = "embedded";     // nats.url: "embedded" or comma-separated nats:// URLs
  std::string nats_prefix = "wsgw";      // nats.prefix: first token of the gateway's own subjects
  std::string nats_name;                 // nats.name: connection name; "" = wsgw-<gateway.id>
  std::string nats_user;                 // nats.user
  std::string nats_password;             // nats.password
  std::string nats_token;                // nats.token
  std::string nats_nkey;                 // nats.nkey: NKey public key (U...)
  std::string nats_nkey_seed_file;       // nats.nkey_seed_file
  std::string nats_creds_file;           // nats.creds_file: JWT + NKey credentials
  bool nats_tls = false;                 // nats.tls: require TLS
  std::string nats_tls_ca_file;          // nats.tls_ca_file
  std::string nats_tls_cert_file;        // nats.tls_cert_file: client certificate
  std::string nats_tls_key_file;         // nats.tls_key_file
  std::uint32_t nats_connect_timeout_ms = 2000;     // nats.connect_timeout_ms
  std::uint32_t nats_reconnect_wait_ms = 1000;      // nats.reconnect_wait_ms
  std::uint32_t nats_reconnect_jitter_ms = 1000;    // nats.reconnect_jitter_ms
  std::uint32_t nats_reconnect_buffer_bytes = 8 * 1024 * 1024;  // nats.reconnect_buffer_bytes
  std::uint32_t nats_pending_limit_bytes = 64 * 1024 * 1024;   // nats.pending_limit_bytes: per subscription
  std::uint32_t nats_delivery_threads = 2;          // nats.delivery_threads: callback thread pool
  std::uint32_t nats_request_timeout_ms = 5000;     // nats.request_timeout_ms: default route timeout

  // [nats.embedded]
  std::string embedded_binary = "nats-server";      // nats.embedded.binary
  std::string embedded_data_dir = "var/nats";       // nats.embedded.data_dir
  std::uint16_t embedded_port = 0;                  // nats.embedded.port: 0 = any free port
  bool embedded_jetstream = true;                   // nats.embedded.jetstream
  std::uint32_t embedded_start_timeout_ms = 10000;  // nats.embedded.start_timeout_ms

  // [[routes]]: which NATS subject serves a command (scripts add more later).
  struct Route {
    std::string command;
    std::string subject;
    std::string mode = "request";  // request | publish
    std::uint32_t timeout_ms = 0;  // 0 = nats.request_timeout_ms
    bool ack = false;              // publish mode: answer the client once published
  };
  std::vector<Route> routes;
};

// Where a setting came from, for error messages: "wsgw.toml:12" or "--server.port".
struct LoadError {
  std::string where;
  std::string reason;
  std::string to_string() const { return where.empty() ? reason : where + ": " + reason; }
};

// Reads `path` (TOML) over the defaults. Unknown keys, wrong types and bad
// values are errors naming file:line (the one earliest in the file if there
// are several); a parse error names file:line:column. On error `cfg` is left
// unchanged. Paths in the file are kept as written: relative ones resolve
// against the working directory when used, not against the file.
std::optional<LoadError> load_file(const std::string& path, Config& cfg);

// Applies `--key=value` / `--key value` overrides, e.g. `--server.port=9000`,
// `--server.allowed_origins=https://a.example,https://b.example`.
// `args` excludes argv[0] and options the caller handles (--config, --help).
// A boolean alone (`--ws.tcp_nodelay`) means true, and takes a following
// true/false/1/0/yes/no as its value; lists are comma-separated. Later options
// win. Errors have `where` = the option ("--server.port"); on error `cfg` is
// left unchanged.
std::optional<LoadError> apply_overrides(const std::vector<std::string>& args, Config& cfg);

// Checks cross-field rules (ping < idle timeout, a key for each algorithm, ...)
// and fills derived defaults (gateway id). Called once after loading.
// Also re-checks every key's range and allowed values, for settings made in
// code. Errors have `where` = the dotted key. Fills in: workers 0 -> core
// count (1..64); empty gateway.id -> generate_gateway_id(hostname);
// allowed_origins lowercased; for HS256 with secret_file, jwt_secret = the
// file's contents (so a second call would see both set and fail). For
// RS256/ES256 it only checks public_key_file can be opened.
std::optional<LoadError> validate(Config& cfg);

// `--help` text: every key with its type, default, unit and meaning.
std::string help_text();

// Every key of the key table, dotted ("server.port"), grouped by section in
// table order. config/wsgw.toml must mention each one (a test checks).
std::vector<std::string> all_keys();

// The effective configuration as TOML that load_file accepts, every key
// included; non-empty secrets (auth.jwt.secret) are written as "<redacted>".
std::string dump(const Config& cfg);

// A gateway id for `hostname`: "<hostname>-<6 random hex digits>", with each
// character outside [A-Za-z0-9_-] replaced by '-' ("wsgw" if empty) and the
// host part cut so the id fits 64 characters. validate uses it when
// gateway.id is empty, with gethostname(2).
std::string generate_gateway_id(std::string_view hostname);

}  // namespace wsgw::config
