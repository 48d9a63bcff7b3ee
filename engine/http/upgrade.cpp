#include "engine/http/upgrade.hpp"

#include <openssl/evp.h>

#include <array>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <cstdint>
#include <iterator>
#include <string>
#include <utility>

namespace wsgw::http {
namespace {

namespace bhttp = boost::beast::http;
using Request = bhttp::request<bhttp::empty_body>;

constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// RFC 9110 tchar.
bool is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

// Calls fn(element) for each non-empty, trimmed element of a comma-separated
// list spread over every occurrence of `f` (RFC 9110 §5.3: repeated list
// headers are one list). Stops early when fn returns true; returns whether it did.
template <typename Fn>
bool any_list_element(const Request& req, bhttp::field f, Fn&& fn) {
  auto [it, end] = req.equal_range(f);
  for (; it != end; ++it) {
    std::string_view rest = it->value();
    while (true) {
      std::size_t comma = rest.find(',');
      std::string_view elem = trim(rest.substr(0, comma));
      if (!elem.empty() && fn(elem)) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

std::size_t count(const Request& req, bhttp::field f) {
  auto [it, end] = req.equal_range(f);
  return static_cast<std::size_t>(std::distance(it, end));
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// 16 bytes encode to 22 significant characters plus "==". The unused low bits
// of the last character are not required to be zero: common decoders ignore
// them and the key is only ever hashed as text.
bool is_base64_of_16_bytes(std::string_view key) {
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (std::size_t i = 0; i < 22; ++i) {
    if (!is_base64_char(key[i])) return false;
  }
  return true;
}

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no
// overlongs, surrogates or code points above U+10FFFF), 0 if there is none.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  std::size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return len;
}

// Valid UTF-8 with no C0 control character and no DEL.
bool is_clean_text(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) return false;
    std::size_t len = utf8_sequence_length(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

bool is_token_byte_clean(std::string_view token) {
  for (unsigned char c : token) {
    if (c < 0x21 || c > 0x7E) return false;
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Calls fn(raw_name, raw_value) for each '&'-separated parameter of `query`
// (the part after '?'), skipping empty ones. Stops when fn returns false.
template <typename Fn>
void for_each_param(std::string_view query, Fn&& fn) {
  while (true) {
    std::size_t amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    if (!param.empty()) {
      std::size_t eq = param.find('=');
      std::string_view name = param.substr(0, eq);
      std::string_view value =
          eq == std::string_view::npos ? std::string_view{} : param.substr(eq + 1);
      if (!fn(name, value)) return;
    }
    if (amp == std::string_view::npos) return;
    query.remove_prefix(amp + 1);
  }
}

std::string_view query_of(std::string_view target) {
  std::size_t q = target.find('?');
  return q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
}

// The token of `Authorization: Bearer <token>`; empty when the header is
// absent, uses another scheme or carries no token.
std::string_view bearer_token(const Request& req) {
  auto it = req.find(bhttp::field::authorization);
  if (it == req.end()) return {};
  std::string_view v = trim(it->value());
  std::size_t sp = v.find(' ');
  if (sp == std::string_view::npos || !iequals(v.substr(0, sp), "bearer")) return {};
  // RFC 6750 §2.1: 1*SP between scheme and token; trailing OWS is already gone.
  std::string_view rest = v.substr(sp);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  return rest;
}

// Cuts at most a few bytes more than needed so that a multi-byte UTF-8
// character is never split; invalid input is still cut at most 3 bytes short.
std::string truncate_utf8(std::string_view s, std::size_t max) {
  if (s.size() <= max) return std::string(s);
  std::size_t cut = max;
  for (int back = 0; back < 3 && cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80;
       ++back) {
    --cut;
  }
  return std::string(s.substr(0, cut));
}

Refusal refuse(unsigned status, std::string reason, std::string extra_header = {}) {
  return Refusal{status, std::move(reason), std::move(extra_header), {}};
}

// See Refusal::origin. An Origin is ASCII (RFC 6454 §6.1), so what a browser
// sends reads unchanged; anything else cannot break the log line.
std::string loggable_origin(std::string_view origin) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  origin = origin.substr(0, kMaxLoggedOriginBytes);
  std::string out;
  out.reserve(origin.size());
  for (unsigned char c : origin) {
    if (c < 0x21 || c > 0x7E || c == '%') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
      ++i;
    } else if (std::size_t len = utf8_sequence_length(s, i); len == 0) {
      out += "\\ufffd";
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  out += '"';
}

// One "Name: value" line whose name is a token not written by make_refusal and
// whose value has no control characters other than HTAB.
bool is_valid_extra_line(std::string_view line) {
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view name = line.substr(0, colon);
  if (!is_token(name)) return false;
  for (std::string_view own :
       {"content-type", "content-length", "connection", "transfer-encoding"}) {
    if (iequals(name, own)) return false;
  }
  for (unsigned char c : line.substr(colon + 1)) {
    if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
  }
  return true;
}

bool is_valid_extra_header(std::string_view extra) {
  while (true) {
    std::size_t crlf = extra.find("\r\n");
    if (!is_valid_extra_line(extra.substr(0, crlf))) return false;
    if (crlf == std::string_view::npos) return true;
    extra.remove_prefix(crlf + 2);
  }
}

}  // namespace

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (in.size() - i < 3) return false;
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return true;
}

std::optional<std::string> query_param(std::string_view target, std::string_view name) {
  std::optional<std::string> found;
  std::string decoded_name;
  for_each_param(query_of(target), [&](std::string_view raw_name, std::string_view raw_value) {
    if (!percent_decode(raw_name, decoded_name) || decoded_name != name) return true;
    std::string value;
    if (percent_decode(raw_value, value)) found = std::move(value);
    return false;
  });
  return found;
}

std::string websocket_accept(std::string_view sec_websocket_key) {
  // Fetched once: an implicit fetch through EVP_sha1() takes a provider lock on
  // every call, which shows up under handshake storms.
  static EVP_MD* const fetched = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  const EVP_MD* md = fetched != nullptr ? fetched : EVP_sha1();

  std::string input;
  input.reserve(sec_websocket_key.size() + kWebSocketGuid.size());
  input.append(sec_websocket_key).append(kWebSocketGuid);

  std::array<unsigned char, EVP_MAX_MD_SIZE> digest;
  unsigned int digest_len = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &digest_len, md, nullptr) != 1 ||
      digest_len != 20) {
    return {};
  }
  std::array<unsigned char, 29> b64;  // 4 * ceil(20 / 3) + NUL
  int n = EVP_EncodeBlock(b64.data(), digest.data(), static_cast<int>(digest_len));
  if (n != 28) return {};
  return std::string(reinterpret_cast<const char*>(b64.data()), static_cast<std::size_t>(n));
}

std::variant<UpgradeRequest, Refusal> check_upgrade(const Request& req, const UpgradeOptions& opt) {
  if (req.method() != bhttp::verb::get) return refuse(405, "method not allowed", "Allow: GET");
  if (req.version() < 11) return refuse(400, "HTTP/1.1 required");

  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  if (path != opt.path) return refuse(404, "not found");

  if (!any_list_element(req, bhttp::field::upgrade,
                        [](std::string_view e) { return iequals(e, "websocket"); })) {
    return refuse(426, "upgrade required", "Upgrade: websocket");
  }
  if (!any_list_element(req, bhttp::field::connection,
                        [](std::string_view e) { return iequals(e, "upgrade"); })) {
    return refuse(400, "Connection: upgrade required");
  }

  // RFC 6455 §4.4: tell the client which version we speak.
  auto version = req.find(bhttp::field::sec_websocket_version);
  if (count(req, bhttp::field::sec_websocket_version) != 1 || trim(version->value()) != "13") {
    return refuse(426, "unsupported WebSocket version",
                  "Upgrade: websocket\r\nSec-WebSocket-Version: 13");
  }

  auto key = req.find(bhttp::field::sec_websocket_key);
  if (count(req, bhttp::field::sec_websocket_key) != 1 ||
      !is_base64_of_16_bytes(trim(key->value()))) {
    return refuse(400, "bad Sec-WebSocket-Key");
  }

  // RFC 9112 §3.2: a request without Host or with several must get a 400.
  auto host = req.find(bhttp::field::host);
  if (count(req, bhttp::field::host) != 1 || trim(host->value()).empty()) {
    return refuse(400, "bad Host header");
  }

  std::string_view origin;
  switch (count(req, bhttp::field::origin)) {
    case 0:
      break;
    case 1:
      origin = trim(req.find(bhttp::field::origin)->value());
      break;
    default:
      // Two Origins make the check below ambiguous; no browser sends that.
      return refuse(400, "duplicate Origin header");
  }
  if (req.find(bhttp::field::origin) != req.end() && !opt.allowed_origins.empty()) {
    bool allowed = false;
    for (const std::string& o : opt.allowed_origins) {
      if (o == origin) {
        allowed = true;
        break;
      }
    }
    if (!allowed) {
      Refusal r = refuse(403, "origin not allowed");
      r.origin = loggable_origin(origin);
      return r;
    }
  }

  // Only the header is read before the switch; body bytes would then be taken
  // for WebSocket frames.
  if (req.find(bhttp::field::transfer_encoding) != req.end()) {
    return refuse(400, "request body not allowed");
  }
  for (auto [it, end] = req.equal_range(bhttp::field::content_length); it != end; ++it) {
    if (trim(it->value()) != "0") return refuse(400, "request body not allowed");
  }

  // One pass over the query: validates every component and keeps the first
  // occurrence of each parameter of interest.
  std::optional<std::string> query_token, query_user, query_name;
  bool bad_query = false;
  {
    std::string name, value;
    for_each_param(query_of(target), [&](std::string_view raw_name, std::string_view raw_value) {
      if (!percent_decode(raw_name, name) || !percent_decode(raw_value, value)) {
        bad_query = true;
        return false;
      }
      if (name == "token" && !query_token) query_token = value;
      if (!opt.none_user_param.empty() && name == opt.none_user_param && !query_user) {
        query_user = value;
      }
      if (name == "name" && !query_name) query_name = value;
      return true;
    });
  }
  if (bad_query) return refuse(400, "bad query encoding");
  // Both are echoed into logs and JSON: refuse what could corrupt those.
  if ((query_user && !is_clean_text(*query_user)) || (query_name && !is_clean_text(*query_name))) {
    return refuse(400, "bad query parameter");
  }

  UpgradeRequest out;
  std::string_view subprotocol_token;
  bool offered = false;
  any_list_element(req, bhttp::field::sec_websocket_protocol, [&](std::string_view e) {
    constexpr std::string_view kBearer = "bearer.";
    offered = true;
    if (subprotocol_token.empty() && e.size() > kBearer.size() && e.starts_with(kBearer)) {
      subprotocol_token = e.substr(kBearer.size());
    }
    if (!opt.subprotocol.empty() && e == opt.subprotocol) out.select_subprotocol = true;
    return false;
  });
  // The browser would fail the connection after our 101 (see the header);
  // the token is never echoed, as a selected subprotocol or otherwise.
  if (offered && !out.select_subprotocol) {
    if (!subprotocol_token.empty()) {
      return refuse(400,
                    "the " + opt.subprotocol + " subprotocol must be offered with bearer.<token>");
    }
    return refuse(400, "the offered subprotocols do not include " + opt.subprotocol);
  }

  // Which of two Authorization headers would a proxy have checked? Refuse.
  if (count(req, bhttp::field::authorization) > 1) {
    return refuse(400, "duplicate Authorization header");
  }
  std::string_view header_token = bearer_token(req);
  if (!header_token.empty()) {
    out.token = header_token;
  } else if (query_token && !query_token->empty()) {
    out.token = std::move(*query_token);
  } else {
    out.token = subprotocol_token;
  }
  if (out.token.size() > kMaxTokenBytes) return refuse(400, "token too large");
  // Query tokens are percent-decoded, so they could smuggle CR/LF or NUL into
  // logs; no bearer token format (RFC 6750 b64token, JWT) needs such bytes.
  if (!is_token_byte_clean(out.token)) return refuse(400, "malformed token");

  out.accept = websocket_accept(trim(key->value()));
  if (out.accept.empty()) return refuse(500, "internal error");
  if (query_user) out.query_user = std::move(*query_user);
  if (query_name) out.query_name = std::move(*query_name);
  out.origin = origin;
  if (auto ua = req.find(bhttp::field::user_agent); ua != req.end()) {
    out.user_agent = truncate_utf8(ua->value(), kMaxUserAgentBytes);
  }
  return out;
}

std::string make_switching_protocols(const UpgradeRequest& r, std::string_view subprotocol) {
  std::string out;
  out.reserve(160);
  out += "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
  out.append("Sec-WebSocket-Accept: ").append(r.accept).append("\r\n");
  if (r.select_subprotocol && is_token(subprotocol)) {
    out.append("Sec-WebSocket-Protocol: ").append(subprotocol).append("\r\n");
  }
  out += "\r\n";
  return out;
}

std::string make_refusal(unsigned status, std::string_view reason, std::string_view extra_header) {
  if (status < 400 || status > 599) status = 500;
  std::string_view phrase = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  // Beast names unknown codes "<unknown-status>"; a plain word reads better.
  if (phrase.empty() || phrase.front() == '<') phrase = "Error";

  if (extra_header.ends_with("\r\n")) extra_header.remove_suffix(2);
  if (!extra_header.empty() && !is_valid_extra_header(extra_header)) extra_header = {};

  std::string body = "{\"code\":" + std::to_string(status) + ",\"message\":";
  append_json_string(body, reason);
  body += '}';

  std::string out;
  out.reserve(160 + extra_header.size() + body.size());
  out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ").append(phrase);
  out.append("\r\nContent-Type: application/json\r\nContent-Length: ");
  out.append(std::to_string(body.size()));
  out.append("\r\nConnection: close\r\n");
  if (!extra_header.empty()) out.append(extra_header).append("\r\n");
  out.append("\r\n").append(body);
  return out;
}

}  // namespace wsgw::http
