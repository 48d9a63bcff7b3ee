#include "engine/script/script_runtime.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <lua.hpp>
#include <sstream>
#include <unordered_map>

#include "engine/script/ctx.hpp"
#include "engine/script/json_lua.hpp"
#include "engine/script/sandbox.hpp"
#include "engine/script/source_index.hpp"
#include "engine/script/spec_reader.hpp"
#include "engine/script/vm.hpp"

namespace wsgw::script {
namespace {

constexpr std::uintmax_t kMaxScriptBytes = 1024 * 1024;

struct SvHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

// The error value at `idx` as text that starts with the script's name:
// Lua prefixes "name.lua:LINE:" when it knows the line (error("x", 0) and
// non-string errors do not get one).
std::string describe_error(lua_State* L, int idx, const std::string& name) {
  std::string msg;
  if (lua_type(L, idx) == LUA_TSTRING) {
    std::size_t n = 0;
    const char* s = lua_tolstring(L, idx, &n);
    msg.assign(s, n);
  } else {
    msg = std::string("error value is a ") + luaL_typename(L, idx) + ", not a string";
  }
  if (msg.compare(0, name.size() + 1, name + ":") != 0) msg = name + ": " + msg;
  return msg;
}

std::string stop_text(const Vm& vm, Stop stop, const std::string& name) {
  std::string where = vm.stop_where();
  return (where.empty() ? name : where) + ": " + std::string(stop_reason(stop));
}

void set_error(HandleResult& r, std::string error) {
  r.action = HandleResult::Action::error;
  r.error = std::move(error);
  r.groups.clear();
  r.data_json.reset();
}

bool read_file(const std::filesystem::path& p, std::string& out, std::string& why) {
  std::error_code ec;
  auto size = std::filesystem::file_size(p, ec);
  if (ec) {
    why = ec.message();
    return false;
  }
  if (size > kMaxScriptBytes) {
    why = "the file is over 1 MiB";
    return false;
  }
  std::ifstream f(p, std::ios::binary);
  if (!f) {
    why = "cannot open the file";
    return false;
  }
  out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  if (f.bad()) {
    why = "cannot read the file";
    return false;
  }
  return true;
}

}  // namespace

struct ScriptRuntime::Impl {
  ScriptLimits limits;
  std::string prefix;
  std::uint32_t default_timeout_ms = 0;
  std::unique_ptr<Vm> vm;
  CtxHost host;
  std::vector<CommandSpec> commands;
  std::vector<std::string> names;  // file name per command, for errors
  std::vector<int> handle_refs;    // registry ref per command; LUA_NOREF without handle
  std::unordered_map<std::string_view, std::size_t, SvHash, std::equal_to<>> by_command;
  int call_ref = LUA_NOREF;
  int load_ref = LUA_NOREF;

  struct LoadFrame {
    const std::string* source = nullptr;
    std::string chunkname;
    const SourceIndex* index = nullptr;
    SpecRules rules;
    CommandSpec spec;
    SpecError spec_error;
    bool ok = false;
    int handle_ref = LUA_NOREF;
  };

  struct CallFrame {
    CtxHost* host;
    int handle_ref;
  };

