// Checks the table a script returned and turns it into a CommandSpec.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/script/script_runtime.hpp"
#include "engine/script/source_index.hpp"

struct lua_State;

namespace wsgw::script {

struct SpecError {
  int line = 0;
  std::string reason;
};

struct SpecRules {
  std::string_view subject_prefix;
  std::uint32_t default_timeout_ms = 5000;
};

// Reads the value at `idx` (protected mode). Raw access only, so no
// metamethod of the script runs. Fills `spec` (command, description, route,
// local, limits, has_handle; not file) or sets `err` and returns false.
bool read_spec(lua_State* L, int idx, const SourceIndex& src, const SpecRules& rules,
               CommandSpec& spec, SpecError& err);

// [A-Za-z0-9_.:-]{1,64}, the protocol's rule for a command name.
bool valid_command_name(std::string_view command) noexcept;

}  // namespace wsgw::script
