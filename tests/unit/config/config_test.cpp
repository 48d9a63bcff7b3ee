#include "engine/config/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace wsgw::config {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string message(const std::optional<LoadError>& e) {
  return e ? e->to_string() : "<no error>";
}

bool all_of(std::string_view s, std::string_view allowed) {
  return s.find_first_not_of(allowed) == std::string_view::npos;
}

constexpr std::string_view kDigits = "0123456789";
constexpr std::string_view kIdChars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

// True if `id` is `host` + "-" + 6 lowercase hex digits.
bool is_generated_id(std::string_view id, std::string_view host) {
  return id.size() == host.size() + 7 && id.starts_with(host) && id[host.size()] == '-' &&
         all_of(id.substr(host.size() + 1), "0123456789abcdef");
}

// Whitespace-separated words of the line of `text` that starts with `prefix`.
std::vector<std::string> words_of_line(const std::string& text, const std::string& prefix) {
  std::size_t at = text.find("\n" + prefix);
  if (at == std::string::npos) return {};
  std::istringstream line(text.substr(at + 1, text.find('\n', at + 1) - at - 1));
  std::vector<std::string> words;
  for (std::string w; line >> w;) words.push_back(w);
  return words;
}

// A config that validates: the defaults plus an HS256 key.
Config valid_config() {
  Config c;
  c.jwt_secret = "0123456789abcdef0123456789abcdef";
  return c;
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::temp_directory_path() / "wsgw_config_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    path_ = (dir_ / "wsgw.toml").string();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string write(const std::string& name, const std::string& text) {
    fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }

  // Loads `text` from the file path_; returns the error text ("<no error>" on success).
  std::string load(const std::string& text, Config& c) {
    write("wsgw.toml", text);
    return message(load_file(path_, c));
  }

  fs::path dir_;
  std::string path_;  // where load() writes
};

// --- defaults ---------------------------------------------------------------

TEST_F(ConfigTest, DefaultsAreValidOnceAnHs256KeyIsGiven) {
  Config c = valid_config();
  EXPECT_EQ(validate(c), std::nullopt) << message(validate(c));
}

TEST_F(ConfigTest, DefaultsAloneLackOnlyTheHs256Key) {
  Config c;
  auto e = validate(c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->where, "auth.jwt.secret");
  EXPECT_THAT(e->reason, HasSubstr("exactly one"));
}

// --- load_file --------------------------------------------------------------

TEST_F(ConfigTest, LoadsEveryType) {
  Config c;
  ASSERT_EQ(load(R"([gateway]
id = "gw_1"
workers = 3

[server]
port = 9000
allowed_origins = ["https://a.example", "http://localhost:3000"]

[ws]
tcp_nodelay = false

[auth]
mode = "none"

[auth.jwt]
algorithms = ["RS256", "ES256"]
leeway_s = 5

[log]
level = "debug"
)",
                 c),
            "<no error>");
  EXPECT_EQ(c.gateway_id, "gw_1");
  EXPECT_EQ(c.workers, 3u);
  EXPECT_EQ(c.listen_port, 9000);
  EXPECT_EQ(c.allowed_origins,
            (std::vector<std::string>{"https://a.example", "http://localhost:3000"}));
  EXPECT_FALSE(c.tcp_nodelay);
  EXPECT_EQ(c.auth_mode, "none");
  EXPECT_EQ(c.jwt_algorithms, (std::vector<std::string>{"RS256", "ES256"}));
  EXPECT_EQ(c.jwt_leeway_s, 5u);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.ws_path, "/ws");  // absent keys keep their defaults
  EXPECT_EQ(c.max_message_bytes, 64u * 1024);
}

TEST_F(ConfigTest, DottedKeysAndInlineTablesAreTheSameKeys) {
  Config c;
  ASSERT_EQ(load("heartbeat.tick_ms = 50\nauth = { jwt = { issuer = \"me\" } }\n", c),
            "<no error>");
  EXPECT_EQ(c.tick_ms, 50u);
  EXPECT_EQ(c.jwt_issuer, "me");
}

TEST_F(ConfigTest, UnknownKeyReportsItsLine) {
  Config c;
  std::string e = load("[server]\nport = 1\nprot = 2\n", c);
  EXPECT_THAT(e, StartsWith(path_ + ":3: unknown key 'server.prot'"));
  EXPECT_THAT(e, HasSubstr("did you mean 'server.port'"));
}

TEST_F(ConfigTest, UnknownSectionReportsItsLine) {
  Config c;
  EXPECT_THAT(load("[server]\nport = 1\n\n[servr]\nport = 2\n", c),
              StartsWith(path_ + ":4: unknown key 'servr'"));
}

