#include "tools/common/args.hpp"

#include <algorithm>
#include <charconv>

namespace wsgw::tools {
namespace {

bool contains(std::initializer_list<std::string_view> list, std::string_view name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

}  // namespace

Args::Args(int argc, char** argv, int first, std::initializer_list<std::string_view> valued,
           std::initializer_list<std::string_view> flags) {
  bool options_done = false;
  for (int i = first; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (options_done || arg.size() < 3 || arg.substr(0, 2) != "--") {
      if (!options_done && arg == "--") {
        options_done = true;
        continue;
      }
      positional_.emplace_back(arg);
      continue;
    }
    std::string_view body = arg.substr(2);
    std::optional<std::string_view> inline_value;
    if (auto eq = body.find('='); eq != std::string_view::npos) {
      inline_value = body.substr(eq + 1);
      body = body.substr(0, eq);
    }
    std::string name(body);
    if (values_.count(name) != 0) throw UsageError("option --" + name + " given twice");
    if (contains(flags, body)) {
      if (inline_value) throw UsageError("option --" + name + " takes no value");
      values_[name] = "";
    } else if (contains(valued, body)) {
      if (inline_value) {
        values_[name] = std::string(*inline_value);
      } else if (i + 1 < argc) {
        values_[name] = argv[++i];
      } else {
        throw UsageError("option --" + name + " needs a value");
      }
    } else {
      throw UsageError("unknown option --" + name);
    }
  }
}

std::optional<std::string> Args::get(std::string_view name) const {
  auto it = values_.find(std::string(name));
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::get_or(std::string_view name, std::string_view fallback) const {
  auto v = get(name);
  return v ? *v : std::string(fallback);
}

std::int64_t Args::get_int(std::string_view name, std::int64_t fallback, std::int64_t lo,
                           std::int64_t hi) const {
  auto v = get(name);
  if (!v) return fallback;
  std::int64_t out = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || ptr != v->data() + v->size() || out < lo || out > hi) {
    throw UsageError("option --" + std::string(name) + " must be an integer in " +
                     std::to_string(lo) + ".." + std::to_string(hi) + ", got \"" + *v + "\"");
  }
  return out;
}

std::string Args::one_of(std::initializer_list<std::string_view> names) const {
  std::string found;
  for (auto n : names) {
    if (!has(n)) continue;
    if (!found.empty()) {
      throw UsageError("options --" + found + " and --" + std::string(n) +
                       " cannot be used together");
    }
    found = n;
  }
  return found;
}

}  // namespace wsgw::tools
