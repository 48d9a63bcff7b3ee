// Where each component's options come from the configuration: one function
// per component, so that a config key is copied into its component in
// exactly one place (and a new key in one more line here). The config is
// validated (config::validate) before any of these run.
#pragma once

#include <string>
#include <vector>

#include "engine/admin/admin_server.hpp"
#include "engine/auth/jwt_verifier.hpp"
#include "engine/bus/subjects.hpp"
#include "engine/config/config.hpp"
#include "engine/http/upgrade.hpp"
#include "engine/script/script_runtime.hpp"
#include "nats/embedded_server.hpp"
#include "nats/nats_bus.hpp"

namespace wsgw::options {

// The gateway's subject prefix and id (nats.prefix, gateway.id).
bus::Subjects subjects_from(const config::Config& cfg);

// The NATS servers of nats.url when it lists URLs ("embedded" gives none):
// comma-separated, blanks around each trimmed, empty entries skipped.
std::vector<std::string> nats_servers_from(const config::Config& cfg);

// The connection to NATS (nats.*) on `servers`: nats_servers_from(cfg), or
// the embedded server's URL.
nats::BusOptions nats_options_from(const config::Config& cfg, std::vector<std::string> servers);

// The embedded nats-server (nats.embedded.*), named after gateway.id.
nats::EmbeddedOptions embedded_options_from(const config::Config& cfg);

// The admin listener (admin.*).
admin::AdminOptions admin_options_from(const config::Config& cfg);

// The JWT verifier (auth.jwt.*), without the public key: the caller reads
// auth.jwt.public_key_file into public_key_pem.
auth::JwtOptions jwt_options_from(const config::Config& cfg);

// The HTTP upgrade's checks (server.path, server.allowed_origins,
// auth.none_user_param).
http::UpgradeOptions upgrade_options_from(const config::Config& cfg);

// Each worker's Lua state (scripts.memory_bytes, .instructions, .time_ms).
script::ScriptLimits script_limits_from(const config::Config& cfg);

}  // namespace wsgw::options