TEST_F(ConfigTest, UnknownKeyInNestedSectionIsDotted) {
  Config c;
  EXPECT_THAT(load("[auth]\nmode = \"jwt\"\n[auth.jwt]\nsecrte = \"x\"\n", c),
              StartsWith(path_ + ":4: unknown key 'auth.jwt.secrte'"));
}

TEST_F(ConfigTest, TheErrorEarliestInTheFileIsReported) {
  Config c;  // "zzz" sorts after "aaa" but comes first in the file
  EXPECT_THAT(load("zzz = 1\naaa = 2\n", c), StartsWith(path_ + ":1: unknown key 'zzz'"));
}

TEST_F(ConfigTest, WrongTypeNamesKeyAndExpectedType) {
  Config c;
  EXPECT_EQ(load("[server]\nport = \"8080\"\n", c), path_ + ":2: server.port: expected an integer");
  EXPECT_EQ(load("[ws]\ntcp_nodelay = 1\n", c), path_ + ":2: ws.tcp_nodelay: expected a boolean");
  EXPECT_EQ(load("[server]\npath = 5\n", c), path_ + ":2: server.path: expected a string");
  EXPECT_EQ(load("[auth.jwt]\nalgorithms = \"HS256\"\n", c),
            path_ + ":2: auth.jwt.algorithms: expected an array of strings");
  EXPECT_EQ(load("[server]\nallowed_origins = [\"https://a.example\", 1]\n", c),
            path_ + ":2: server.allowed_origins: expected an array of strings");
  EXPECT_EQ(load("[heartbeat]\ntick_ms = 10.5\n", c),
            path_ + ":2: heartbeat.tick_ms: expected an integer");
}

TEST_F(ConfigTest, SectionGivenAsAValueIsAnError) {
  Config c;
  EXPECT_EQ(load("server = 5\n", c), path_ + ":1: server: expected a table ([server])");
}

TEST_F(ConfigTest, OutOfRangeNamesValueAndRange) {
  Config c;
  EXPECT_EQ(load("[server]\nport = 70000\n", c),
            path_ + ":2: server.port: 70000 is out of range 0..65535");
  EXPECT_EQ(load("[server]\nport = -1\n", c),
            path_ + ":2: server.port: -1 is out of range 0..65535");
  EXPECT_EQ(load("[heartbeat]\n\ntick_ms = 5\n", c),
            path_ + ":3: heartbeat.tick_ms: 5 is out of range 10..1000");
}

TEST_F(ConfigTest, DisallowedStringsAreRejected) {
  Config c;
  EXPECT_EQ(load("[log]\nlevel = \"verbose\"\n", c),
            path_ + ":2: log.level: 'verbose' is not one of debug, info, warn, error");
  EXPECT_EQ(load("[auth.jwt]\nalgorithms = [\"HS256\", \"HS512\"]\n", c),
            path_ + ":2: auth.jwt.algorithms: 'HS512' is not one of HS256, RS256, ES256");
}

TEST_F(ConfigTest, ParseErrorHasLineAndColumn) {
  Config c;
  std::string e = load("[server]\nport = = 1\n", c);
  ASSERT_THAT(e, StartsWith(path_ + ":2:"));
  std::string rest = e.substr(path_.size() + 3);
  std::size_t colon = rest.find(": ");
  ASSERT_NE(colon, std::string::npos) << e;
  EXPECT_TRUE(colon > 0 && all_of(rest.substr(0, colon), kDigits)) << e;
  EXPECT_GT(rest.size(), colon + 2) << e;
}

TEST_F(ConfigTest, MissingFileIsNamed) {
  Config c;
  std::string missing = (dir_ / "nope.toml").string();
  EXPECT_EQ(message(load_file(missing, c)),
            missing + ": cannot read '" + missing + "': No such file or directory");
}

TEST_F(ConfigTest, FailedLoadLeavesConfigUntouched) {
  Config c;
  ASSERT_NE(load("[server]\nport = 1\nbogus = 2\n", c), "<no error>");
  EXPECT_EQ(c.listen_port, 8080);
}

// --- apply_overrides --------------------------------------------------------

TEST_F(ConfigTest, OverrideEqualsForm) {
  Config c;
  ASSERT_EQ(apply_overrides({"--server.port=9000", "--server.path=/live"}, c), std::nullopt);
  EXPECT_EQ(c.listen_port, 9000);
  EXPECT_EQ(c.ws_path, "/live");
}

