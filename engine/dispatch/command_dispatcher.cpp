#include "engine/dispatch/command_dispatcher.hpp"

#include <boost/json/serialize.hpp>

#include "engine/dispatch/rate_limits.hpp"
#include "engine/dispatch/reply.hpp"
#include "engine/log/log.hpp"
#include "engine/time/clock.hpp"

namespace wsgw::dispatch {
using protocol::Error;
using session::Session;

CommandDispatcher::CommandDispatcher(std::string gateway_id, Upstream& upstream,
                                     delivery::Groups& groups, stats::CommandCounters& counters,
                                     std::shared_ptr<const routing::RouteTable> routes)
    : gateway_id_(std::move(gateway_id)),
      upstream_(upstream),
      groups_(groups),
      counters_(counters),
      routes_(std::move(routes)) {
  add_engine_command("HEALTH", health_);
}

void CommandDispatcher::add_engine_command(std::string name, EngineCommand& command) {
  engine_commands_.emplace_back(std::move(name), &command);
}

void CommandDispatcher::set_routes(std::shared_ptr<const routing::RouteTable> routes) {
  routes_ = std::move(routes);
}

void CommandDispatcher::swap_scripts(std::shared_ptr<script::ScriptRuntime>& scripts) {
  scripts_.swap(scripts);
}

void CommandDispatcher::reply(Session& s, std::string_view command, std::string_view text) {
  dispatch::reply(s, counters_, command, text);
}

void CommandDispatcher::on_text(Session& s, std::string_view text) {
  protocol::ClientMessage msg;
  std::string detail;
  Error e = protocol::parse_client_message(text, msg, detail);
  if (e != Error::ok) {
    WSGW_LOG(debug, "bad_message").kv("conn", s.id()).kv("traceId", msg.trace_id).kv("detail", detail);
    counters_.add_in("_invalid");
    reply(s, "_invalid", protocol::encode_error(msg.command, msg.trace_id, e, detail));
    return;
  }
  for (auto& [name, command] : engine_commands_) {
    if (msg.command == name) {
      counters_.add_in(name);
      return command->handle(s, msg);
    }
  }
  // Scripts first: a command ships by dropping a file.
  if (const script::CommandSpec* spec = scripts_ ? scripts_->find(msg.command) : nullptr) {
    counters_.add_in(msg.command);
    return run_script_command(s, *spec, msg);
  }
  if (const routing::Route* route = routes_ ? routes_->find(msg.command) : nullptr) {
    counters_.add_in(msg.command);
    return upstream_.forward(s, *route, msg);
  }
  WSGW_LOG(debug, "unknown_command").kv("conn", s.id()).kv("traceId", msg.trace_id).kv("command", msg.command);
  // Unknown names are not counted one by one: a client could invent any number.
  counters_.add_in("_unknown");
  reply(s, "_unknown", protocol::encode_error(msg.command, msg.trace_id, Error::unknown_command));
}

void CommandDispatcher::run_script_command(Session& s, const script::CommandSpec& spec,
                                           protocol::ClientMessage& msg) {
  if (spec.rate_per_sec > 0 && !take_rate_token(s, spec, time::unix_millis())) {
    ++stats_.rate_limited;
    reply(s, msg.command, protocol::encode_error(msg.command, msg.trace_id, Error::rate_limited));
    return;
  }
  std::string data = msg.data.is_null() ? std::string() : boost::json::serialize(msg.data);
  if (spec.max_data_bytes != 0 && data.size() > spec.max_data_bytes) {
    reply(s, msg.command, protocol::encode_error(msg.command, msg.trace_id, Error::too_large,
                                       "data over " + std::to_string(spec.max_data_bytes) +
                                           " bytes"));
    return;
  }
  // A declarative route never enters Lua.
  if (!spec.has_handle) return upstream_.forward(s, spec.route, msg, &data);

  if (msg.trace_id.empty()) msg.trace_id = upstream_.new_trace_id(s);
  std::string conn_id = s.id();
  script::HandleInput in;
  in.command = msg.command;
  in.trace_id = msg.trace_id;
  in.user_id = s.identity().user_id;
  in.user_name = s.identity().name;
  in.conn_id = conn_id;
  in.gateway_id = gateway_id_;
  in.data = &msg.data;
  ++stats_.script_calls;
  script::HandleResult r = scripts_->handle(spec, in);
  for (const auto& [join, group] : r.groups) {
    if (join) {
      groups_.join(s, group);
    } else {
      groups_.leave(s, group);
    }
  }
  switch (r.action) {
    case script::HandleResult::Action::reply:
      reply(s, msg.command, protocol::encode_message(msg.command, msg.trace_id, r.reply_data_json, r.code,
                                           r.message.empty() && r.code == 0
                                               ? protocol::message_of(Error::ok)
                                               : std::string_view(r.message)));
      return;
    case script::HandleResult::Action::error:
      ++stats_.script_errors;
      WSGW_LOG(warn, "script_error")
          .kv("conn", conn_id)
          .kv("traceId", msg.trace_id)
          .kv("command", msg.command)
          .kv("file", spec.file)
          .kv("error", r.error);
      reply(s, msg.command, protocol::encode_error(msg.command, msg.trace_id, Error::script_error));
      return;
    case script::HandleResult::Action::forward: {
      routing::Route route;
      route.command = spec.command;
      route.subject = r.subject;
      route.mode = r.mode;
      route.timeout_ms = r.timeout_ms != 0 ? r.timeout_ms : spec.route.timeout_ms;
      route.ack = r.ack;
      if (r.data_json) data = std::move(*r.data_json);
      return upstream_.forward(s, route, msg, &data);
    }
  }
}

void CommandDispatcher::Health::handle(Session& s, protocol::ClientMessage& msg) {
  std::string data = "{\"ts\":" + std::to_string(time::unix_millis()) + "}";
  dispatch::reply(s, counters_, "HEALTH",
                  protocol::encode_message("HEALTH", msg.trace_id, data, 0,
                                           protocol::message_of(Error::ok)));
}

}  // namespace wsgw::dispatch
