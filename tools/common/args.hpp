// Command-line parsing shared by the tools: "--name value", "--name=value",
// bare "--flag", and positional words, in any order. Every option must be
// declared; an unknown or repeated option is a UsageError.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace wsgw::tools {

// A mistake on the command line. Tools print it with a hint to run --help and
// exit with status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  // `valued`: options that take a value ("--nats URL"); `flags`: options that
  // take none ("--all"). Names are given without the leading "--".
  // Parses argv[first..argc). "--" ends option parsing: what follows is positional.
  // Throws UsageError.
  Args(int argc, char** argv, int first, std::initializer_list<std::string_view> valued,
       std::initializer_list<std::string_view> flags);

  bool has(std::string_view name) const { return values_.count(std::string(name)) != 0; }
  std::optional<std::string> get(std::string_view name) const;
  std::string get_or(std::string_view name, std::string_view fallback) const;
  // The option as an integer in [lo, hi], or `fallback` when absent. Throws
  // UsageError when it is not such an integer.
  std::int64_t get_int(std::string_view name, std::int64_t fallback, std::int64_t lo,
                       std::int64_t hi) const;
  const std::vector<std::string>& positional() const { return positional_; }

  // Throws UsageError naming the options when more than one of them is given.
  // Returns the one given, or an empty string when none is.
  std::string one_of(std::initializer_list<std::string_view> names) const;

 private:
  std::map<std::string, std::string> values_;  // flags map to ""
  std::vector<std::string> positional_;
};

}  // namespace wsgw::tools