TEST_F(ConfigTest, OverrideSpaceForm) {
  Config c;
  ASSERT_EQ(apply_overrides({"--server.port", "9000", "--auth.jwt.leeway_s", "0"}, c),
            std::nullopt);
  EXPECT_EQ(c.listen_port, 9000);
  EXPECT_EQ(c.jwt_leeway_s, 0u);
}

TEST_F(ConfigTest, OverrideLaterWinsAndEmptyStringClears) {
  Config c;
  c.jwt_issuer = "x";
  ASSERT_EQ(apply_overrides({"--server.port=1", "--server.port=2", "--auth.jwt.issuer="}, c),
            std::nullopt);
  EXPECT_EQ(c.listen_port, 2);
  EXPECT_EQ(c.jwt_issuer, "");
}

TEST_F(ConfigTest, OverrideBooleanForms) {
  const std::pair<const char*, bool> words[] = {{"true", true},  {"false", false}, {"1", true},
                                                {"0", false},    {"yes", true},    {"no", false},
                                                {"FALSE", false}};
  for (auto [word, expected] : words) {
    Config a;
    a.tcp_nodelay = !expected;
    ASSERT_EQ(apply_overrides({std::string("--ws.tcp_nodelay=") + word}, a), std::nullopt) << word;
    EXPECT_EQ(a.tcp_nodelay, expected) << word;
    Config b;
    b.tcp_nodelay = !expected;
    ASSERT_EQ(apply_overrides({"--ws.tcp_nodelay", word}, b), std::nullopt) << word;
    EXPECT_EQ(b.tcp_nodelay, expected) << word;
  }
}

TEST_F(ConfigTest, OverrideBareBooleanMeansTrue) {
  Config c;
  c.tcp_nodelay = false;
  ASSERT_EQ(apply_overrides({"--ws.tcp_nodelay"}, c), std::nullopt);
  EXPECT_TRUE(c.tcp_nodelay);
  c.tcp_nodelay = false;
  ASSERT_EQ(apply_overrides({"--ws.tcp_nodelay", "--server.port=1"}, c), std::nullopt);
  EXPECT_TRUE(c.tcp_nodelay);
  EXPECT_EQ(c.listen_port, 1);
}

TEST_F(ConfigTest, OverrideBadBoolean) {
  Config c;
  auto e = apply_overrides({"--ws.tcp_nodelay=maybe"}, c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->where, "--ws.tcp_nodelay");
  EXPECT_THAT(e->reason, HasSubstr("expected a boolean"));
}

TEST_F(ConfigTest, OverrideLists) {
  Config c;
  ASSERT_EQ(apply_overrides({"--server.allowed_origins=https://a.example, https://b.example"}, c),
            std::nullopt);
  EXPECT_EQ(c.allowed_origins,
            (std::vector<std::string>{"https://a.example", "https://b.example"}));
  ASSERT_EQ(apply_overrides({"--auth.jwt.algorithms", "RS256,ES256"}, c), std::nullopt);
  EXPECT_EQ(c.jwt_algorithms, (std::vector<std::string>{"RS256", "ES256"}));
  ASSERT_EQ(apply_overrides({"--server.allowed_origins="}, c), std::nullopt);
  EXPECT_TRUE(c.allowed_origins.empty());
  auto e = apply_overrides({"--auth.jwt.algorithms=HS256,none"}, c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->to_string(), "--auth.jwt.algorithms: 'none' is not one of HS256, RS256, ES256");
}

TEST_F(ConfigTest, OverrideUnknownOptionSuggestsHelp) {
  Config c;
  auto e = apply_overrides({"--server.prot=9000"}, c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->where, "--server.prot");
  EXPECT_THAT(e->reason, HasSubstr("unknown option"));
  EXPECT_THAT(e->reason, HasSubstr("did you mean '--server.port'"));
  EXPECT_THAT(e->reason, HasSubstr("--help"));
  e = apply_overrides({"--port=9000"}, c);
  ASSERT_TRUE(e);
  EXPECT_THAT(e->reason, HasSubstr("did you mean '--server.port'"));
}

TEST_F(ConfigTest, OverrideMissingValue) {
  Config c;
  auto e = apply_overrides({"--server.port"}, c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->where, "--server.port");
  EXPECT_THAT(e->reason, HasSubstr("missing value"));
  e = apply_overrides({"--server.path", "--server.port=1"}, c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->where, "--server.path");
  EXPECT_THAT(e->reason, HasSubstr("missing value"));
}

