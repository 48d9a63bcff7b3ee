#include "engine/script/source_index.hpp"

#include <cctype>

namespace wsgw::script {
namespace {

bool ident_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool ident_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

}  // namespace

SourceIndex::SourceIndex(std::string_view s) {
  const std::size_t n = s.size();
  auto at = [&](std::size_t i) { return i < n ? s[i] : '\0'; };
  int line = 1;
  int depth = 0;  // open function/do/if/repeat blocks
  bool top_return = false;
  std::size_t i = 0;

  // Level of a long bracket "[==[" at i, or -1.
  auto long_level = [&](std::size_t i) {
    if (at(i) != '[') return -1;
    std::size_t j = i + 1;
    while (at(j) == '=') ++j;
    return at(j) == '[' ? static_cast<int>(j - i - 1) : -1;
  };
  auto skip_long = [&](std::size_t& i, int level) {
    i += static_cast<std::size_t>(level) + 2;
    while (i < n) {
      if (s[i] == '\n') ++line;
      if (s[i] == ']') {
        std::size_t j = i + 1;
        while (at(j) == '=') ++j;
        if (at(j) == ']' && static_cast<int>(j - i - 1) == level) {
          i = j + 1;
          return;
        }
      }
      ++i;
    }
  };

  while (i < n) {
    char c = s[i];
    if (c == '\n') {
      ++line;
      ++i;
    } else if (c == '-' && at(i + 1) == '-') {
      i += 2;
      if (int level = long_level(i); level >= 0) {
        skip_long(i, level);
      } else {
        while (i < n && s[i] != '\n') ++i;
      }
    } else if (c == '[' && long_level(i) >= 0) {
      skip_long(i, long_level(i));
    } else if (c == '"' || c == '\'') {
      ++i;
      while (i < n && s[i] != c && s[i] != '\n') {
        if (s[i] == '\\' && i + 1 < n) {
          if (s[i + 1] == '\n') ++line;
          ++i;
        }
        ++i;
      }
      ++i;
    } else if (ident_start(c)) {
      std::size_t b = i;
      while (i < n && ident_char(s[i])) ++i;
      std::string_view word = s.substr(b, i - b);
      if (word == "function" || word == "do" || word == "if" || word == "repeat") {
        ++depth;
      } else if (word == "end" || word == "until") {
        --depth;
      } else if (word == "return") {
        if (depth == 0) {
          return_line_ = line;
          top_return = true;
        }
      } else {
        std::size_t j = i;
        while (j < n && (s[j] == ' ' || s[j] == '\t')) ++j;
        if (at(j) == '=' && at(j + 1) != '=') keys_.push_back({word, line});
      }
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      while (i < n && (ident_char(s[i]) || s[i] == '.')) ++i;  // 1e5, 0x1F, 1.5
    } else {
      ++i;
    }
  }
  if (!top_return) return_line_ = line;
}

int SourceIndex::line_of(std::initializer_list<std::string_view> path) const {
  int found = 0;
  std::size_t from = 0;
  for (std::string_view name : path) {
    std::size_t k = from;
    while (k < keys_.size() && keys_[k].name != name) ++k;
    if (k == keys_.size()) break;
    found = keys_[k].line;
    from = k + 1;
  }
  return found != 0 ? found : return_line_;
}

}  // namespace wsgw::script
