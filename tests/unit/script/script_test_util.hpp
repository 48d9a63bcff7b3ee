// Helpers for the script tests: scripts written to a fresh temporary
// directory, loaded, and handle() called with JSON data.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/json/parse.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine/script/script_runtime.hpp"

namespace wsgw::script::test {

inline std::string fixture(const std::string& name) {
  return std::string(WSGW_SOURCE_DIR) + "/tests/unit/script/fixtures/" + name;
}

inline std::string samples_dir() {
  return std::string(WSGW_SOURCE_DIR) + "/scripts/commands";
}

// A local command whose handle body is `body`; the body starts on line 5.
inline std::string local_script(const std::string& command, const std::string& body) {
  return "return {\n  command = \"" + command + "\",\n  route = { mode = \"local\" },\n" +
         "  handle = function(ctx)\n" + body + "\n  end,\n}\n";
}

// A request command to svc.<lowercase command> with an optional handle body
// (starting on line 5).
inline std::string request_script(const std::string& command, const std::string& body = "") {
  std::string subject = "svc.t";
  if (body.empty()) {
    return "return {\n  command = \"" + command + "\",\n  route = { subject = \"" + subject +
           "\", timeout_ms = 1500 },\n}\n";
  }
  return "return {\n  command = \"" + command + "\",\n  route = { subject = \"" + subject +
         "\", timeout_ms = 1500 },\n  handle = function(ctx)\n" + body + "\n  end,\n}\n";
}

class Scripts {
 public:
  Scripts() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wsgw_script_XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
  }
  ~Scripts() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  Scripts(const Scripts&) = delete;
  Scripts& operator=(const Scripts&) = delete;

  void write(const std::string& name, const std::string& text) {
    std::ofstream(std::filesystem::path(dir_) / name, std::ios::binary) << text;
  }
  const std::string& dir() const { return dir_; }

  // Loads the directory; fails the test (returning null) when it does not load.
  std::unique_ptr<ScriptRuntime> load(const ScriptLimits& limits = {}) {
    errors.clear();
    auto rt = ScriptRuntime::load(dir_, limits, "wsgw", 5000, errors);
    EXPECT_NE(rt, nullptr) << (errors.empty() ? std::string("no errors") : errors.front());
    return rt;
  }
  // Loads expecting failure; returns the errors.
  std::vector<std::string> load_errors(const ScriptLimits& limits = {}) {
    errors.clear();
    auto rt = ScriptRuntime::load(dir_, limits, "wsgw", 5000, errors);
    EXPECT_EQ(rt, nullptr);
    return errors;
  }

  std::vector<std::string> errors;

 private:
  std::string dir_;
};

struct Call {
  std::string data_json = "null";
  std::string trace_id = "t-1";
  std::string user_id = "alice";
  std::string user_name = "Alice";
  std::string conn_id = "gw1.7";
  std::string gateway_id = "gw1";
};

inline HandleResult run(ScriptRuntime& rt, const std::string& command, const Call& call = {}) {
  const CommandSpec* spec = rt.find(command);
  if (spec == nullptr) {
    ADD_FAILURE() << "no command " << command;
    return {};
  }
  boost::json::value data = boost::json::parse(call.data_json);
  HandleInput in{.command = spec->command,
                 .trace_id = call.trace_id,
                 .user_id = call.user_id,
                 .user_name = call.user_name,
                 .conn_id = call.conn_id,
                 .gateway_id = call.gateway_id,
                 .data = &data};
  return rt.handle(*spec, in);
}

inline HandleResult run_data(ScriptRuntime& rt, const std::string& command,
                             const std::string& data_json) {
  Call c;
  c.data_json = data_json;
  return run(rt, command, c);
}

inline const char* action_name(HandleResult::Action a) {
  switch (a) {
    case HandleResult::Action::forward:
      return "forward";
    case HandleResult::Action::reply:
      return "reply";
    case HandleResult::Action::error:
      return "error";
  }
  return "?";
}

}  // namespace wsgw::script::test