TEST_F(ConfigTest, OverrideBadValues) {
  Config c;
  EXPECT_EQ(message(apply_overrides({"--server.port=70000"}, c)),
            "--server.port: 70000 is out of range 0..65535");
  EXPECT_EQ(message(apply_overrides({"--server.port", "abc"}, c)),
            "--server.port: expected an integer, got 'abc'");
  EXPECT_EQ(message(apply_overrides({"--server.port=-1"}, c)),
            "--server.port: -1 is out of range 0..65535");
  EXPECT_EQ(message(apply_overrides({"--server.port=99999999999999999999"}, c)),
            "--server.port: 99999999999999999999 is out of range 0..65535");
  EXPECT_EQ(message(apply_overrides({"--log.level=loud"}, c)),
            "--log.level: 'loud' is not one of debug, info, warn, error");
}

TEST_F(ConfigTest, OverrideStrayArgument) {
  Config c;
  auto e = apply_overrides({"9000"}, c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->where, "9000");
}

TEST_F(ConfigTest, FailedOverridesLeaveConfigUntouched) {
  Config c;
  ASSERT_TRUE(apply_overrides({"--server.port=1", "--nope"}, c));
  EXPECT_EQ(c.listen_port, 8080);
}

// --- validate ---------------------------------------------------------------

TEST_F(ConfigTest, WorkersZeroBecomesCoreCount) {
  Config c = valid_config();
  c.workers = 0;
  ASSERT_EQ(validate(c), std::nullopt);
  EXPECT_EQ(c.workers, std::clamp(std::thread::hardware_concurrency(), 1u, 64u));
}

TEST_F(ConfigTest, WorkersAbove64Rejected) {
  Config c = valid_config();
  c.workers = 64;
  EXPECT_EQ(validate(c), std::nullopt);
  c = valid_config();
  c.workers = 65;
  EXPECT_EQ(message(validate(c)), "gateway.workers: 65 is out of range 0..64");
}

TEST_F(ConfigTest, GatewayIdMustBeASubjectToken) {
  Config c = valid_config();
  c.gateway_id = "gw.eu";
  auto e = validate(c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->where, "gateway.id");
  EXPECT_THAT(e->reason, HasSubstr("NATS subject"));
  EXPECT_THAT(e->reason, HasSubstr("'.'"));
  c.gateway_id = std::string(65, 'a');
  EXPECT_TRUE(validate(c));
  c.gateway_id = std::string(64, 'a');
  EXPECT_EQ(validate(c), std::nullopt);
  c.gateway_id = "Gw_1-x";
  EXPECT_EQ(validate(c), std::nullopt);
}

TEST_F(ConfigTest, GatewayIdGeneratedWhenEmpty) {
  Config c = valid_config();
  ASSERT_EQ(validate(c), std::nullopt);
  ASSERT_GE(c.gateway_id.size(), 8u);
  EXPECT_LE(c.gateway_id.size(), 64u);
  EXPECT_TRUE(all_of(c.gateway_id, kIdChars)) << c.gateway_id;
  EXPECT_TRUE(is_generated_id(c.gateway_id, c.gateway_id.substr(0, c.gateway_id.size() - 7)))
      << c.gateway_id;
}

TEST_F(ConfigTest, GeneratedGatewayIdIsSanitized) {
  EXPECT_TRUE(is_generated_id(generate_gateway_id("web-1.prod example"), "web-1-prod-example"));
  EXPECT_TRUE(is_generated_id(generate_gateway_id(""), "wsgw"));
  std::string long_id = generate_gateway_id(std::string(100, 'h'));
  EXPECT_EQ(long_id.size(), 64u);
  EXPECT_TRUE(is_generated_id(long_id, std::string(57, 'h'))) << long_id;
  EXPECT_NE(generate_gateway_id("a"), generate_gateway_id("a"));  // 1 in 16M to collide
}

TEST_F(ConfigTest, PathMustStartWithSlash) {
  Config c = valid_config();
  c.ws_path = "ws";
  EXPECT_EQ(message(validate(c)), "server.path: 'ws' must start with '/'");
}

TEST_F(ConfigTest, PingMustBeBelowIdleTimeout) {
  Config c = valid_config();
  c.ping_interval_ms = 60000;
  c.idle_timeout_ms = 60000;
  auto e = validate(c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->where, "heartbeat.ping_interval_ms");
  c.ping_interval_ms = 59999;
  EXPECT_EQ(validate(c), std::nullopt);
}

TEST_F(ConfigTest, TickWithin10To1000) {
  Config c = valid_config();
  c.tick_ms = 9;
  EXPECT_EQ(message(validate(c)), "heartbeat.tick_ms: 9 is out of range 10..1000");
  c.tick_ms = 1001;
  EXPECT_EQ(message(validate(c)), "heartbeat.tick_ms: 1001 is out of range 10..1000");
  c.tick_ms = 1000;
  EXPECT_EQ(validate(c), std::nullopt);
}

