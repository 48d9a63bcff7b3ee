#include "engine/protocol/message_peek.hpp"

#include <algorithm>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/error.hpp>
#include <cstdint>

#include "engine/protocol/message.hpp"

namespace wsgw::protocol {
namespace {

namespace json = boost::json;

// A SAX handler over the prefix: the same parser core, options and checks
// (UTF-8, escapes, surrogates, nesting depth) as boost::json::parse, which
// parse_client_message uses, so what is valid here is valid there. Every
// callback but those of our two fields' values only tracks the nesting.
class PeekHandler {
 public:
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);

  // The fields that were read whole, valid and once.
  PeekedFields result() && {
    PeekedFields out;
    if (read_[kCommand].valid && read_[kCommand].seen == 1)
      out.command = std::move(read_[kCommand].value);
    if (read_[kTraceId].valid && read_[kTraceId].seen == 1)
      out.trace_id = std::move(read_[kTraceId].value);
    return out;
  }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }

  bool on_object_begin(json::error_code&) {
    other_value();
    ++depth_;
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) {
    --depth_;
    return true;
  }
  bool on_array_begin(json::error_code& ec) {
    if (depth_ == 0) return not_an_object(ec);
    other_value();
    ++depth_;
    return true;
  }
  bool on_array_end(std::size_t, json::error_code&) {
    --depth_;
    return true;
  }

  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    if (depth_ == 1) append(key_, s, kLongestKey);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    if (depth_ != 1) return true;
    append(key_, s, kLongestKey);
    field_ = key_ == "command" ? kCommand : key_ == "traceId" ? kTraceId : kNone;
    key_.clear();
    if (field_ != kNone) {
      ++read_[field_].seen;
      read_[field_].valid = false;
      read_[field_].value.clear();
    }
    return true;
  }

  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    if (depth_ == 1 && field_ != kNone) append(read_[field_].value, s, kLongestValue);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code& ec) {
    if (depth_ == 0) return not_an_object(ec);
    if (depth_ != 1 || field_ == kNone) return true;
    Field& f = read_[field_];
    append(f.value, s, kLongestValue);
    f.valid = field_ == kCommand ? valid_command_name(f.value) : f.value.size() <= kMaxTraceIdBytes;
    field_ = kNone;
    return true;
  }

  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, json::error_code& ec) { return scalar(ec); }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code& ec) { return scalar(ec); }
  bool on_double(double, json::string_view, json::error_code& ec) { return scalar(ec); }
  bool on_bool(bool, json::error_code& ec) { return scalar(ec); }
  bool on_null(json::error_code& ec) { return scalar(ec); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  struct Field {
    std::string value;   // decoded, cut at kLongestValue
    int seen = 0;        // times the key was named
    bool valid = false;  // the value was a string that meets the field's rules
  };
  static constexpr int kCommand = 0, kTraceId = 1, kNone = 2;
  // Longer keys are none of ours, and longer values break their field's rule
  // anyway, so neither is kept whole.
  static constexpr std::size_t kLongestKey = 8;
  static constexpr std::size_t kLongestValue = kMaxTraceIdBytes + 1;

  static void append(std::string& to, json::string_view s, std::size_t limit) {
    if (to.size() < limit) to.append(s.data(), std::min(s.size(), limit - to.size()));
  }
  static bool not_an_object(json::error_code& ec) {
    ec = json::error::syntax;
    return false;
  }
  // A value that is not a string: when it is one of our fields', that field
  // has the wrong type and stays invalid.
  void other_value() {
    if (depth_ == 1) field_ = kNone;
  }
  bool scalar(json::error_code& ec) {
    if (depth_ == 0) return not_an_object(ec);
    other_value();
    return true;
  }

  int depth_ = 0;
  int field_ = kNone;  // whose value comes next at the top level
  Field read_[2];
  std::string key_;
};

bool only_whitespace(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

}  // namespace

PeekedFields peek_command_and_trace(std::string_view prefix) {
  prefix = prefix.substr(0, kPeekBytes);
  json::basic_parser<PeekHandler> parser(json::parse_options{});
  json::error_code ec;
  std::size_t used = parser.write_some(/*more=*/true, prefix.data(), prefix.size(), ec);
  // A document that ends inside the prefix must be followed by nothing but
  // whitespace, as in a whole parse.
  if (ec || (parser.done() && !only_whitespace(prefix.substr(used)))) return {};
  return std::move(parser.handler()).result();
}

}  // namespace wsgw::protocol
