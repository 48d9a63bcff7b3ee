#include "engine/server/metrics_collector.hpp"

#include <string>

namespace wsgw::server {

void collect_metrics(Gateway& gateway, const bus::Bus& bus, admin::MetricsWriter& m) {
  const SharedState& shared = gateway.shared();
  bus::BusStats bs = bus.stats();
  double connections = static_cast<double>(shared.connections.load(std::memory_order_relaxed));
  // A user's connections all live on one worker and that worker holds the
  // user's subscription: the subscription count is the distinct user count.
  double users = static_cast<double>(bs.user_subscriptions);
  m.gauge("wsgw_connections", "Open client connections", connections);
  m.gauge("wsgw_users", "Distinct users with at least one open connection", users);
  m.gauge("wsgw_connections_per_user_avg", "Average open connections per user",
          users > 0 ? connections / users : 0);
  m.gauge("wsgw_groups", "Groups with at least one member on this gateway",
          static_cast<double>(bs.group_subscriptions));
  m.gauge("wsgw_nats_connected", "1 while the NATS connection is up", bs.connected ? 1 : 0);
  m.gauge("wsgw_nats_subscriptions", "NATS subscriptions held for pushes (users + groups + 2)",
          static_cast<double>(bs.push_subscriptions));
  m.counter("wsgw_nats_reconnects_total", "NATS reconnections", static_cast<double>(bs.reconnects));
  m.counter("wsgw_nats_slow_consumer_events_total",
            "Times NATS reported this gateway too slow to take its messages (messages dropped)",
            static_cast<double>(bs.dropped_messages));
  m.gauge("wsgw_ready", "1 while the gateway accepts connections", shared.accepting.load() ? 1 : 0);

  const auto& rs = gateway.router().stats();
  m.counter("wsgw_pushes_total", "Valid pushes received from NATS", static_cast<double>(rs.pushes.load()));
  m.counter("wsgw_pushes_invalid_total", "Pushes dropped because their payload was invalid",
            static_cast<double>(rs.bad_pushes.load()));
  m.counter("wsgw_control_invalid_total", "Control messages dropped because they were invalid",
            static_cast<double>(rs.bad_controls.load()));
  m.counter("wsgw_script_reloads_total", "Script sets loaded and swapped in",
            static_cast<double>(shared.script_reloads.load()));
  m.counter("wsgw_script_reload_failures_total", "Script reloads refused (the old set stayed live)",
            static_cast<double>(shared.script_reload_failures.load()));

  std::uint64_t delivered = 0, requests = 0, publishes = 0, replies = 0, timeouts = 0,
                no_responders = 0, late = 0, bus_failures = 0, script_calls = 0, script_errors = 0,
                rate_limited = 0;
  for (auto& w : gateway.workers()) {
    const auto& st = w->stats();
    delivered += st.delivered.load(std::memory_order_relaxed);
    requests += st.requests.load(std::memory_order_relaxed);
    publishes += st.publishes.load(std::memory_order_relaxed);
    replies += st.replies.load(std::memory_order_relaxed);
    timeouts += st.timeouts.load(std::memory_order_relaxed);
    no_responders += st.no_responders.load(std::memory_order_relaxed);
    late += st.late_replies.load(std::memory_order_relaxed);
    bus_failures += st.bus_failures.load(std::memory_order_relaxed);
    script_calls += st.script_calls.load(std::memory_order_relaxed);
    script_errors += st.script_errors.load(std::memory_order_relaxed);
    rate_limited += st.rate_limited.load(std::memory_order_relaxed);
  }
  m.counter("wsgw_push_deliveries_total", "Push frames queued to client connections",
            static_cast<double>(delivered));
  const char* kUpstream = "wsgw_upstream_total";
  const char* kUpstreamHelp = "Commands sent to services, by outcome";
  m.counter(kUpstream, kUpstreamHelp, static_cast<double>(requests), {{"outcome", "request_sent"}});
  m.counter(kUpstream, kUpstreamHelp, static_cast<double>(publishes), {{"outcome", "published"}});
  m.counter(kUpstream, kUpstreamHelp, static_cast<double>(replies), {{"outcome", "ok"}});
  m.counter(kUpstream, kUpstreamHelp, static_cast<double>(timeouts), {{"outcome", "timeout"}});
  m.counter(kUpstream, kUpstreamHelp, static_cast<double>(no_responders),
            {{"outcome", "no_responders"}});
  m.counter(kUpstream, kUpstreamHelp, static_cast<double>(bus_failures),
            {{"outcome", "unavailable"}});
  m.counter(kUpstream, kUpstreamHelp, static_cast<double>(late), {{"outcome", "late_reply"}});
  m.counter("wsgw_script_calls_total", "Script handle(ctx) calls", static_cast<double>(script_calls));
  m.counter("wsgw_script_errors_total", "Script handle(ctx) calls that failed (answered 520)",
            static_cast<double>(script_errors));
  m.counter("wsgw_rate_limited_total", "Commands refused by a script's rate limit (429)",
            static_cast<double>(rate_limited));
}

}  // namespace wsgw::server