TEST_F(ConfigTest, TickNotAbovePingInterval) {
  Config c = valid_config();
  c.ping_interval_ms = 50;
  c.idle_timeout_ms = 100;
  c.tick_ms = 51;
  auto e = validate(c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->where, "heartbeat.tick_ms");
  c.tick_ms = 50;
  EXPECT_EQ(validate(c), std::nullopt);
}

TEST_F(ConfigTest, MaxMessageWithin125To16MiB) {
  Config c = valid_config();
  c.max_message_bytes = 124;
  EXPECT_EQ(message(validate(c)), "ws.max_message_bytes: 124 is out of range 125..16777216");
  c.max_message_bytes = 16 * 1024 * 1024 + 1;
  c.send_queue_limit_bytes = 32 * 1024 * 1024;
  EXPECT_TRUE(validate(c));
  c.max_message_bytes = 16 * 1024 * 1024;
  EXPECT_EQ(validate(c), std::nullopt);
}

TEST_F(ConfigTest, SendQueueAtLeastMaxMessage) {
  Config c = valid_config();
  c.send_queue_limit_bytes = c.max_message_bytes - 1;
  auto e = validate(c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->where, "ws.send_queue_limit_bytes");
  c.send_queue_limit_bytes = c.max_message_bytes;
  EXPECT_EQ(validate(c), std::nullopt);
}

TEST_F(ConfigTest, ReadBufferAtLeast4096) {
  Config c = valid_config();
  c.read_buffer_bytes = 4095;
  EXPECT_EQ(message(validate(c)), "ws.read_buffer_bytes: 4095 is out of range 4096..16777216");
}

TEST_F(ConfigTest, JwtNeedsAlgorithms) {
  Config c = valid_config();
  c.jwt_algorithms.clear();
  auto e = validate(c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->where, "auth.jwt.algorithms");
}

TEST_F(ConfigTest, JwtAlgorithmsFromTheSupportedSet) {
  Config c = valid_config();
  c.jwt_algorithms = {"HS256", "none"};
  EXPECT_EQ(message(validate(c)), "auth.jwt.algorithms: 'none' is not one of HS256, RS256, ES256");
}

TEST_F(ConfigTest, Hs256NeedsExactlyOneSecretSource) {
  Config c;
  EXPECT_THAT(message(validate(c)), HasSubstr("neither"));
  c.jwt_secret = "k";
  c.jwt_secret_file = write("secret", "k\n");
  EXPECT_THAT(message(validate(c)), HasSubstr("both"));
}

TEST_F(ConfigTest, SecretFileIsReadAndTrimmed) {
  Config c;
  c.jwt_secret_file = write("secret", "s3cret\n");
  ASSERT_EQ(validate(c), std::nullopt);
  EXPECT_EQ(c.jwt_secret, "s3cret");
  Config d;
  d.jwt_secret_file = write("secret_crlf", " s3 cret\r\n");
  ASSERT_EQ(validate(d), std::nullopt);
  EXPECT_EQ(d.jwt_secret, " s3 cret");
}

TEST_F(ConfigTest, SecretFileUnreadable) {
  Config c;
  c.jwt_secret_file = (dir_ / "missing").string();
  auto e = validate(c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->where, "auth.jwt.secret_file");
  EXPECT_THAT(e->reason, HasSubstr(c.jwt_secret_file));
  Config d;
  d.jwt_secret_file = dir_.string();
  EXPECT_THAT(message(validate(d)), HasSubstr("Is a directory"));
}

TEST_F(ConfigTest, SecretFileEmpty) {
  Config c;
  c.jwt_secret_file = write("secret", "\n");
  auto e = validate(c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->where, "auth.jwt.secret_file");
  EXPECT_THAT(e->reason, HasSubstr("is empty"));
}

TEST_F(ConfigTest, PublicKeyAlgorithmsNeedAReadableKeyFile) {
  for (const char* alg : {"RS256", "ES256"}) {
    Config c;
    c.jwt_algorithms = {alg};
    auto e = validate(c);
    ASSERT_TRUE(e) << alg;
    EXPECT_EQ(e->where, "auth.jwt.public_key_file");
    c.jwt_public_key_file = (dir_ / "missing.pem").string();
    EXPECT_THAT(message(validate(c)), HasSubstr("No such file"));
    c.jwt_public_key_file = write("key.pem", "-----BEGIN PUBLIC KEY-----\n");
    EXPECT_EQ(validate(c), std::nullopt) << alg;
    EXPECT_EQ(c.jwt_secret, "");
  }
}

