// wsgw-cli: a command-line client for wsgw.
//   connect  WebSocket client: prints every message received, sends what it reads on stdin
//   publish  a push to clients over NATS (docs/PROTOCOL.md §6.3)
//   ctl      a control message over NATS: join, leave, kick, revoke (§6.4)

#include <charconv>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "engine/bus/subjects.hpp"
#include "engine/protocol/message.hpp"
#include "engine/protocol/service_messages.hpp"
#include "tools/common/args.hpp"
#include "tools/common/nats_util.hpp"
#include "tools/common/push.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using wsgw::tools::Args;
using wsgw::tools::UsageError;

constexpr char kDefaultNats[] = "nats://127.0.0.1:4222";
constexpr char kDefaultPrefix[] = "wsgw";

constexpr std::string_view kUsage =
    R"(usage: wsgw-cli <command> [options]   (wsgw-cli <command> --help for details)

  connect  open a WebSocket to a gateway, print what arrives, send what is typed
  publish  push a message to clients over NATS
  ctl      send a control message over NATS (join, leave, kick, revoke)

Exit status: 0 success, 1 failure, 2 bad command line.
)";

constexpr std::string_view kConnectUsage =
    R"(usage: wsgw-cli connect [--url ws://127.0.0.1:8080/ws] [--token T | --user U [--name N]]
                        [--header-auth | --subprotocol-auth] [--exit-after N] [--timeout-ms MS]

Opens a WebSocket and prints every message received (WELCOME, replies, pushes)
as one line on stdout. Status lines ("connected", "closed code=C reason=R",
errors) go to stderr.

Each line read on stdin is sent as one text message:
  {"command":"ECHO","data":1}    a line starting with '{' is sent as is
  ECHO {"text":"hi"}             becomes {"command":"ECHO","traceId":"cli-<n>","data":{"text":"hi"}}
  HEALTH                         becomes {"command":"HEALTH","traceId":"cli-<n>"}
At end of input it waits (at most 5 s) for the replies to the messages it
sent, then closes with 1000 and waits (at most 2 s) for the gateway's close.

  --url URL            ws://host[:port]/path[?query] (default ws://127.0.0.1:8080/ws)
  --token T            token, in the `token` query parameter unless one of:
    --header-auth        ... sent as `Authorization: Bearer T`
    --subprotocol-auth   ... sent as Sec-WebSocket-Protocol `wsgw, bearer.T`
  --user U, --name N   auth.mode "none": the `user` (and `name`) query parameters
  --exit-after N       exit 0 (after a normal close) once N messages were received;
                       end of input then does not close the connection
  --timeout-ms MS      fail (exit 1) if the run takes longer

Exit status: 0 after a close with code 1000 or once --exit-after is reached,
1 on any other close code or error, 2 on a bad command line.
)";

constexpr std::string_view kPublishUsage = R"(usage: wsgw-cli publish [--nats URL] [--prefix wsgw]
                        (--user ID | --conn CONNID | --group G | --all)
                        --command NAME [--data JSON] [--trace-id T] [--timeout-ms MS]

Publishes the push {"command":NAME,"traceId":T,"data":JSON} on
  --user ID      <prefix>.user.<ID encoded>     every connection of the user
  --conn CONNID  <prefix>.conn.<CONNID>         one connection (connId from WELCOME)
  --group G      <prefix>.group.<G encoded>     every member of the group
  --all          <prefix>.all                   every connection
then flushes and exits 0. Ids are encoded as one subject token (%XX), like the gateway does.
  --nats URL       NATS server (default nats://127.0.0.1:4222)
  --data JSON      any JSON value; refused when it is not valid JSON
  --timeout-ms MS  connect and flush timeout (default 5000)
)";

constexpr std::string_view kCtlUsage =
    R"(usage: wsgw-cli ctl [--nats URL] [--prefix wsgw] join  --group G (--user ID | --conn CONNID)
       wsgw-cli ctl [--nats URL] [--prefix wsgw] leave --group G (--user ID | --conn CONNID)
       wsgw-cli ctl [--nats URL] [--prefix wsgw] kick (--user ID | --conn CONNID) [--reason TEXT]
       wsgw-cli ctl [--nats URL] [--prefix wsgw] revoke (--user ID | --token-id JTI) [--reason TEXT] [--ttl-s N]

