// The Server: binding, running the loop, signals and graceful shutdown.
#include <coserve/server.hpp>

#include <coserve/log.hpp>

#include "listeners.hpp"
#include "metrics.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/strand.hpp>

#include <sys/resource.h>

#include <optional>
#include <thread>

namespace coserve {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using detail::Instance;

struct Server::Impl {
    Impl(Config c, ServerOptions o) : config(std::move(c)), options(o), ioc(std::in_place, config.server.threads) {
        state = std::make_unique<detail::ServerState>(*ioc, config.server);
    }

    ~Impl() {
        // Nothing that refers to the io_context's services (sockets, timers,
        // strands) may outlive it. After a normal run() nothing is pending;
        // otherwise let the remaining sessions finish their cancellation
        // first, so no coroutine frame is destroyed half-way.
        signals.reset();
        work.reset();
        for (auto& inst : instances) {
            boost::system::error_code ignored;
            for (auto& a : inst->acceptors) a.close(ignored);
            for (auto& u : inst->udp_sockets) u.close(ignored);
            if (inst->sweep_timer) inst->sweep_timer->cancel();
            inst->cancel_sessions([](const detail::SessionSlot&) { return true; }, "closed at destruction", true);
        }
        if (started && !ioc->stopped()) {
            ioc->restart();
            ioc->run_for(std::chrono::seconds(2));
        }
        for (auto& inst : instances) {
            inst->acceptors.clear();
            inst->udp_sockets.clear();
            inst->sweep_timer.reset();
        }
        metrics_acceptors.clear();
        state->control = {};
        ioc.reset();
    }

    void bind_all();
    void begin_shutdown();
    void watch_signals();
    asio::awaitable<void> watchdog();
    std::string status() const;
    asio::awaitable<void> drain();
    long long open_sessions() const { return state->connections.load(); }

    Config config;
    ServerOptions options;
    std::optional<asio::io_context> ioc;
    std::unique_ptr<detail::ServerState> state;
    std::vector<std::unique_ptr<Instance>> instances;
    std::optional<asio::signal_set> signals;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::vector<tcp::acceptor> metrics_acceptors;
    std::vector<tcp::endpoint> metrics_bound;
    detail::MetricsSource metrics_source;
    std::chrono::steady_clock::time_point started_at = std::chrono::steady_clock::now();
    bool started = false;
};

namespace {

template <class Protocol>
typename Protocol::endpoint to_asio(const Endpoint& e, bool v6) {
    if (e.any) return {v6 ? Protocol::v6() : Protocol::v4(), e.port};
    return {e.address, e.port};
}

[[noreturn]] void bind_failed(const Instance& inst, const char* proto, const Endpoint& e, const char* step,
                              const boost::system::error_code& ec) {
    std::string hint;
    if (ec == boost::asio::error::access_denied && e.port < 1024)
        hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
    throw BindError("[" + inst.config.name + "] " + proto + " " + e.to_string() + ": cannot " + step + ": " +
                    ec.message() + hint);
}

// Opens a socket for `e`: a wildcard means [::] accepting IPv4 too, or
// 0.0.0.0 where the host has no IPv6.
template <class Socket, class Protocol>
void open_for(Socket& s, const Instance& inst, const char* proto, const Endpoint& e, typename Protocol::endpoint& ep) {
    boost::system::error_code ec;
    ep = to_asio<Protocol>(e, true);
    s.open(ep.protocol(), ec);
    if (ec && e.any) {
        ep = to_asio<Protocol>(e, false);
        s.open(ep.protocol(), ec);
    }
    if (ec) bind_failed(inst, proto, e, "open a socket", ec);
    if (ep.address().is_v6()) s.set_option(asio::ip::v6_only(!e.any), ec);
}

}  // namespace

void Server::Impl::bind_all() {
    for (const auto& ic : config.instances) {
        if (!ic.options.enabled) continue;
        auto inst = std::make_unique<Instance>(ic, *state);
        for (const auto& e : ic.options.tcp) {
            tcp::acceptor& a = inst->acceptors.emplace_back(state->control);
            tcp::endpoint ep;
            open_for<tcp::acceptor, tcp>(a, *inst, "tcp", e, ep);
            boost::system::error_code ec;
            a.set_option(tcp::acceptor::reuse_address(true), ec);
            if (a.bind(ep, ec); ec) bind_failed(*inst, "tcp", e, "bind", ec);
            if (a.listen(asio::socket_base::max_listen_connections, ec); ec) bind_failed(*inst, "tcp", e, "listen", ec);
            inst->tcp_bound.push_back(a.local_endpoint());
        }
        for (const auto& e : ic.options.udp) {
            udp::socket& s = inst->udp_sockets.emplace_back(state->connection_executor());
            udp::endpoint ep;
            open_for<udp::socket, udp>(s, *inst, "udp", e, ep);
            boost::system::error_code ec;
            if (s.bind(ep, ec); ec) bind_failed(*inst, "udp", e, "bind", ec);
            inst->udp_bound.push_back(s.local_endpoint());
        }
        instances.push_back(std::move(inst));
    }
    for (const auto& e : config.metrics.http) {
        tcp::acceptor& a = metrics_acceptors.emplace_back(state->control);
        tcp::endpoint ep;
        boost::system::error_code ec;
        ep = e.any ? tcp::endpoint(tcp::v6(), e.port) : tcp::endpoint(e.address, e.port);
        a.open(ep.protocol(), ec);
        if (ec && e.any) {
            ep = tcp::endpoint(tcp::v4(), e.port);
            a.open(ep.protocol(), ec);
        }
        if (!ec && ep.address().is_v6()) a.set_option(asio::ip::v6_only(!e.any), ec);
        if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec) a.bind(ep, ec);
        if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) throw BindError("[metrics] http " + e.to_string() + ": cannot bind: " + ec.message());
        metrics_bound.push_back(a.local_endpoint());
    }
}