TEST_F(ConfigTest, RoutesAreRead) {
  Config c;
  ASSERT_EQ(load("[[routes]]\ncommand = \"A\"\nsubject = \"svc.a\"\ntimeout_ms = 250\n"
                 "[[routes]]\ncommand = \"B\"\nsubject = \"svc.b\"\nmode = \"publish\"\n"
                 "ack = true\n",
                 c),
            "<no error>");
  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_EQ(c.routes[0].command, "A");
  EXPECT_EQ(c.routes[0].subject, "svc.a");
  EXPECT_EQ(c.routes[0].mode, "request");
  EXPECT_EQ(c.routes[0].timeout_ms, 250u);
  EXPECT_EQ(c.routes[1].mode, "publish");
  EXPECT_TRUE(c.routes[1].ack);
  Config again;
  ASSERT_EQ(load(dump(c), again), "<no error>");
  EXPECT_EQ(dump(again), dump(c));
}

TEST_F(ConfigTest, BadRoutesNameTheirLine) {
  Config c;
  EXPECT_THAT(load("[[routes]]\ncommand = \"A\"\nsubject = \"s\"\nmode = \"stream\"\n", c),
              HasSubstr(":1: routes.mode: 'stream' is not one of request, publish"));
  EXPECT_THAT(load("[[routes]]\ncommand = \"A\"\n", c),
              HasSubstr("needs a command and a subject"));
  EXPECT_THAT(load("[[routes]]\ncommand = \"A\"\nsubject = \"s\"\nsubjet = \"x\"\n", c),
              HasSubstr(":4: unknown key 'routes.subjet'"));
  EXPECT_THAT(load("[[routes]]\ncommand = \"A\"\nsubject = \"s\"\n"
                   "[[routes]]\ncommand = \"A\"\nsubject = \"t\"\n",
                   c),
              HasSubstr("routed twice"));
  EXPECT_THAT(load("routes = 3\n", c), HasSubstr("expected [[routes]] tables"));
}

TEST_F(ConfigTest, OneNatsCredentialKind) {
  Config c = valid_config();
  c.nats_user = "u";
  c.nats_token = "t";
  auto e = validate(c);
  ASSERT_TRUE(e);
  EXPECT_THAT(e->reason, HasSubstr("give one of"));
}

TEST_F(ConfigTest, NatsPrefixIsOneToken) {
  Config c = valid_config();
  c.nats_prefix = "a.b";
  EXPECT_THAT(message(validate(c)), HasSubstr("nats.prefix"));
}

TEST_F(ConfigTest, Rs256AndEs256TogetherRejected) {
  Config c;
  c.jwt_algorithms = {"RS256", "ES256"};
  c.jwt_public_key_file = write("key.pem", "-----BEGIN PUBLIC KEY-----\n");
  auto e = validate(c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->where, "auth.jwt.algorithms");
  EXPECT_THAT(e->reason, HasSubstr("two public keys"));
}

TEST_F(ConfigTest, ModeNoneNeedsNoKey) {
  Config c;
  c.auth_mode = "none";
  EXPECT_EQ(validate(c), std::nullopt);
  c.auth_mode = "basic";
  EXPECT_EQ(message(validate(c)), "auth.mode: 'basic' is not one of jwt, service, none");
}

TEST_F(ConfigTest, ModeServiceNeedsASubject) {
  Config c;
  c.auth_mode = "service";
  EXPECT_EQ(message(validate(c)), "auth.service.subject: must be set when auth.mode = \"service\"");
  c.auth_service_subject = "auth.verify";
  EXPECT_EQ(validate(c), std::nullopt);
  c.auth_service_subject = "wsgw.auth";
  EXPECT_EQ(message(validate(c)),
            "auth.service.subject: 'wsgw.auth' is not a valid NATS subject outside the "
            "gateway's own prefix");
  c.auth_service_subject = "auth.*";
  EXPECT_NE(validate(c), std::nullopt);
}

TEST_F(ConfigTest, RevalidationNeedsTheServiceAndASaneInterval) {
  Config c = valid_config();
  c.revalidate_interval_ms = 60000;
  EXPECT_EQ(message(validate(c)),
            "auth.service.revalidate_interval_ms: re-validation needs auth.service.subject");
  c.auth_service_subject = "auth.verify";
  EXPECT_EQ(validate(c), std::nullopt);  // JWT at the handshake, the service on re-validation
  c.revalidate_interval_ms = 500;
  EXPECT_EQ(message(validate(c)),
            "auth.service.revalidate_interval_ms: 500 is below 1000 (or 0 = off)");
  c.revalidate_interval_ms = 60000;
  c.auth_mode = "none";
  EXPECT_EQ(message(validate(c)),
            "auth.service.revalidate_interval_ms: auth.mode = \"none\" has no tokens to re-validate");
}

