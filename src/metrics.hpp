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

// What the endpoint serves; both are called on the endpoint's executor.
struct MetricsSource {
    std::function<std::string()> metrics;    // GET /metrics
    std::function<std::string()> instances;  // GET /instances
};

// Serves GET /metrics, /healthz and /instances on a bound acceptor until it is
// closed. `source` must outlive the acceptor's sessions.
void start_metrics(boost::asio::ip::tcp::acceptor& acceptor, const MetricsSource& source);

// The Prometheus text exposition of every instance's counters, the services'
// own counters, and the process's uptime, open descriptors and memory.
std::string metrics_text(const std::vector<std::unique_ptr<Instance>>& instances,
                         std::chrono::steady_clock::time_point started);
std::string instances_json(const std::vector<std::unique_ptr<Instance>>& instances);

}  // namespace coserve::detail
