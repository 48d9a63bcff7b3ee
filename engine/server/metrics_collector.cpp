#include "engine/server/metrics_collector.hpp"

#include <array>
#include <map>
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
  m.counter("wsgw_control_invalid_total", "Control messages refused as malformed (answered 400 when sent as a request)",
            static_cast<double>(rs.bad_controls.load()));
  m.counter("wsgw_script_reloads_total", "Script sets loaded and swapped in",
            static_cast<double>(shared.script_reloads.load()));
  m.counter("wsgw_script_reload_failures_total", "Script reloads refused (the old set stayed live)",
            static_cast<double>(shared.script_reload_failures.load()));

  std::uint64_t delivered = 0, requests = 0, publishes = 0, replies = 0, timeouts = 0,
                no_responders = 0, late = 0, bus_failures = 0, script_calls = 0, script_errors = 0,
                rate_limited = 0;
  for (auto& w : gateway.workers()) {
    delivered += w->delivery().stats().delivered.load(std::memory_order_relaxed);
    const auto& up = w->upstream().stats();
    requests += up.requests.load(std::memory_order_relaxed);
    publishes += up.publishes.load(std::memory_order_relaxed);
    replies += up.replies.load(std::memory_order_relaxed);
    timeouts += up.timeouts.load(std::memory_order_relaxed);
    no_responders += up.no_responders.load(std::memory_order_relaxed);
    late += up.late_replies.load(std::memory_order_relaxed);
    bus_failures += up.bus_failures.load(std::memory_order_relaxed);
    const auto& cmd = w->dispatcher().stats();
    script_calls += cmd.script_calls.load(std::memory_order_relaxed);
    script_errors += cmd.script_errors.load(std::memory_order_relaxed);
    rate_limited += cmd.rate_limited.load(std::memory_order_relaxed);
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

  // Handshakes and their failures.
  m.counter("wsgw_handshakes_total", "WebSocket upgrades accepted",
            static_cast<double>(shared.handshakes.load(std::memory_order_relaxed)));
  for (std::size_t i = 0; i < kHandshakeFailureKinds; ++i) {
    m.counter("wsgw_handshake_failures_total",
              "Handshakes refused or dropped before the upgrade, by reason",
              static_cast<double>(shared.handshake_failures[i].load(std::memory_order_relaxed)),
              {{"reason", std::string(kHandshakeFailureReasons[i])}});
  }

  // Closes by code, connections per user, backlogs, per-command messages.
  using stats::ConnectionStats;
  std::array<std::uint64_t, ConnectionStats::kCloseSlots> closes{};
  std::array<std::uint64_t, ConnectionStats::kUserBuckets> users_by_conns{};
  std::uint64_t inbox_backlog = 0, revalidation_backlog = 0;
  std::int64_t queued_bytes = 0;
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>, std::less<>> per_command;
  admin::Histogram::Snapshot handling;
  for (auto& w : gateway.workers()) {
    const auto& cs = w->connection_stats();
    for (std::size_t i = 0; i < closes.size(); ++i) closes[i] += cs.closes(i);
    for (std::size_t i = 0; i < users_by_conns.size(); ++i) users_by_conns[i] += cs.users_with(i);
    inbox_backlog += w->inbox_backlog();
    revalidation_backlog += w->tokens().revalidation_backlog();
    queued_bytes += w->queued_bytes.load(std::memory_order_relaxed);
    w->commands().for_each([&](std::string_view name, std::uint64_t in, std::uint64_t out) {
      auto& e = per_command[std::string(name)];
      e.first += in;
      e.second += out;
    });
    auto snap = w->handling_time().snapshot();
    if (handling.counts.empty()) {
      handling = std::move(snap);
    } else {
      for (std::size_t i = 0; i < handling.counts.size() && i < snap.counts.size(); ++i)
        handling.counts[i] += snap.counts[i];
      handling.sum += snap.sum;
      handling.count += snap.count;
    }
  }
  for (std::size_t i = 0; i < closes.size(); ++i) {
    std::string code = i < std::size(ConnectionStats::kCountedCloses)
                           ? std::to_string(ConnectionStats::kCountedCloses[i])
                           : std::string("other");
    m.counter("wsgw_closes_total",
              "Connections closed, by WebSocket close code (1006: lost without a close frame)",
              static_cast<double>(closes[i]), {{"code", code}});
  }
  std::size_t max_per_user = 0;
  for (std::size_t i = users_by_conns.size(); i-- > 1;) {
    if (users_by_conns[i] != 0) {
      max_per_user = i;
      break;
    }
  }
  m.gauge("wsgw_connections_per_user_max",
          "Most open connections held by one user (64 means 64 or more)",
          static_cast<double>(max_per_user));
  m.gauge("wsgw_backlog_messages",
          "Messages from NATS handed to workers and not yet handled",
          static_cast<double>(inbox_backlog));
  m.gauge("wsgw_send_queue_bytes", "Bytes queued to clients and not yet written",
          static_cast<double>(queued_bytes < 0 ? 0 : queued_bytes));
  for (const auto& [name, io] : per_command) {
    m.counter("wsgw_messages_in_total",
              "Client messages received, by command (_unknown: no such command; _invalid: not "
              "a valid message)",
              static_cast<double>(io.first), {{"command", name}});
    m.counter("wsgw_messages_out_total", "Messages sent to clients (replies and pushes), by command",
              static_cast<double>(io.second), {{"command", name}});
  }
  if (!handling.counts.empty()) {
    m.histogram("wsgw_nats_handling_seconds",
                "Time from a NATS message reaching the gateway to a worker having handled it "
                "(a push queued to every target, a reply passed on)",
                handling);
  }

  // Tokens.
  const auto& a = shared.auth;
  const char* kinds[] = {"handshake", "refresh", "revalidate"};
  for (std::size_t k = 0; k < 3; ++k) {
    for (std::size_t o = 0; o < std::size(auth::kAuthOutcomes); ++o) {
      m.counter("wsgw_auth_total", "Token checks, by kind and outcome",
                static_cast<double>(a.checks[k][o].load(std::memory_order_relaxed)),
                {{"kind", kinds[k]}, {"outcome", std::string(auth::kAuthOutcomes[o])}});
    }
  }
  const char* kAuthReq = "wsgw_auth_service_requests_total";
  const char* kAuthReqHelp = "Requests to the auth service, by how they ended";
  m.counter(kAuthReq, kAuthReqHelp, static_cast<double>(a.requests_ok.load()), {{"outcome", "ok"}});
  m.counter(kAuthReq, kAuthReqHelp, static_cast<double>(a.requests_timeout.load()), {{"outcome", "timeout"}});
  m.counter(kAuthReq, kAuthReqHelp, static_cast<double>(a.requests_no_responders.load()),
            {{"outcome", "no_responders"}});
  m.counter(kAuthReq, kAuthReqHelp, static_cast<double>(a.requests_unavailable.load()),
            {{"outcome", "unavailable"}});
  m.counter(kAuthReq, kAuthReqHelp, static_cast<double>(a.requests_bad_reply.load()),
            {{"outcome", "bad_reply"}});
  m.counter("wsgw_revocations_total", "wsgw.ctl.revoke messages applied",
            static_cast<double>(a.revocations.load()));
  m.gauge("wsgw_revocation_entries", "Users and token ids currently refused after a revocation",
          static_cast<double>(shared.revocations.size()));
  m.gauge("wsgw_auth_revalidation_backlog",
          "Connections due for re-validation waiting for their turn",
          static_cast<double>(revalidation_backlog));
  m.counter("wsgw_script_errors_total", "Script handle(ctx) calls that failed (answered 520)",
            static_cast<double>(script_errors));
  m.counter("wsgw_rate_limited_total", "Commands refused by a script's rate limit (429)",
            static_cast<double>(rate_limited));
}

}  // namespace wsgw::server