void Server::Impl::begin_shutdown() {
    if (state->stopping.exchange(true)) return;
    if (options.notify) options.notify("STOPPING=1\nSTATUS=stopping: " + std::to_string(open_sessions()) + " connection(s) open");
    COSERVE_LOG(Severity::info, "", "") << "shutting down: " << open_sessions()
                                        << " connection(s) open, waiting up to "
                                        << format_duration(config.server.shutdown_grace);
    if (signals) signals->cancel();
    for (auto& a : metrics_acceptors) {
        boost::system::error_code ignored;
        a.close(ignored);
    }
    for (auto& inst : instances) {
        for (auto& a : inst->acceptors) {
            boost::system::error_code ignored;
            a.close(ignored);
        }
        if (inst->sweep_timer) inst->sweep_timer->cancel();
        for (auto& s : inst->udp_sockets)
            asio::post(s.get_executor(), [&s] {
                boost::system::error_code ignored;
                s.close(ignored);
            });
    }
    work.reset();
    asio::co_spawn(state->control, drain(), [](std::exception_ptr e) { detail::log_failure("", "shutdown", e); });
}

asio::awaitable<void> Server::Impl::watchdog() {
    asio::steady_timer timer(state->control);
    while (!state->stopping) {
        options.notify("WATCHDOG=1");
        timer.expires_after(options.watchdog_interval);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

asio::awaitable<void> Server::Impl::drain() {
    using namespace std::chrono_literals;
    asio::steady_timer timer(state->control);
    const auto grace_end = std::chrono::steady_clock::now() + config.server.shutdown_grace;
    while (open_sessions() > 0 && std::chrono::steady_clock::now() < grace_end) {
        timer.expires_after(20ms);
        co_await timer.async_wait(asio::use_awaitable);
    }
    if (open_sessions() == 0) co_return;
    COSERVE_LOG(Severity::info, "", "") << "grace period over: closing " << open_sessions() << " connection(s)";
    for (auto& inst : instances)
        inst->cancel_sessions([](const detail::SessionSlot&) { return true; }, "closed at shutdown", true);
    const auto hard_end = std::chrono::steady_clock::now() + 2s;
    while (open_sessions() > 0 && std::chrono::steady_clock::now() < hard_end) {
        timer.expires_after(10ms);
        co_await timer.async_wait(asio::use_awaitable);
    }
    if (open_sessions() > 0) {
        COSERVE_LOG(Severity::error, "", "") << open_sessions() << " connection(s) did not end when cancelled; stopping";
        ioc->stop();
    }
}

Server::Server(Config config, ServerOptions options) : impl_(std::make_unique<Impl>(std::move(config), options)) {}

Server::~Server() = default;

void Server::start() {
    if (impl_->started) throw std::logic_error("Server::start called twice");
    try {
        impl_->bind_all();
    } catch (...) {
        impl_->instances.clear();  // closes whatever was bound: all or nothing
        throw;
    }
    impl_->started = true;
    impl_->work.emplace(impl_->ioc->get_executor());
    for (auto& inst : impl_->instances) {
        std::string tcp_list, udp_list;
        for (auto& ep : inst->tcp_bound) tcp_list += (tcp_list.empty() ? "" : ", ") + log::format_endpoint(ep);
        for (auto& ep : inst->udp_bound) udp_list += (udp_list.empty() ? "" : ", ") + log::format_endpoint(ep);
        COSERVE_LOG(Severity::info, inst->config.name, "")
            << "service " << inst->config.service_type << ": tcp " << (tcp_list.empty() ? "-" : tcp_list) << "; udp "
            << (udp_list.empty() ? "-" : udp_list);
        detail::start_tcp(*inst);
        detail::start_udp(*inst);
    }
    impl_->metrics_source.metrics = [impl = impl_.get()] { return detail::metrics_text(impl->instances, impl->started_at); };
    impl_->metrics_source.instances = [impl = impl_.get()] { return detail::instances_json(impl->instances); };
    for (std::size_t i = 0; i < impl_->metrics_acceptors.size(); ++i) {
        COSERVE_LOG(Severity::info, "metrics", "") << "http " << log::format_endpoint(impl_->metrics_bound[i])
                                                   << ": GET /metrics, /healthz, /instances";
        detail::start_metrics(impl_->metrics_acceptors[i], impl_->metrics_source);
    }
    if (impl_->options.notify && impl_->options.watchdog_interval > Duration::zero())
        asio::co_spawn(impl_->state->control, impl_->watchdog(), [](std::exception_ptr e) { detail::log_failure("", "watchdog", e); });
    if (impl_->options.handle_signals) {
        impl_->signals.emplace(impl_->state->control, SIGINT, SIGTERM);
        impl_->signals->add(SIGHUP);
        impl_->signals->add(SIGUSR1);
        impl_->watch_signals();
    }
}

void Server::Impl::watch_signals() {
    signals->async_wait([this](boost::system::error_code ec, int signo) {
        if (ec) return;
        if (signo == SIGHUP) {
            if (options.reopen_logs) options.reopen_logs();
            COSERVE_LOG(Severity::info, "", "") << "received SIGHUP: log reopened";
        } else if (signo == SIGUSR1) {
            COSERVE_LOG(Severity::info, "", "") << "status: " << open_sessions() << " connection(s) open" << status();
        } else {
            COSERVE_LOG(Severity::info, "", "") << "received " << (signo == SIGINT ? "SIGINT" : "SIGTERM");
            begin_shutdown();
            return;
        }
        watch_signals();
    });
}

void Server::run() {
    if (!impl_->started) throw std::logic_error("Server::run before start");
    std::vector<std::thread> extra;
    for (int i = 1; i < impl_->config.server.threads; ++i) extra.emplace_back([this] { impl_->ioc->run(); });
    impl_->ioc->run();
    for (auto& t : extra) t.join();
    COSERVE_LOG(Severity::info, "", "") << "stopped";
}

void Server::stop() {
    asio::post(impl_->state->control, [impl = impl_.get()] { impl->begin_shutdown(); });
}

std::vector<tcp::endpoint> Server::tcp_endpoints(std::string_view instance) const {
    for (auto& inst : impl_->instances)
        if (inst->config.name == instance) return inst->tcp_bound;
    return {};
}

std::vector<udp::endpoint> Server::udp_endpoints(std::string_view instance) const {
    for (auto& inst : impl_->instances)
        if (inst->config.name == instance) return inst->udp_bound;
    return {};
}

std::string Server::Impl::status() const {
    std::string text;
    for (const auto& inst : instances) {
        std::string endpoints;
        for (const auto& ep : inst->tcp_bound) endpoints += " tcp " + log::format_endpoint(ep);
        for (const auto& ep : inst->udp_bound) endpoints += " udp " + log::format_endpoint(ep);
        text += "\n  [" + inst->config.name + "] service " + inst->config.service_type + endpoints + ": " +
                std::to_string(inst->counters.active.load()) + " open, " +
                std::to_string(inst->counters.accepted.load()) + " accepted, " +
                std::to_string(inst->counters.rejected.load()) + " rejected, " +
                std::to_string(inst->counters.datagrams_in.load()) + " datagrams in";
    }
    return text;
}

std::string Server::status() const {
    return impl_->status();
}

std::vector<tcp::endpoint> Server::metrics_endpoints() const {
    return impl_->metrics_bound;
}

long long Server::connections() const noexcept {
    return impl_->open_sessions();
}

long long raise_file_limit() noexcept {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rlimit want = rl;
        want.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
    }
    return rl.rlim_cur == RLIM_INFINITY ? -1 : static_cast<long long>(rl.rlim_cur);
}

}  // namespace coserve