Publishes a control message on <prefix>.ctl.<verb> (every gateway applies it to
the connections it holds):
  join/leave  {"group":G,"user":ID} or {"group":G,"conn":CONNID}
  kick        {"user":ID} or {"conn":CONNID}, plus "reason" (closed with 4003)
  revoke      {"user":ID} or {"tokenId":JTI}, plus "reason" and "ttlS": closed with
              4005 and the token refused for ttlS seconds (default
              auth.revocation_ttl_s)
A message every gateway would refuse (an id over 256 bytes, a bad connection
id, ...) is refused here with exit status 2. A reason over 120 bytes is cut
(on a UTF-8 boundary) and a ttlS over a year lowered, as the gateways do.
  --timeout-ms MS  connect and flush timeout (default 5000)
)";

// ---------------------------------------------------------------------------
// connect

struct WsUrl {
  std::string host;  // without brackets for IPv6
  std::string port;
  std::string target;  // path and query
  std::string host_header;
};

// ws://host[:port][/path][?query]. Throws UsageError.
WsUrl parse_ws_url(std::string_view url) {
  constexpr std::string_view kScheme = "ws://";
  if (url.substr(0, 6) == "wss://") {
    throw UsageError("wss:// is not supported: use ws:// (TLS ends in front of the gateway)");
  }
  if (url.substr(0, kScheme.size()) != kScheme) throw UsageError("--url must start with ws://");
  std::string_view rest = url.substr(kScheme.size());
  std::size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  WsUrl out;
  out.target = end == std::string_view::npos ? "/" : std::string(rest.substr(end));
  if (out.target.front() == '?') out.target.insert(0, "/");
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) throw UsageError("--url: unterminated [ in host");
    out.host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw UsageError("--url: bad host");
      port = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) throw UsageError("--url has no host");
  out.port = port.empty() ? "80" : std::string(port);
  if (out.port.find_first_not_of("0123456789") != std::string::npos) {
    throw UsageError("--url: bad port \"" + out.port + "\"");
  }
  out.host_header = authority;
  return out;
}

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string query_escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

void add_query_param(std::string& target, std::string_view key, std::string_view value) {
  target += target.find('?') == std::string::npos ? '?' : '&';
  target += key;
  target += '=';
  target += query_escape(value);
}

enum class TokenPlace { query, header, subprotocol };

struct ConnectOptions {
  WsUrl url;
  std::string token;
  TokenPlace place = TokenPlace::query;
  std::uint64_t exit_after = 0;  // 0: no limit
  std::int64_t timeout_ms = 0;   // 0: none
};

// Turns one input line into the text to send. Empty when the line is blank
// or wrong (reported on stderr). `trace_id` gets the traceId to wait for,
// when the message has one.
std::string line_to_message(std::string_view line, std::uint64_t& next_trace,
                            std::string& trace_id) {
  trace_id.clear();
  auto first = line.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  line = line.substr(first);
  auto last = line.find_last_not_of(" \t");
  line = line.substr(0, last + 1);
  if (line.front() == '{') {
    // Sent as is, even when it is not valid JSON: the gateway's answer is the point.
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (!ec && v.is_object()) {
      if (auto* t = v.as_object().if_contains("traceId"); t && t->is_string()) {
        trace_id = std::string(t->as_string());
      }
    }
    return std::string(line);
  }
  auto space = line.find_first_of(" \t");
  std::string_view command = line.substr(0, space);
  std::optional<json::value> data;
  if (space != std::string_view::npos) {
    boost::system::error_code ec;
    data = json::parse(line.substr(space + 1), ec);
    if (ec) {
      std::fprintf(stderr, "wsgw-cli: not sent: data of %.*s is not JSON (%s)\n",
                   static_cast<int>(command.size()), command.data(), ec.message().c_str());
      return {};
    }
  }
  json::object msg;
  msg["command"] = command;
  trace_id = "cli-" + std::to_string(next_trace++);
  msg["traceId"] = trace_id;
  if (data) msg["data"] = std::move(*data);
  return json::serialize(msg);
}

