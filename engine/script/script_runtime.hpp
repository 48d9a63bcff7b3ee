// Lua command scripts (docs: scripts/README.md; design: DESIGN.md §6).
//
// A ScriptRuntime is one sandboxed LuaJIT state holding every script of a
// directory: one per worker, used by that worker's thread only (not
// thread-safe). Hot reload builds a new runtime per worker and swaps it in
// between two messages; a directory with any bad script gives no runtime,
// so a broken script never replaces a working set.
#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/routing/route_table.hpp"

namespace wsgw::script {

struct ScriptLimits {
  // Per Lua state, everything included (libraries, scripts, data converted
  // for a call, garbage not yet collected).
  std::size_t memory_bytes = 32 * 1024 * 1024;
  // Per handle() call (and per script's top-level chunk at load): bytecode
  // instructions, plus work done in C charged in the same units: one per 64
  // bytes the state allocates (every string, table and buffer a script
  // produces), per 64 bytes a library function copies or matches, per table
  // slot moved, per pattern step.
  std::uint64_t instructions = 1000000;
  // Per call: wall-clock backstop for work the count cannot see (comparing
  // huge strings in a loop), read at the guards' checks (vm.hpp). 0: none.
  std::uint32_t time_ms = 50;
};

// What one run (a handle() call, or a script's top-level chunk at load)
// used, in the guards' terms.
struct RunCost {
  std::uint64_t units = 0;            // against ScriptLimits::instructions
  std::uint64_t bytes_allocated = 0;  // by the Lua state during the run
};

struct CommandSpec {        // what one script declared
  std::string command;      // [A-Za-z0-9_.:-]{1,64}, not an engine command
  std::string file;         // the script's path, for errors and logs
  std::string description;  // optional, for humans
  // subject, mode, timeout_ms (the default when the script gives 0 or none),
  // ack. Empty subject for mode "local".
  routing::Route route;
  bool local = false;                // mode "local": handle answers (or forwards) itself
  std::uint32_t max_data_bytes = 0;  // serialized size of `data`; 0 = no limit
  double rate_per_sec = 0;           // per connection and command; 0 = no limit
  std::uint32_t burst = 0;           // bucket size; max(1, floor(rate)) by default
  bool has_handle = false;
};

struct HandleInput {  // facts for ctx
  std::string_view command{}, trace_id{}, user_id{}, user_name{}, conn_id{}, gateway_id{};
  const boost::json::value* data = nullptr;  // a null value when the client sent none (nullptr too)
};

struct HandleResult {
  enum class Action { forward, reply, error };
  Action action = Action::forward;

  // forward: where (defaults: the route's) and what (nullopt: the client's
  // data unchanged; otherwise JSON text, "null" included).
  std::string subject;
  routing::Route::Mode mode = routing::Route::Mode::request;
  std::uint32_t timeout_ms = 0;
  bool ack = false;
  std::optional<std::string> data_json;

  // reply: code (0 ok; ctx:deny gives its non-zero code), message, data.
  int code = 0;
  std::string message;
  std::string reply_data_json = "null";

  // Group changes for this connection, in call order: {true, "g"} joins g,
  // {false, "g"} leaves it. Empty when action is error: a failed call has no
  // effects.
  std::vector<std::pair<bool, std::string>> groups;

  // error: why, for the log ("echo.lua:12: attempt to index ...",
  // "echo.lua:3: instruction budget exceeded", "... memory limit exceeded",
  // "... time limit exceeded", "local command did not reply"). The client
  // gets 520 and never sees this text.
  std::string error;
};

class ScriptRuntime {
 public:
  // Loads every *.lua file directly in `dir` (sorted by name; names starting
  // with '.' are skipped) into one fresh sandboxed state. Returns null when
  // any script is bad, appending one "file.lua:LINE: reason" per bad script
  // to `errors`: syntax error, bytecode, error while running the chunk, not
  // returning a table, missing or mistyped fields, unknown keys, a duplicate
  // command, mode local without handle, a subject refused by
  // bus::valid_route_subject(subject, subject_prefix). Routes without
  // timeout_ms get `default_timeout_ms`. An empty directory gives a runtime
  // with no commands.
  static std::unique_ptr<ScriptRuntime> load(const std::string& dir, const ScriptLimits& limits,
                                             std::string_view subject_prefix,
                                             std::uint32_t default_timeout_ms,
                                             std::vector<std::string>& errors);
  ~ScriptRuntime();
  ScriptRuntime(const ScriptRuntime&) = delete;
  ScriptRuntime& operator=(const ScriptRuntime&) = delete;

  // In file name order; stable for the runtime's lifetime.
  const std::vector<CommandSpec>& commands() const;
  const CommandSpec* find(std::string_view command) const;

  // Runs the script's handle(ctx) for one message. `spec` must come from
  // this runtime's commands() and have has_handle (otherwise: action error).
  // Never throws and never lets a Lua error escape; a script that fails,
  // runs out of budget, time or memory gives action error and leaves the
  // runtime usable for the next call. Rate and size limits are the
  // caller's: check them before calling.
  HandleResult handle(const CommandSpec& spec, const HandleInput& in) noexcept;

  // Bytes held by the Lua state now.
  std::size_t memory_bytes() const;

  // The last run's cost (after a stop: including the instructions tried
  // after it, each one raising the stop again).
  RunCost last_run_cost() const;

 private:
  struct Impl;
  ScriptRuntime();
  std::unique_ptr<Impl> impl_;
};

}  // namespace wsgw::script
