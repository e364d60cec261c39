// Internal: the Server's state, shared by the files that implement it:
// server.cpp (the facade: start, run, stop), sockets.cpp (binding, sockets
// from the service manager), reload.cpp (a plan applied), shutdown.cpp
// (drain, then stop), signals.cpp (signals, sd_notify, the status text).
#pragma once

#include <coserve/server.hpp>

#include "listeners.hpp"
#include "metrics.hpp"
#include "reload_plan.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace coserve {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using detail::Instance;

// Bound sockets waiting for an instance, as released descriptors, by
// detail::socket_key: freshly bound, from the service manager, or handed
// over by an instance that a reload retires. Closes what nobody took.
struct BoundSockets {
    struct Tcp {
        int fd;
        tcp::endpoint bound;
    };
    struct Udp {
        int fd;
        udp::endpoint bound;
    };
    std::map<std::string, Tcp> tcps;
    std::map<std::string, Udp> udps;

    // `kind`: tcp or tls. Throws BindError.
    void bind_tcp(asio::io_context& ioc, const std::string& instance, std::string_view kind, const Endpoint& e);
    void bind_udp(asio::io_context& ioc, const std::string& instance, const Endpoint& e);
    BoundSockets() = default;
    BoundSockets(const BoundSockets&) = delete;
    ~BoundSockets();
};

// Asio's concurrency hint for each event loop of `config`.
int io_concurrency_hint(const ServerConfig& config);

struct Server::Impl {
    Impl(Config c, ServerHooks o) : config(std::move(c)), options(o), ioc(std::in_place, io_concurrency_hint(config.server)) {
        std::vector<asio::io_context*> all;
        if (config.server.loop_per_thread && config.server.threads > 1) {
            all.push_back(&*ioc);
            for (int i = 1; i < config.server.threads; ++i) {
                auto& loop = *loops.emplace_back(std::make_unique<asio::io_context>(io_concurrency_hint(config.server)));
                asio::steady_timer opens_reactor(loop);  // its descriptors now, not at its first connection
                all.push_back(&loop);
            }
        }
        state = std::make_unique<detail::ServerState>(*ioc, config.server, std::move(all));
        state->on_last_connection = [this] {
            asio::post(state->control, [this] {
                if (drain_timer) drain_timer->cancel();
            });
        };
    }

    ~Impl() {
        // Nothing that refers to the io_context's services (sockets, timers,
        // strands) may outlive it. After a normal run() nothing is pending;
        // otherwise let the remaining sessions finish their cancellation
        // first, so no coroutine frame is destroyed half-way.
        signals.reset();
        work.reset();
        for (auto& inst : retired) instances.push_back(std::move(inst));
        retired.clear();
        if (metrics_endpoint) instances.push_back(std::move(metrics_endpoint));
        for (auto& inst : instances) {
            boost::system::error_code ignored;
            for (auto& a : inst->acceptors) a.close(ignored);
            for (auto& u : inst->udp_sockets) u.close(ignored);
            if (inst->sweep_timer) inst->sweep_timer->cancel();
            inst->cancel_sessions([](const detail::SessionSlot&) { return true; }, "closed at destruction", true);
            if (inst->config.service) inst->config.service->stop();  // a no-op after a drained shutdown
        }
        loop_work.clear();
        if (started && !ioc->stopped()) {
            std::vector<std::thread> others;
            for (auto& l : loops)
                others.emplace_back([l = l.get()] {
                    l->restart();
                    l->run_for(std::chrono::seconds(2));
                });
            ioc->restart();
            ioc->run_for(std::chrono::seconds(2));
            for (auto& t : others) t.join();
        }
        for (auto& inst : instances) {
            inst->acceptors.clear();
            inst->udp_sockets.clear();
            inst->sweep_timer.reset();
        }
        drain_timer.reset();
        // Sessions destroyed with the loops below give back their permits;
        // the last one must not post to the control executor that is gone.
        state->on_last_connection = nullptr;
        state->control = {};
        metrics_source.executor = {};  // a copy of the control strand
        loops.clear();
        ioc.reset();
    }

    void bind_all();
    void adopt_inherited(BoundSockets& pool);
    // The UDP ports this coserved serves: a datagram from one of them is never answered.
    void refresh_udp_ports() {
        state->udp_ports.clear();
        for (const auto& inst : instances)
            for (const auto& ep : inst->udp_bound) state->udp_ports.insert(ep.port());
    }
    // Inherited sockets by configured endpoint ("127.0.0.1:7007"), for reloads.
    std::map<std::string, std::pair<int, tcp::endpoint>> inherited_tcp, inherited_udp;
    std::unique_ptr<Instance> assemble(const InstanceConfig& ic, BoundSockets& pool);
    void reload(Config next);
    void bind_planned(const detail::ReloadPlan& plan, BoundSockets& sockets);
    void retire_planned(const detail::ReloadPlan& plan, BoundSockets& sockets);
    void apply_server_settings(Config next);
    void announce(const Instance& inst) const;
    void launch(Instance& inst);
    void begin_shutdown();
    void watch_signals();
    asio::awaitable<void> watchdog();
    std::string status() const;
    asio::awaitable<void> drain();
    asio::awaitable<void> wait_sessions(Duration limit);
    long long open_sessions() const { return state->connections.load(); }

    Config config;
    ServerHooks options;
    std::optional<asio::io_context> ioc;
    // thread_model = per-thread: the other threads' event loops, each run by
    // one thread (ioc is the first loop, run by Server::run's caller).
    std::vector<std::unique_ptr<asio::io_context>> loops;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> loop_work;
    std::unique_ptr<detail::ServerState> state;
    std::vector<std::unique_ptr<Instance>> instances;  // the running configuration's
    std::vector<std::unique_ptr<Instance>> retired;    // replaced by a reload; their sessions finish
    mutable std::mutex instances_mutex;                // for the accessors called from other threads
    std::optional<asio::signal_set> signals;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    detail::MetricsSource metrics_source;               // what the metrics endpoint serves
    std::unique_ptr<Instance> metrics_endpoint;         // [metrics] http, an instance of its own (null: none)
    std::chrono::steady_clock::time_point started_at = std::chrono::steady_clock::now();
    bool started = false;
    std::optional<asio::steady_timer> drain_timer;  // shutdown's wait for the last session (control executor)
};

}  // namespace coserve