// Reads stdin lines on its own thread and hands them to the io_context.
// The thread may outlive the client (it blocks in read(2) until the process
// exits), so it only posts while the shared state is open.
class StdinReader {
 public:
  using LineFn = std::function<void(std::string)>;
  using EofFn = std::function<void()>;

  ~StdinReader() { shut(); }

  void start(asio::any_io_executor ex, LineFn on_line, EofFn on_eof) {
    std::thread([state = state_, ex, on_line = std::move(on_line), on_eof = std::move(on_eof)] {
      std::string pending;
      char buf[4096];
      for (;;) {
        ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        pending.append(buf, static_cast<std::size_t>(n));
        std::size_t pos;
        while ((pos = pending.find('\n')) != std::string::npos) {
          std::string line = pending.substr(0, pos);
          pending.erase(0, pos + 1);
          if (!line.empty() && line.back() == '\r') line.pop_back();
          if (!state->post(ex, [on_line, line = std::move(line)] { on_line(line); })) return;
        }
      }
      if (!pending.empty() && !state->post(ex, [on_line, line = pending] { on_line(line); })) {
        return;
      }
      state->post(ex, on_eof);
    }).detach();
  }

  // After this, the thread never touches the io_context again.
  void shut() {
    std::lock_guard lock(state_->mu);
    state_->open = false;
  }

 private:
  struct State {
    std::mutex mu;
    bool open = true;
    bool post(const asio::any_io_executor& ex, std::function<void()> fn) {
      std::lock_guard lock(mu);
      if (!open) return false;
      asio::post(ex, std::move(fn));
      return true;
    }
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

// One WebSocket session on the caller's io_context (single thread).
class Client {
 public:
  Client(asio::io_context& ioc, ConnectOptions opts)
      : ioc_(ioc),
        opts_(std::move(opts)),
        resolver_(ioc),
        ws_(ioc),
        deadline_(ioc),
        close_timer_(ioc),
        reply_wait_(ioc),
        signals_(ioc, SIGINT, SIGTERM) {}

  ~Client() { stdin_.shut(); }

  void start() {
    if (opts_.timeout_ms > 0) {
      deadline_.expires_after(std::chrono::milliseconds(opts_.timeout_ms));
      deadline_.async_wait([this](beast::error_code ec) {
        if (!ec) fail("timed out after " + std::to_string(opts_.timeout_ms) + " ms");
      });
    }
    signals_.async_wait([this](beast::error_code ec, int) {
      if (ec) return;
      if (!open_) return fail("interrupted");
      begin_close();
      signals_.async_wait([this](beast::error_code ec2, int) {
        if (!ec2) fail("interrupted");
      });
    });
    resolver_.async_resolve(opts_.url.host, opts_.url.port,
                            [this](beast::error_code ec, tcp::resolver::results_type results) {
                              if (ec)
                                return fail("resolve " + opts_.url.host + ": " + ec.message());
                              on_resolved(results);
                            });
  }

  int exit_code() const { return exit_code_; }

 private:
  void on_resolved(const tcp::resolver::results_type& results) {
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(10));
    beast::get_lowest_layer(ws_).async_connect(
        results, [this](beast::error_code ec, const tcp::endpoint&) {
          if (ec) {
            return fail("connect to " + opts_.url.host_header + ": " + ec.message());
          }
          on_connected();
        });
  }

  void on_connected() {
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = std::chrono::seconds(10);  // also bounds the closing handshake
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator([this](websocket::request_type& req) {
      req.set(http::field::user_agent, "wsgw-cli");
      if (opts_.place == TokenPlace::header) {
        req.set(http::field::authorization, "Bearer " + opts_.token);
      } else if (opts_.place == TokenPlace::subprotocol) {
        req.set(http::field::sec_websocket_protocol, "wsgw, bearer." + opts_.token);
      }
    }));
    ws_.async_handshake(response_, opts_.url.host_header, opts_.url.target,
                        [this](beast::error_code ec) { on_handshake(ec); });
  }

