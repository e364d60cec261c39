// Internal: the metrics endpoint ([metrics] http) and what it reports.
#pragma once

#include "instance.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace coserve::detail {

// What the endpoint serves; both are called on `executor` (the server's
// control executor, where reloads change the instance list).
struct MetricsSource {
    boost::asio::any_io_executor executor;
    std::function<std::string()> metrics;    // GET /metrics
    std::function<std::string()> instances;  // GET /instances
};

// The metrics endpoint as an instance named "metrics" ([metrics] http and
// its limits), whose service answers GET /metrics, /healthz and /instances:
// its listeners run the framework's one accept loop, with its permits (the
// process's max_connections included), per-source limits, EMFILE pause,
// idle sweep and shutdown. `source` must outlive the instance's sessions.
InstanceConfig metrics_instance_config(const MetricsConfig& config, const MetricsSource& source);

// The Prometheus text exposition of every instance's counters, the services'
// own counters, and the process's uptime, open descriptors and memory.
// `endpoint` (the metrics instance, may be null) is listed after the others.
std::string metrics_text(const std::vector<std::unique_ptr<Instance>>& instances, const Instance* endpoint,
                         std::chrono::steady_clock::time_point started);
std::string instances_json(const std::vector<std::unique_ptr<Instance>>& instances);

}  // namespace coserve::detail