TEST_F(ConfigTest, LogLevelFromTheSupportedSet) {
  Config c = valid_config();
  for (const char* level : {"debug", "info", "warn", "error"}) {
    c.log_level = level;
    EXPECT_EQ(validate(c), std::nullopt) << level;
  }
  c.log_level = "warning";
  EXPECT_EQ(message(validate(c)), "log.level: 'warning' is not one of debug, info, warn, error");
}

TEST_F(ConfigTest, AllowedOriginsAcceptedAndLowercased) {
  Config c = valid_config();
  c.allowed_origins = {"https://App.Example", "http://localhost:3000", "http://[::1]:8080",
                       "https://[2001:db8::1]", "chrome-extension://abcdef"};
  ASSERT_EQ(validate(c), std::nullopt) << message(validate(c));
  EXPECT_EQ(c.allowed_origins[0], "https://app.example");
}

TEST_F(ConfigTest, AllowedOriginsRejectPathsAndMalformed) {
  for (const char* bad :
       {"https://a.example/", "https://a.example/app", "a.example", "https://", "://a.example",
        "https://a.example:", "https://a.example:0", "https://a.example:65536",
        "https://a.example:x", "https://u@a.example", "https://a.example?q", "http://[::1",
        "1http://a.example", "https://a.example:443", "http://a.example:80"}) {
    Config c = valid_config();
    c.allowed_origins = {bad};
    auto e = validate(c);
    ASSERT_TRUE(e) << bad;
    EXPECT_EQ(e->where, "server.allowed_origins") << bad;
  }
}

// --- dump, help, key table --------------------------------------------------

TEST_F(ConfigTest, DumpRoundTripsThroughLoad) {
  Config c;
  c.gateway_id = "gw-1";
  c.listen_port = 1234;
  c.allowed_origins = {"https://a.example", "http://b.example:81"};
  c.tcp_nodelay = false;
  c.jwt_issuer = "quote \" backslash \\ tab \t";
  c.jwt_algorithms = {"ES256"};
  std::string text = dump(c);
  Config d;
  d.tcp_nodelay = true;
  ASSERT_EQ(load(text, d), "<no error>") << text;
  EXPECT_EQ(dump(d), text);
  EXPECT_EQ(d.jwt_issuer, c.jwt_issuer);
}

TEST_F(ConfigTest, DumpRedactsSecret) {
  Config c;
  c.jwt_secret = "hunter2";
  std::string text = dump(c);
  EXPECT_THAT(text, Not(HasSubstr("hunter2")));
  EXPECT_THAT(text, HasSubstr("secret = \"<redacted>\""));
  EXPECT_THAT(dump(Config{}), HasSubstr("secret = \"\""));
}

TEST_F(ConfigTest, HelpListsEveryKeyUnderItsSection) {
  std::string help = help_text();
  for (const std::string& key : all_keys()) {
    std::string section = key.substr(0, key.rfind('.'));
    std::size_t header = help.find("\n[" + section + "]\n");
    ASSERT_NE(header, std::string::npos) << section;
    EXPECT_NE(help.find("  " + key + " ", header), std::string::npos) << key;
  }
  std::vector<std::string> port = words_of_line(help, "  server.port ");
  ASSERT_GE(port.size(), 5u) << help;
  EXPECT_EQ(port[1] + " " + port[2], "integer 0..65535");
  EXPECT_EQ(port[3], "8080");
  std::vector<std::string> tick = words_of_line(help, "  heartbeat.tick_ms ");
  ASSERT_GE(tick.size(), 6u) << help;
  EXPECT_EQ(tick[3], "100");
  EXPECT_EQ(tick[4], "ms");
}

TEST_F(ConfigTest, HelpColumnsAreAligned) {
  std::string help = help_text();
  std::size_t header = help.find("KEY");
  ASSERT_NE(header, std::string::npos);
  std::size_t line_start = help.rfind('\n', header) + 1;
  std::size_t type_column = help.find("TYPE", header) - line_start;
  for (const std::string& key : all_keys()) {
    std::size_t at = help.find("\n  " + key + " ");
    ASSERT_NE(at, std::string::npos) << key;
    std::string line = help.substr(at + 1, help.find('\n', at + 1) - at - 1);
    ASSERT_GT(line.size(), type_column) << line;
    EXPECT_EQ(line[type_column - 1], ' ') << line;
    EXPECT_NE(line[type_column], ' ') << line;
  }
}