  static int init(lua_State* L);
  static int load_trampoline(lua_State* L);
  static int call_trampoline(lua_State* L);
  bool load_file(const std::filesystem::path& path, std::vector<std::string>& errors);
};

int ScriptRuntime::Impl::init(lua_State* L) {
  auto* impl = static_cast<Impl*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  open_json(L);
  open_sandbox(L);
  open_ctx(L);
  // Entry points kept in the registry: pushing them per call allocates
  // nothing, unlike lua_cpcall, which makes a closure each time.
  lua_pushcfunction(L, &Impl::load_trampoline);
  impl->load_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushcfunction(L, &Impl::call_trampoline);
  impl->call_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

int ScriptRuntime::Impl::load_trampoline(lua_State* L) {
  auto* f = static_cast<LoadFrame*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  // Mode "t": text only. Bytecode could break the VM's invariants.
  if (luaL_loadbufferx(L, f->source->data(), f->source->size(), f->chunkname.c_str(), "t") != 0) {
    return lua_error(L);
  }
  push_sandbox_env(L);
  lua_setfenv(L, 1);
  lua_call(L, 0, 1);
  if (!read_spec(L, 1, *f->index, f->rules, f->spec, f->spec_error)) return 0;
  if (f->spec.has_handle) {
    lua_pushliteral(L, "handle");
    lua_rawget(L, 1);
    f->handle_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  f->ok = true;
  return 0;
}

int ScriptRuntime::Impl::call_trampoline(lua_State* L) {
  auto* f = static_cast<CallFrame*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, f->handle_ref);
  push_ctx(L, f->host);
  lua_call(L, 1, 0);
  return 0;
}

bool ScriptRuntime::Impl::load_file(const std::filesystem::path& path,
                                    std::vector<std::string>& errors) {
  std::string name = path.filename().string();
  std::string source, why;
  if (!read_file(path, source, why)) {
    errors.push_back(name + ":1: " + why);
    return false;
  }
  if (!source.empty() && source[0] == '\x1b') {
    errors.push_back(name + ":1: precompiled bytecode is not allowed; deploy the source");
    return false;
  }
  SourceIndex index(source);
  LoadFrame f;
  f.source = &source;
  f.chunkname = "@" + name;
  f.index = &index;
  f.rules = {.subject_prefix = prefix, .default_timeout_ms = default_timeout_ms};
  lua_State* L = vm->state();
  lua_settop(L, 0);
  vm->begin_run();
  lua_rawgeti(L, LUA_REGISTRYINDEX, load_ref);
  lua_pushlightuserdata(L, &f);
  int status = lua_pcall(L, 1, 0, 0);
  Stop stop = vm->end_run();
  if (stop != Stop::none) {
    errors.push_back(stop_text(*vm, stop, name) + " while loading");
  } else if (status != 0) {
    errors.push_back(describe_error(L, -1, name));
  } else if (!f.ok) {
    errors.push_back(name + ":" + std::to_string(f.spec_error.line) + ": " + f.spec_error.reason);
  }
  lua_settop(L, 0);
  if (stop != Stop::none || status != 0 || !f.ok) return false;

  if (auto it = std::find_if(commands.begin(), commands.end(),
                             [&](const CommandSpec& c) { return c.command == f.spec.command; });
      it != commands.end()) {
    errors.push_back(name + ":" + std::to_string(index.line_of({"command"})) + ": command '" +
                     f.spec.command + "' is already defined in " +
                     names[static_cast<std::size_t>(it - commands.begin())]);
    return false;
  }
  f.spec.file = path.string();
  commands.push_back(std::move(f.spec));
  names.push_back(std::move(name));
  handle_refs.push_back(f.handle_ref);
  return true;
}

ScriptRuntime::ScriptRuntime() : impl_(std::make_unique<Impl>()) {}
ScriptRuntime::~ScriptRuntime() = default;

std::unique_ptr<ScriptRuntime> ScriptRuntime::load(const std::string& dir,
                                                   const ScriptLimits& limits,
                                                   std::string_view subject_prefix,
                                                   std::uint32_t default_timeout_ms,
                                                   std::vector<std::string>& errors) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto& p = it->path();
    std::string name = p.filename().string();
    std::error_code type_ec;
    if (name.empty() || name[0] == '.' || p.extension() != ".lua" ||
        !std::filesystem::is_regular_file(p, type_ec)) {
      continue;
    }
    files.push_back(p);
  }
  if (ec) {
    errors.push_back(dir + ": cannot read the directory: " + ec.message());
    return nullptr;
  }
  std::sort(files.begin(), files.end(),
            [](const auto& a, const auto& b) { return a.filename() < b.filename(); });

