// Line numbers for errors about a script's returned table. Lua knows where a
// syntax or runtime error is, but a table has no line, so "route.mode must
// be ..." is placed by reading the source: the line where the key is
// assigned ("mode = ..."), found by a small scanner that skips comments and
// strings.
#pragma once

#include <initializer_list>
#include <string_view>
#include <vector>

namespace wsgw::script {

class SourceIndex {
 public:
  // `src` must outlive the index.
  explicit SourceIndex(std::string_view src);

  // The line of the last key of `path`, each key searched after the
  // previous one: {"route", "mode"} finds "route =" then the first
  // "mode =" after it. Falls back to the deepest key found, then to
  // return_line().
  int line_of(std::initializer_list<std::string_view> path) const;

  // The line of the chunk's top-level `return` (the last line without one).
  int return_line() const { return return_line_; }

 private:
  struct Key {
    std::string_view name;
    int line;
  };
  std::vector<Key> keys_;  // identifiers followed by '=' (not '=='), in order
  int return_line_ = 1;
};

}  // namespace wsgw::script
