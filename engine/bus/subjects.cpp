#include "engine/bus/subjects.hpp"

namespace wsgw::bus {
namespace {

bool plain(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '@' || c == '+' || c == '=' || c == ':';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // lowercase is not produced by encode_token, so it is not accepted
}

}  // namespace

std::string encode_token(std::string_view raw) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  for (unsigned char c : raw) {
    if (plain(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::optional<std::string> decode_token(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (std::size_t i = 0; i < token.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(token[i]);
    if (plain(c)) {
      out += static_cast<char>(c);
      continue;
    }
    if (c != '%' || i + 2 >= token.size()) return std::nullopt;
    int hi = hex_value(token[i + 1]);
    int lo = hex_value(token[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    unsigned char decoded = static_cast<unsigned char>(hi << 4 | lo);
    if (plain(decoded)) return std::nullopt;  // one canonical encoding per id
    out += static_cast<char>(decoded);
    i += 2;
  }
  return out;
}

bool valid_route_subject(std::string_view subject, std::string_view prefix) {
  if (subject.empty() || subject.size() > 255) return false;
  std::size_t token_len = 0;
  for (unsigned char c : subject) {
    if (c == '.') {
      if (token_len == 0) return false;
      token_len = 0;
      continue;
    }
    if (c <= 0x20 || c >= 0x7f || c == '*' || c == '>') return false;
    ++token_len;
  }
  if (token_len == 0) return false;
  if (subject.size() > prefix.size() && subject.substr(0, prefix.size()) == prefix &&
      subject[prefix.size()] == '.')
    return false;
  if (subject == prefix) return false;
  // Reply inboxes belong to pending requests, not to routes.
  if (subject.substr(0, 7) == "_INBOX.") return false;
  return true;
}

}  // namespace wsgw::bus