  void on_handshake(beast::error_code ec) {
    if (ec == websocket::error::upgrade_declined) {
      return fail("handshake refused: HTTP " + std::to_string(response_.result_int()) + " " +
                  std::string(response_.reason()) + " " + response_.body());
    }
    if (ec) return fail("handshake: " + ec.message());
    std::string protocol(response_[http::field::sec_websocket_protocol]);
    if (opts_.place == TokenPlace::subprotocol && protocol != "wsgw") {
      // A browser fails such a connection (docs/PROTOCOL.md §1); so do we.
      return fail("the server selected subprotocol \"" + protocol + "\", not \"wsgw\"");
    }
    open_ = true;
    // The query may hold the token: never print it.
    std::string path = opts_.url.target.substr(0, opts_.url.target.find('?'));
    std::fprintf(stderr, "wsgw-cli: connected to ws://%s%s%s\n", opts_.url.host_header.c_str(),
                 path.c_str(), protocol.empty() ? "" : (" (" + protocol + ")").c_str());
    read();
    flush_outbox();
    stdin_.start(
        ioc_.get_executor(), [this](std::string line) { on_line(line); },
        [this] { on_stdin_eof(); });
  }

  void read() {
    ws_.async_read(buffer_, [this](beast::error_code ec, std::size_t) { on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (done_) return;
    if (ec == websocket::error::closed) return closed();
    if (ec) {
      if (closing_) return;  // the close operation reports the outcome
      return fail("read: " + ec.message());
    }
    std::string text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    if (ws_.got_text()) {
      text += '\n';
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      note_reply(text);
    } else {
      std::fprintf(stderr, "wsgw-cli: binary message of %zu bytes\n", text.size());
    }
    ++received_;
    if (opts_.exit_after > 0 && received_ >= opts_.exit_after) {
      reached_exit_after_ = true;
      begin_close();
    }
    maybe_close_after_eof();
    read();
  }

  // Forgets the awaited traceId that `text` answers, if any.
  void note_reply(std::string_view text) {
    if (awaiting_.empty()) return;
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec || !v.is_object()) return;
    if (auto* t = v.as_object().if_contains("traceId"); t && t->is_string()) {
      awaiting_.erase(std::string(t->as_string()));
    }
  }

  void on_line(const std::string& line) {
    if (done_ || closing_) return;
    std::string trace_id;
    std::string msg = line_to_message(line, next_trace_, trace_id);
    if (msg.empty()) return;
    if (!trace_id.empty()) awaiting_.insert(trace_id);
    outbox_.push_back(std::move(msg));
    flush_outbox();
  }

  void on_stdin_eof() {
    if (done_) return;
    stdin_eof_ = true;
    if (opts_.exit_after > 0) return;  // the run ends with the N-th message
    reply_wait_.expires_after(std::chrono::seconds(5));
    reply_wait_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      std::fprintf(stderr, "wsgw-cli: %zu replies did not arrive within 5 s\n", awaiting_.size());
      begin_close();
    });
    maybe_close_after_eof();
  }

  void maybe_close_after_eof() {
    if (stdin_eof_ && opts_.exit_after == 0 && awaiting_.empty() && outbox_.empty() && !writing_) {
      begin_close();
    }
  }

  void flush_outbox() {
    if (!open_ || writing_ || closing_ || outbox_.empty()) return;
    writing_ = true;
    ws_.text(true);
    ws_.async_write(asio::buffer(outbox_.front()), [this](beast::error_code ec, std::size_t) {
      writing_ = false;
      if (done_) return;
      if (ec) return fail("write: " + ec.message());
      outbox_.pop_front();
      if (closing_) return send_close();
      flush_outbox();
      maybe_close_after_eof();
    });
  }

  // Sends a close 1000 (once any write in progress is done) and gives the
  // server 2 s to answer.
  void begin_close() {
    if (closing_ || done_) return;
    closing_ = true;
    reply_wait_.cancel();
    close_timer_.expires_after(std::chrono::seconds(2));
    close_timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      std::fprintf(stderr, "wsgw-cli: no close answer within 2 s\n");
      finish(reached_exit_after_ ? 0 : 1);
    });
    if (!writing_) send_close();
  }

  void send_close() {
    ws_.async_close(websocket::close_code::normal, [this](beast::error_code ec) {
      if (done_) return;
      if (ec == websocket::error::closed || !ec) return closed();
      fail("close: " + ec.message());
    });
  }

  // The closing handshake is complete: report the server's code and reason.
  void closed() {
    const websocket::close_reason& r = ws_.reason();
    std::fprintf(stderr, "wsgw-cli: closed code=%u reason=%s\n", static_cast<unsigned>(r.code),
                 r.reason.c_str());
    finish(reached_exit_after_ || r.code == websocket::close_code::normal ? 0 : 1);
  }

  void fail(const std::string& what) {
    if (done_) return;
    std::fprintf(stderr, "wsgw-cli: %s\n", what.c_str());
    finish(reached_exit_after_ ? 0 : 1);
  }

  void finish(int code) {
    if (done_) return;
    done_ = true;
    exit_code_ = code;
    stdin_.shut();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    ioc_.stop();
  }

  asio::io_context& ioc_;
  ConnectOptions opts_;
  tcp::resolver resolver_;
  websocket::stream<beast::tcp_stream> ws_;
  asio::steady_timer deadline_;     // --timeout-ms
  asio::steady_timer close_timer_;  // bounds the wait for the server's close
  asio::steady_timer reply_wait_;   // bounds the wait for replies after end of input
  asio::signal_set signals_;        // first SIGINT/SIGTERM closes, the second quits
  websocket::response_type response_;
  beast::flat_buffer buffer_;
  std::deque<std::string> outbox_;
  std::set<std::string> awaiting_;  // traceIds sent whose reply has not arrived
  StdinReader stdin_;
  std::uint64_t next_trace_ = 1;
  std::uint64_t received_ = 0;
  bool open_ = false, writing_ = false, closing_ = false, stdin_eof_ = false, done_ = false;
  bool reached_exit_after_ = false;
  int exit_code_ = 1;
};