  std::unique_ptr<ScriptRuntime> rt(new ScriptRuntime());
  Impl& impl = *rt->impl_;
  impl.limits = limits;
  impl.prefix = std::string(subject_prefix);
  impl.default_timeout_ms = default_timeout_ms;
  impl.host.subject_prefix = impl.prefix;
  impl.vm = Vm::create({.memory_bytes = limits.memory_bytes,
                        .instructions = limits.instructions,
                        .time_ms = limits.time_ms});
  if (impl.vm == nullptr || lua_cpcall(impl.vm->state(), &Impl::init, &impl) != 0) {
    errors.push_back(dir + ": cannot create a Lua state within " +
                     std::to_string(limits.memory_bytes) + " bytes");
    return nullptr;
  }
  bool all_ok = true;
  for (const auto& f : files) all_ok = impl.load_file(f, errors) && all_ok;
  if (!all_ok) return nullptr;
  // Built last: the views point into commands, which no longer moves.
  for (std::size_t i = 0; i < impl.commands.size(); ++i) {
    impl.by_command.emplace(impl.commands[i].command, i);
  }
  return rt;
}

const std::vector<CommandSpec>& ScriptRuntime::commands() const {
  return impl_->commands;
}

const CommandSpec* ScriptRuntime::find(std::string_view command) const {
  auto it = impl_->by_command.find(command);
  return it == impl_->by_command.end() ? nullptr : &impl_->commands[it->second];
}

std::size_t ScriptRuntime::memory_bytes() const {
  return impl_->vm->memory_bytes();
}

RunCost ScriptRuntime::last_run_cost() const {
  return {.units = impl_->vm->units_used(), .bytes_allocated = impl_->vm->bytes_allocated()};
}

HandleResult ScriptRuntime::handle(const CommandSpec& spec, const HandleInput& in) noexcept {
  HandleResult r;
  Impl& impl = *impl_;
  try {
    const CommandSpec* first = impl.commands.data();
    if (&spec < first || &spec >= first + impl.commands.size()) {
      set_error(r, "command " + spec.command + " is not from this runtime");
      return r;
    }
    auto i = static_cast<std::size_t>(&spec - first);
    if (!spec.has_handle) {
      set_error(r, impl.names[i] + ": no handle function");
      return r;
    }
    r.subject = spec.route.subject;
    r.mode = spec.route.mode;
    r.timeout_ms = spec.route.timeout_ms;
    r.ack = spec.route.ack;

    static const boost::json::value kNoData;
    HandleInput input = in;
    if (input.data == nullptr) input.data = &kNoData;  // a caller's slip is not a crash
    CallState call{.spec = &spec, .in = &input, .out = &r};
    Impl::CallFrame frame{.host = &impl.host, .handle_ref = impl.handle_refs[i]};
    lua_State* L = impl.vm->state();
    lua_settop(L, 0);
    ++impl.host.generation;
    impl.host.call = &call;
    impl.vm->begin_run();
    lua_rawgeti(L, LUA_REGISTRYINDEX, impl.call_ref);
    lua_pushlightuserdata(L, &frame);
    int status = lua_pcall(L, 1, 0, 0);
    impl.host.call = nullptr;  // from here on, any ctx kept by the script is stale
    Stop stop = impl.vm->end_run();
    if (stop != Stop::none) {
      set_error(r, stop_text(*impl.vm, stop, impl.names[i]));
    } else if (status != 0) {
      set_error(r, describe_error(L, -1, impl.names[i]));
    } else if (spec.local && !call.answered && !call.forwarded) {
      set_error(r, impl.names[i] + ": local command did not reply");
    }
    lua_settop(L, 0);
  } catch (const std::exception& e) {
    impl.host.call = nullptr;
    set_error(r, std::string("script runtime: ") + e.what());
  }
  return r;
}

}  // namespace wsgw::script