TEST_F(ConfigTest, KeyTableIsUniqueAndGroupedBySection) {
  std::vector<std::string> keys = all_keys();
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), keys.size());
  std::set<std::string> finished;
  std::string current;
  for (const std::string& key : keys) {
    std::string section = key.substr(0, key.rfind('.'));
    if (section != current) {
      EXPECT_FALSE(finished.count(section)) << section << " is split";
      finished.insert(current);
      current = section;
    }
  }
}

// --- the shipped config/wsgw.toml -------------------------------------------

// The source tree: $WSGW_SOURCE_DIR, else the nearest directory at or above
// the working directory that holds config/wsgw.toml.
std::optional<fs::path> source_dir() {
  if (const char* env = std::getenv("WSGW_SOURCE_DIR"); env != nullptr && *env != '\0') {
    return fs::path(env);
  }
  for (fs::path p = fs::current_path();; p = p.parent_path()) {
    if (fs::exists(p / "config" / "wsgw.toml")) return p;
    if (p == p.parent_path()) return std::nullopt;
  }
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Each `key = ...` line, commented out or not, as section.key -> line index.
std::map<std::string, std::size_t> documented_keys(const std::vector<std::string>& lines) {
  constexpr std::string_view kNameChars = "abcdefghijklmnopqrstuvwxyz0123456789_";
  std::map<std::string, std::size_t> found;
  std::string section;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.starts_with('[') && line.ends_with(']')) {
      section = line.substr(1, line.size() - 2);
      continue;
    }
    if (line.starts_with('#')) line.remove_prefix(1);
    line.remove_prefix(std::min(line.find_first_not_of(' '), line.size()));
    std::size_t name_end = std::min(line.find_first_not_of(kNameChars), line.size());
    std::string_view name = line.substr(0, name_end);
    std::string_view rest = line.substr(name_end);
    rest.remove_prefix(std::min(rest.find_first_not_of(' '), rest.size()));
    if (!name.empty() && rest.starts_with('=')) {
      found.emplace(section + "." + std::string(name), i);
    }
  }
  return found;
}

class ShippedConfig : public ConfigTest {
 protected:
  void SetUp() override {
    ConfigTest::SetUp();
    auto dir = source_dir();
    ASSERT_TRUE(dir) << "config/wsgw.toml not found above " << fs::current_path()
                     << "; set WSGW_SOURCE_DIR";
    file_ = *dir / "config" / "wsgw.toml";
    std::istringstream in(read_text(file_));
    for (std::string line; std::getline(in, line);) lines_.push_back(line);
  }
  fs::path file_;
  std::vector<std::string> lines_;
};

TEST_F(ShippedConfig, LoadsAndValidatesWithADevSecret) {
  Config c;
  ASSERT_EQ(message(load_file(file_.string(), c)), "<no error>");
  EXPECT_EQ(c.listen_address, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 8080);
  EXPECT_EQ(c.auth_mode, "jwt");
  EXPECT_EQ(c.jwt_algorithms, std::vector<std::string>{"HS256"});
  EXPECT_EQ(c.jwt_secret_file, "config/dev.secret");
  std::string secret = write("dev.secret", "dev-secret-for-tests\n");
  ASSERT_EQ(apply_overrides({"--auth.jwt.secret_file=" + secret}, c), std::nullopt);
  ASSERT_EQ(validate(c), std::nullopt) << message(validate(c));
  EXPECT_EQ(c.jwt_secret, "dev-secret-for-tests");
}

TEST_F(ShippedConfig, DocumentsEveryKey) {
  std::map<std::string, std::size_t> documented = documented_keys(lines_);
  for (const std::string& key : all_keys()) {
    EXPECT_TRUE(documented.count(key)) << key << " is missing from " << file_;
  }
}

// Uncommenting every `# key = value` line must give a loadable file whose
// values equal those of the file as shipped: commented-out lines show the
// real defaults.
TEST_F(ShippedConfig, CommentedOutValuesAreTheDefaults) {
  std::map<std::string, std::size_t> documented = documented_keys(lines_);
  std::vector<std::string> keys = all_keys();
  std::vector<std::string> uncommented = lines_;
  for (const auto& [key, index] : documented) {
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) continue;
    std::string& line = uncommented[index];
    if (line.starts_with('#')) line = line.substr(line.find_first_not_of("# "));
  }
  std::string text;
  for (const std::string& line : uncommented) text += line + "\n";

  Config shipped;
  ASSERT_EQ(message(load_file(file_.string(), shipped)), "<no error>");
  Config every;
  ASSERT_EQ(load(text, every), "<no error>") << text;
  EXPECT_EQ(dump(every), dump(shipped));
}

}  // namespace
}  // namespace wsgw::config
