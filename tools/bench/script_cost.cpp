// wsgw-script-cost: what a command costs in the script layer, per call, on
// one core: a declarative route (looked up, never enters Lua) against
// handle(ctx) calls of the sample scripts. A benchmark, not a test: it prints
// one BENCH line per case; docs/BENCHMARKS.md records a run.
//
//   wsgw-script-cost [--dir scripts/commands] [--calls 200000]
#include <boost/json/parse.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/script/script_runtime.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Case {
  const char* name;
  const char* command;
  const char* data;
  bool call_handle;
};

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "scripts/commands";
  long calls = 200000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--dir") dir = argv[i + 1];
    else if (a == "--calls") calls = std::strtol(argv[i + 1], nullptr, 10);
    else {
      std::fprintf(stderr, "usage: wsgw-script-cost [--dir DIR] [--calls N]\n");
      return 2;
    }
  }
  if (calls <= 0 || calls > 100000000) {
    std::fprintf(stderr, "--calls must be 1..100000000\n");
    return 2;
  }
  std::vector<std::string> errors;
  auto rt = wsgw::script::ScriptRuntime::load(dir, {}, "wsgw", 5000, errors);
  if (!rt) {
    for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.c_str());
    return 1;
  }
  const Case cases[] = {
      {"declarative_route", "ECHO", R"({"text":"hi"})", false},
      {"handle_local_reply", "WHOAMI", "null", true},
      {"handle_validate_forward", "NOTIFY_ME", R"({"delayMs":500,"text":"x"})", true},
      {"handle_join_group", "JOIN_ROOM", R"({"room":"r1"})", true},
  };
  for (const Case& c : cases) {
    boost::json::value data = boost::json::parse(c.data);
    wsgw::script::HandleInput in;
    in.command = c.command;
    in.trace_id = "t-1";
    in.user_id = "alice";
    in.user_name = "Alice";
    in.conn_id = "gw.1";
    in.gateway_id = "gw";
    in.data = &data;
    long failures = 0;
    auto start = Clock::now();
    for (long i = 0; i < calls; ++i) {
      // The per-message work of the worker's dispatch: look the command up,
      // and enter Lua only when the script has a handle.
      const wsgw::script::CommandSpec* spec = rt->find(c.command);
      if (spec == nullptr) {
        ++failures;
        continue;
      }
      if (c.call_handle && spec->has_handle) {
        auto r = rt->handle(*spec, in);
        if (r.action == wsgw::script::HandleResult::Action::error) ++failures;
      }
    }
    double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count() / calls;
    std::printf(
        "BENCH {\"scenario\":\"script_cost\",\"case\":\"%s\",\"command\":\"%s\",\"calls\":%ld,"
        "\"ns_per_call\":%.1f,\"failures\":%ld,\"lua_memory_bytes\":%zu}\n",
        c.name, c.command, calls, ns, failures, rt->memory_bytes());
    if (failures != 0) return 1;
  }
  return 0;
}
