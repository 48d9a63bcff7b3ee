// What /metrics reports: the gateway's counters and gauges in Prometheus
// form. Runs on the admin thread; reads only atomics and the bus's stats.
#pragma once

#include "engine/admin/metrics.hpp"
#include "engine/bus/bus.hpp"
#include "engine/server/gateway.hpp"

namespace wsgw::server {

void collect_metrics(Gateway& gateway, const bus::Bus& bus, admin::MetricsWriter& m);

}  // namespace wsgw::server
