#include "engine/options/from_config.hpp"

#include <string_view>

namespace wsgw::options {

bus::Subjects subjects_from(const config::Config& cfg) {
  return {cfg.nats_prefix, cfg.gateway_id};
}

std::vector<std::string> nats_servers_from(const config::Config& cfg) {
  std::vector<std::string> servers;
  if (cfg.nats_url == "embedded") return servers;
  std::string_view urls = cfg.nats_url;
  while (!urls.empty()) {
    auto comma = urls.find(',');
    std::string_view u = urls.substr(0, comma);
    while (!u.empty() && u.front() == ' ') u.remove_prefix(1);
    while (!u.empty() && u.back() == ' ') u.remove_suffix(1);
    if (!u.empty()) servers.emplace_back(u);
    urls = comma == std::string_view::npos ? std::string_view() : urls.substr(comma + 1);
  }
  return servers;
}

nats::BusOptions nats_options_from(const config::Config& cfg, std::vector<std::string> servers) {
  nats::BusOptions bo;
  bo.servers = std::move(servers);
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
  bo.subjects = subjects_from(cfg);
  bo.workers = cfg.workers;
  return bo;
}

nats::EmbeddedOptions embedded_options_from(const config::Config& cfg) {
  nats::EmbeddedOptions eo;
  eo.binary = cfg.embedded_binary;
  eo.data_dir = cfg.embedded_data_dir;
  eo.port = cfg.embedded_port;
  eo.jetstream = cfg.embedded_jetstream;
  eo.start_timeout_ms = cfg.embedded_start_timeout_ms;
  eo.server_name = "wsgw-" + cfg.gateway_id;
  return eo;
}

admin::AdminOptions admin_options_from(const config::Config& cfg) {
  admin::AdminOptions ao;
  ao.address = cfg.admin_address;
  ao.port = cfg.admin_port;
  ao.api_key = cfg.admin_api_key;
  return ao;
}

auth::JwtOptions jwt_options_from(const config::Config& cfg) {
  auth::JwtOptions opt;
  opt.algorithms = cfg.jwt_algorithms;
  opt.hs256_secret = cfg.jwt_secret;
  opt.issuer = cfg.jwt_issuer;
  opt.audience = cfg.jwt_audience;
  opt.leeway_s = cfg.jwt_leeway_s;
  opt.user_claim = cfg.jwt_user_claim;
  opt.name_claim = cfg.jwt_name_claim;
  return opt;
}

http::UpgradeOptions upgrade_options_from(const config::Config& cfg) {
  http::UpgradeOptions up;
  up.path = cfg.ws_path;
  up.allowed_origins = cfg.allowed_origins;
  up.none_user_param = cfg.none_user_param;
  return up;
}

script::ScriptLimits script_limits_from(const config::Config& cfg) {
  script::ScriptLimits limits;
  limits.memory_bytes = cfg.scripts_memory_bytes;
  limits.instructions = cfg.scripts_instructions;
  limits.time_ms = cfg.scripts_time_ms;
  return limits;
}

}  // namespace wsgw::options
