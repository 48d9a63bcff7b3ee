#include "engine/options/from_config.hpp"

#include <gtest/gtest.h>

namespace wsgw::options {
namespace {

TEST(OptionsFromConfig, NatsUrlsAreSplitAndTrimmed) {
  config::Config cfg;
  EXPECT_TRUE(nats_servers_from(cfg).empty());  // "embedded"
  cfg.nats_url = " nats://a:4222 ,, nats://b:4222,nats://c:4222 ,";
  EXPECT_EQ(nats_servers_from(cfg),
            (std::vector<std::string>{"nats://a:4222", "nats://b:4222", "nats://c:4222"}));
  cfg.nats_url = "tls://one:4443";
  EXPECT_EQ(nats_servers_from(cfg), std::vector<std::string>{"tls://one:4443"});
}

TEST(OptionsFromConfig, EveryNatsKeyReachesTheBus) {
  config::Config cfg;
  cfg.gateway_id = "gw-7";
  cfg.workers = 3;
  cfg.nats_prefix = "edge";
  cfg.nats_name = "conn-name";
  cfg.nats_user = "u";
  cfg.nats_password = "p";
  cfg.nats_token = "tok";
  cfg.nats_nkey = "UNKEY";
  cfg.nats_nkey_seed_file = "/seed";
  cfg.nats_creds_file = "/creds";
  cfg.nats_tls = true;
  cfg.nats_tls_ca_file = "/ca";
  cfg.nats_tls_cert_file = "/cert";
  cfg.nats_tls_key_file = "/key";
  cfg.nats_connect_timeout_ms = 11;
  cfg.nats_reconnect_wait_ms = 12;
  cfg.nats_reconnect_jitter_ms = 13;
  cfg.nats_reconnect_buffer_bytes = 14;
  cfg.nats_pending_limit_bytes = 15;
  cfg.nats_delivery_threads = 16;
  auto bo = nats_options_from(cfg, {"nats://x:1"});
  EXPECT_EQ(bo.servers, std::vector<std::string>{"nats://x:1"});
  EXPECT_EQ(bo.name, "conn-name");
  EXPECT_EQ(bo.user, "u");
  EXPECT_EQ(bo.password, "p");
  EXPECT_EQ(bo.token, "tok");
  EXPECT_EQ(bo.nkey, "UNKEY");
  EXPECT_EQ(bo.nkey_seed_file, "/seed");
  EXPECT_EQ(bo.creds_file, "/creds");
  EXPECT_TRUE(bo.tls);
  EXPECT_EQ(bo.tls_ca_file, "/ca");
  EXPECT_EQ(bo.tls_cert_file, "/cert");
  EXPECT_EQ(bo.tls_key_file, "/key");
  EXPECT_EQ(bo.connect_timeout_ms, 11u);
  EXPECT_EQ(bo.reconnect_wait_ms, 12u);
  EXPECT_EQ(bo.reconnect_jitter_ms, 13u);
  EXPECT_EQ(bo.reconnect_buffer_bytes, 14u);
  EXPECT_EQ(bo.pending_limit_bytes, 15u);
  EXPECT_EQ(bo.delivery_threads, 16u);
  EXPECT_EQ(bo.subjects.prefix, "edge");
  EXPECT_EQ(bo.subjects.gateway_id, "gw-7");
  EXPECT_EQ(bo.workers, 3u);
}

TEST(OptionsFromConfig, EmbeddedServerAdminAndSubjects) {
  config::Config cfg;
  cfg.gateway_id = "gw-7";
  cfg.nats_prefix = "edge";
  cfg.embedded_binary = "/usr/sbin/nats-server";
  cfg.embedded_data_dir = "/tmp/n";
  cfg.embedded_port = 4333;
  cfg.embedded_jetstream = false;
  cfg.embedded_start_timeout_ms = 777;
  auto eo = embedded_options_from(cfg);
  EXPECT_EQ(eo.binary, "/usr/sbin/nats-server");
  EXPECT_EQ(eo.data_dir, "/tmp/n");
  EXPECT_EQ(eo.port, 4333);
  EXPECT_FALSE(eo.jetstream);
  EXPECT_EQ(eo.start_timeout_ms, 777u);
  EXPECT_EQ(eo.server_name, "wsgw-gw-7");

  cfg.admin_address = "127.0.0.2";
  cfg.admin_port = 9191;
  cfg.admin_api_key = "k";
  auto ao = admin_options_from(cfg);
  EXPECT_EQ(ao.address, "127.0.0.2");
  EXPECT_EQ(ao.port, 9191);
  EXPECT_EQ(ao.api_key, "k");

  auto sj = subjects_from(cfg);
  EXPECT_EQ(sj.prefix, "edge");
  EXPECT_EQ(sj.gateway_id, "gw-7");
}

TEST(OptionsFromConfig, JwtUpgradeAndScripts) {
  config::Config cfg;
  cfg.jwt_algorithms = {"RS256", "ES256"};
  cfg.jwt_secret = "s3cret";
  cfg.jwt_issuer = "iss";
  cfg.jwt_audience = "aud";
  cfg.jwt_leeway_s = 5;
  cfg.jwt_user_claim = "uid";
  cfg.jwt_name_claim = "nick";
  auto jo = jwt_options_from(cfg);
  EXPECT_EQ(jo.algorithms, (std::vector<std::string>{"RS256", "ES256"}));
  EXPECT_EQ(jo.hs256_secret, "s3cret");
  EXPECT_EQ(jo.issuer, "iss");
  EXPECT_EQ(jo.audience, "aud");
  EXPECT_EQ(jo.leeway_s, 5u);
  EXPECT_EQ(jo.user_claim, "uid");
  EXPECT_EQ(jo.name_claim, "nick");
  EXPECT_TRUE(jo.public_key_pem.empty());

  cfg.ws_path = "/socket";
  cfg.allowed_origins = {"https://a.example"};
  cfg.none_user_param = "who";
  auto up = upgrade_options_from(cfg);
  EXPECT_EQ(up.path, "/socket");
  EXPECT_EQ(up.allowed_origins, std::vector<std::string>{"https://a.example"});
  EXPECT_EQ(up.none_user_param, "who");
  EXPECT_EQ(up.subprotocol, "wsgw");

  cfg.scripts_memory_bytes = 1 << 20;
  cfg.scripts_instructions = 4242;
  cfg.scripts_time_ms = 9;
  auto sl = script_limits_from(cfg);
  EXPECT_EQ(sl.memory_bytes, 1u << 20);
  EXPECT_EQ(sl.instructions, 4242u);
  EXPECT_EQ(sl.time_ms, 9u);
}

}  // namespace
}  // namespace wsgw::options