int cmd_connect(int argc, char** argv) {
  Args args(argc, argv, 2, {"url", "token", "user", "name", "exit-after", "timeout-ms"},
            {"header-auth", "subprotocol-auth", "help"});
  if (args.has("help")) {
    std::fwrite(kConnectUsage.data(), 1, kConnectUsage.size(), stdout);
    return 0;
  }
  if (!args.positional().empty()) {
    throw UsageError("unexpected argument \"" + args.positional().front() + "\"");
  }
  ConnectOptions opts;
  opts.url = parse_ws_url(args.get_or("url", "ws://127.0.0.1:8080/ws"));
  std::string auth = args.one_of({"token", "user"});
  std::string place = args.one_of({"header-auth", "subprotocol-auth"});
  if (!place.empty() && auth != "token") throw UsageError("--" + place + " needs --token");
  if (args.has("name") && auth != "user") throw UsageError("--name needs --user");
  if (auth == "token") {
    opts.token = *args.get("token");
    if (place == "header-auth") {
      opts.place = TokenPlace::header;
    } else if (place == "subprotocol-auth") {
      opts.place = TokenPlace::subprotocol;
    } else {
      add_query_param(opts.url.target, "token", opts.token);
    }
  } else if (auth == "user") {
    add_query_param(opts.url.target, "user", *args.get("user"));
    if (auto name = args.get("name")) add_query_param(opts.url.target, "name", *name);
  }
  opts.exit_after = static_cast<std::uint64_t>(args.get_int("exit-after", 0, 1, 1'000'000'000));
  opts.timeout_ms = args.get_int("timeout-ms", 0, 1, 86'400'000);

  asio::io_context ioc;
  Client client(ioc, std::move(opts));
  client.start();
  ioc.run();
  return client.exit_code();
}

// ---------------------------------------------------------------------------
// publish and ctl

// A non-empty option value. Throws UsageError.
std::string required(const Args& args, std::string_view name) {
  auto v = args.get(name);
  if (!v) throw UsageError("--" + std::string(name) + " is required");
  if (v->empty()) throw UsageError("--" + std::string(name) + " must not be empty");
  return *v;
}

std::string checked_prefix(const Args& args) {
  std::string prefix = args.get_or("prefix", kDefaultPrefix);
  if (!wsgw::tools::valid_prefix(prefix)) {
    throw UsageError("--prefix must be dot-separated subject tokens");
  }
  return prefix;
}

std::string checked_conn_id(const Args& args) {
  std::string id = required(args, "conn");
  if (!wsgw::tools::parse_conn_id(id)) {
    throw UsageError("--conn must be a connection id <gatewayId>.<n>, got \"" + id + "\"");
  }
  return id;
}

// Connects, publishes, flushes. Returns the exit status.
int publish_once(const Args& args, const std::string& subject, const std::string& payload) {
  std::string url = args.get_or("nats", kDefaultNats);
  int timeout_ms = static_cast<int>(args.get_int("timeout-ms", 5000, 1, 600'000));
  wsgw::tools::NatsLibrary library;
  auto conn = wsgw::tools::connect_once(url, "wsgw-cli", timeout_ms);
  wsgw::tools::publish_flushed(conn.get(), subject, payload, timeout_ms);
  std::fprintf(stderr, "wsgw-cli: published %zu bytes on %s\n", payload.size(), subject.c_str());
  return 0;
}

int cmd_publish(int argc, char** argv) {
  Args args(
      argc, argv, 2,
      {"nats", "prefix", "user", "conn", "group", "command", "data", "trace-id", "timeout-ms"},
      {"all", "help"});
  if (args.has("help")) {
    std::fwrite(kPublishUsage.data(), 1, kPublishUsage.size(), stdout);
    return 0;
  }
  if (!args.positional().empty()) {
    throw UsageError("unexpected argument \"" + args.positional().front() + "\"");
  }
  wsgw::bus::Subjects subjects{checked_prefix(args), ""};
  std::string target = args.one_of({"user", "conn", "group", "all"});
  std::string subject;
  if (target == "user") {
    subject = subjects.user(required(args, "user"));
  } else if (target == "group") {
    subject = subjects.group(required(args, "group"));
  } else if (target == "conn") {
    auto id = wsgw::tools::parse_conn_id(checked_conn_id(args));
    subjects.gateway_id = id->gateway;
    subject = subjects.conn(id->seq);
  } else if (target == "all") {
    subject = subjects.all();
  } else {
    throw UsageError("one of --user, --conn, --group or --all is required");
  }

  std::optional<json::value> data;
  if (auto text = args.get("data")) {
    boost::system::error_code ec;
    data = json::parse(*text, ec);
    if (ec) throw UsageError("--data is not valid JSON: " + ec.message());
  }
  std::string payload = wsgw::tools::make_push(
      required(args, "command"), args.get_or("trace-id", ""), data ? &*data : nullptr);
  // The gateway drops pushes that break the client message rules; check them here.
  wsgw::protocol::ClientMessage parsed;
  std::string detail;
  if (wsgw::protocol::parse_client_message(payload, parsed, detail) != wsgw::protocol::Error::ok) {
    throw UsageError(detail);
  }
  return publish_once(args, subject, payload);
}

// Checks `payload` by the gateways' own rules (docs/PROTOCOL.md §6.4), so
// that what every gateway would refuse is refused here, where the sender
// sees it (exit 2), then publishes it as the gateways will apply it: a long
// reason cut, a long ttlS lowered (said on stderr).
int publish_control(const Args& args, const std::string& prefix, const std::string& verb,
                    json::object& payload) {
  std::string why;
  auto parsed = wsgw::protocol::parse_control(verb, json::serialize(payload), why);
  if (!parsed) throw UsageError(why);
  if (auto* r = payload.if_contains("reason"); r && r->as_string() != parsed->reason) {
    std::fprintf(stderr, "wsgw-cli: --reason cut to %zu bytes: %s\n", parsed->reason.size(),
                 parsed->reason.c_str());
    payload["reason"] = parsed->reason;
  }
  if (auto* t = payload.if_contains("ttlS"); t && t->as_int64() != parsed->ttl_s) {
    std::fprintf(stderr, "wsgw-cli: --ttl-s lowered to %lld (a year)\n",
                 static_cast<long long>(parsed->ttl_s));
    payload["ttlS"] = parsed->ttl_s;
  }
  return publish_once(args, wsgw::tools::control_subject(prefix, verb), json::serialize(payload));
}

int cmd_ctl(int argc, char** argv) {
  Args args(argc, argv, 2,
            {"nats", "prefix", "group", "user", "conn", "token-id", "reason", "ttl-s", "timeout-ms"},
            {"help"});
  if (args.has("help")) {
    std::fwrite(kCtlUsage.data(), 1, kCtlUsage.size(), stdout);
    return 0;
  }
  if (args.positional().size() != 1) {
    throw UsageError("expected one verb: join, leave, kick or revoke");
  }
  const std::string& verb = args.positional().front();
  if (verb != "join" && verb != "leave" && verb != "kick" && verb != "revoke") {
    throw UsageError("unknown verb \"" + verb + "\" (join, leave, kick or revoke)");
  }
  std::string prefix = checked_prefix(args);

  json::object payload;
  if (verb == "revoke") {
    if (args.has("group") || args.has("conn")) {
      throw UsageError("revoke takes --user or --token-id (kick closes one connection)");
    }
    if (auto reason = args.get("reason")) payload["reason"] = *reason;
    if (auto ttl = args.get("ttl-s")) {
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(ttl->data(), ttl->data() + ttl->size(), v);
      if (ec != std::errc() || p != ttl->data() + ttl->size() || v < 1) {
        throw UsageError("--ttl-s must be a positive integer (seconds)");
      }
      payload["ttlS"] = v;
    }
    std::string who = args.one_of({"user", "token-id"});
    if (who == "user") {
      payload["user"] = required(args, "user");
    } else if (who == "token-id") {
      payload["tokenId"] = required(args, "token-id");
    } else {
      throw UsageError("one of --user or --token-id is required");
    }
    return publish_control(args, prefix, verb, payload);
  }
  if (args.has("token-id") || args.has("ttl-s")) throw UsageError("--token-id and --ttl-s are for revoke only");
  if (verb == "kick") {
    if (args.has("group")) throw UsageError("kick takes no --group");
    if (auto reason = args.get("reason")) payload["reason"] = *reason;
  } else {
    if (args.has("reason")) throw UsageError("--reason is for kick only");
    payload["group"] = required(args, "group");
  }
  std::string who = args.one_of({"user", "conn"});
  if (who == "user") {
    payload["user"] = required(args, "user");
  } else if (who == "conn") {
    payload["conn"] = checked_conn_id(args);
  } else {
    throw UsageError("one of --user or --conn is required");
  }
  return publish_control(args, prefix, verb, payload);
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view command = argc > 1 ? argv[1] : "";
  try {
    if (command == "connect") return cmd_connect(argc, argv);
    if (command == "publish") return cmd_publish(argc, argv);
    if (command == "ctl") return cmd_ctl(argc, argv);
    if (command == "--help" || command == "-h" || command == "help") {
      std::fwrite(kUsage.data(), 1, kUsage.size(), stdout);
      return 0;
    }
    std::fwrite(kUsage.data(), 1, kUsage.size(), stderr);
    return 2;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "wsgw-cli %.*s: %s (see --help)\n", static_cast<int>(command.size()),
                 command.data(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wsgw-cli %.*s: %s\n", static_cast<int>(command.size()), command.data(),
                 e.what());
    return 1;
  }
}
