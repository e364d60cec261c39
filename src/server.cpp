// The Server: binding, running the loop, signals and graceful shutdown.
#include <coserve/server.hpp>

#include <coserve/log.hpp>

#include "listeners.hpp"
#include "metrics.hpp"

#include <boost/asio/deferred.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/strand.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <set>
#include <mutex>
#include <optional>
#include <thread>

namespace coserve {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using detail::Instance;

// One thread: Asio skips the per-descriptor locks of its reactor (every socket
// is used only from the loop's thread); posting from other threads, as
// Server::stop() and reload() do, stays safe. More threads: fully locking.
int io_concurrency_hint(int threads) {
    return threads == 1 ? BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO : threads;
}

// Bound sockets waiting for an instance, as released descriptors: fresh ones,
// or ones an instance gave up in a reload. Closes what nobody took.
struct SocketPool {
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

    static std::string key(const std::string& instance, const Endpoint& e);
    void bind_tcp(asio::io_context& ioc, const std::string& instance, const Endpoint& e);  // throws BindError
    void bind_udp(asio::io_context& ioc, const std::string& instance, const Endpoint& e);
    ~SocketPool();
};

struct Server::Impl {
    Impl(Config c, ServerOptions o) : config(std::move(c)), options(o), ioc(std::in_place, io_concurrency_hint(config.server.threads)) {
        state = std::make_unique<detail::ServerState>(*ioc, config.server);
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
        if (started && !ioc->stopped()) {
            ioc->restart();
            ioc->run_for(std::chrono::seconds(2));
        }
        for (auto& inst : instances) {
            inst->acceptors.clear();
            inst->udp_sockets.clear();
            inst->sweep_timer.reset();
        }
        state->control = {};
        metrics_source.executor = {};  // a copy of the control strand
        ioc.reset();
    }

    void bind_all();
    void adopt_inherited(SocketPool& pool);
    // The UDP ports this coserved serves: a datagram from one of them is never answered.
    void refresh_udp_ports() {
        state->udp_ports.clear();
        for (const auto& inst : instances)
            for (const auto& ep : inst->udp_bound) state->udp_ports.insert(ep.port());
    }
    // Inherited sockets by configured endpoint ("127.0.0.1:7007"), for reloads.
    std::map<std::string, std::pair<int, tcp::endpoint>> inherited_tcp, inherited_udp;
    std::unique_ptr<Instance> assemble(const InstanceConfig& ic, SocketPool& pool);
    void reload(Config next);
    void announce(const Instance& inst) const;
    void launch(Instance& inst);
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
    std::vector<std::unique_ptr<Instance>> instances;  // the running configuration's
    std::vector<std::unique_ptr<Instance>> retired;    // replaced by a reload; their sessions finish
    mutable std::mutex instances_mutex;                // for the accessors called from other threads
    std::optional<asio::signal_set> signals;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    detail::MetricsSource metrics_source;               // what the metrics endpoint serves
    std::unique_ptr<Instance> metrics_endpoint;         // [metrics] http, an instance of its own (null: none)
    std::chrono::steady_clock::time_point started_at = std::chrono::steady_clock::now();
    bool started = false;
};

namespace {

template <class Protocol>
typename Protocol::endpoint to_asio(const Endpoint& e, bool v6) {
    if (e.any) return {v6 ? Protocol::v6() : Protocol::v4(), e.port};
    return {e.address, e.port};
}

[[noreturn]] void bind_failed(const std::string& where, const Endpoint& e, const char* step,
                              const boost::system::error_code& ec) {
    std::string hint;
    if (ec == boost::asio::error::access_denied && e.port < 1024)
        hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
    throw BindError(where + " " + e.to_string() + ": cannot " + step + ": " + ec.message() + hint);
}

// Opens a socket for `e`: a wildcard means [::] accepting IPv4 too, or
// 0.0.0.0 where the host has no IPv6.
template <class Socket, class Protocol>
typename Protocol::endpoint open_for(Socket& s, const std::string& where, const Endpoint& e) {
    boost::system::error_code ec;
    auto ep = to_asio<Protocol>(e, true);
    s.open(ep.protocol(), ec);
    if (ec && e.any) {
        ep = to_asio<Protocol>(e, false);
        s.open(ep.protocol(), ec);
    }
    if (ec) bind_failed(where, e, "open a socket", ec);
    if (ep.address().is_v6()) s.set_option(asio::ip::v6_only(!e.any), ec);
    return ep;
}

}  // namespace

std::string SocketPool::key(const std::string& instance, const Endpoint& e) {
    // A port-0 endpoint is only ever the same socket for the same instance.
    return e.port == 0 ? instance + " " + e.to_string() : e.to_string();
}

SocketPool::~SocketPool() {
    for (auto& [k, s] : tcps) ::close(s.fd);
    for (auto& [k, s] : udps) ::close(s.fd);
}

void SocketPool::bind_tcp(asio::io_context& ioc, const std::string& instance, const Endpoint& e) {
    const std::string where = "[" + instance + "] tcp";
    tcp::acceptor a(ioc);
    const auto ep = open_for<tcp::acceptor, tcp>(a, where, e);
    boost::system::error_code ec;
    a.set_option(tcp::acceptor::reuse_address(true), ec);
    if (a.bind(ep, ec); ec) bind_failed(where, e, "bind", ec);
    if (a.listen(asio::socket_base::max_listen_connections, ec); ec) bind_failed(where, e, "listen", ec);
    const auto bound = a.local_endpoint();
    tcps.emplace(key(instance, e), Tcp{a.release(), bound});
}

void SocketPool::bind_udp(asio::io_context& ioc, const std::string& instance, const Endpoint& e) {
    const std::string where = "[" + instance + "] udp";
    udp::socket s(ioc);
    const auto ep = open_for<udp::socket, udp>(s, where, e);
    boost::system::error_code ec;
    if (s.bind(ep, ec); ec) bind_failed(where, e, "bind", ec);
    const auto bound = s.local_endpoint();
    udps.emplace(key(instance, e), Udp{s.release(), bound});
}

std::unique_ptr<Instance> Server::Impl::assemble(const InstanceConfig& ic, SocketPool& pool) {
    auto inst = std::make_unique<Instance>(ic, *state);
    for (const auto& e : ic.options.tcp) {
        auto node = pool.tcps.extract(SocketPool::key(ic.name, e));
        tcp::acceptor& a = inst->acceptors.emplace_back(state->control);
        a.assign(node.mapped().bound.protocol(), node.mapped().fd);
        inst->tcp_bound.push_back(node.mapped().bound);
    }
    for (const auto& e : ic.options.udp) {
        auto node = pool.udps.extract(SocketPool::key(ic.name, e));
        udp::socket& s = inst->udp_sockets.emplace_back(state->control);
        s.assign(node.mapped().bound.protocol(), node.mapped().fd);
        inst->udp_bound.push_back(node.mapped().bound);
    }
    return inst;
}

namespace {

bool same_endpoint(const Endpoint& configured, const asio::ip::address& address, unsigned short port) {
    if (configured.port != port) return false;
    if (configured.any) return address.is_unspecified();
    return configured.address == address;
}

}  // namespace

// Sockets from systemd go into the pool under the key of the configured
// endpoint they are bound to, so nothing binds those endpoints again.
void Server::Impl::adopt_inherited(SocketPool& pool) {
    for (const auto& s : options.inherited) {
        const auto dash = s.name.rfind('-');
        const std::string instance = dash == std::string::npos ? "" : s.name.substr(0, dash);
        const std::string proto = dash == std::string::npos ? "" : s.name.substr(dash + 1);
        const InstanceConfig* ic = nullptr;
        for (const auto& c : config.instances)
            if (c.name == instance && c.options.enabled) ic = &c;
        if (!ic || (proto != "tcp" && proto != "udp"))
            throw BindError("socket activation: FileDescriptorName=" + s.name +
                            " names no enabled instance (expected INSTANCE-tcp or INSTANCE-udp)");
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
            throw BindError("socket activation: " + s.name + ": getsockname: " + std::strerror(errno));
        const auto& list = proto == "tcp" ? ic->options.tcp : ic->options.udp;
        tcp::endpoint bound;
        std::memcpy(bound.data(), &ss, std::min<std::size_t>(len, bound.capacity()));
        bound.resize(len);
        const Endpoint* match = nullptr;
        for (const auto& e : list)
            if (same_endpoint(e, bound.address(), bound.port())) match = &e;
        if (!match)
            throw BindError("socket activation: " + s.name + " is bound to " + log::format_endpoint(bound) + ", which [" +
                            instance + "] " + proto + " does not list");
        const auto key = SocketPool::key(instance, *match);
        // The pool gets a duplicate: the inherited descriptor itself stays
        // open for the life of the process, whatever a reload does.
        if (proto == "tcp") pool.tcps.emplace(key, SocketPool::Tcp{::dup(s.fd), bound});
        else pool.udps.emplace(key, SocketPool::Udp{::dup(s.fd), udp::endpoint(bound.address(), bound.port())});
        (proto == "tcp" ? inherited_tcp : inherited_udp)[match->to_string()] = {s.fd, bound};
        COSERVE_LOG(Severity::info, instance, "") << proto << " " << log::format_endpoint(bound)
                                                  << ": from the service manager (" << s.name << ")";
    }
}

void Server::Impl::bind_all() {
    SocketPool pool;
    adopt_inherited(pool);
    for (const auto& ic : config.instances) {
        if (!ic.options.enabled) continue;
        for (const auto& e : ic.options.tcp)
            if (!pool.tcps.contains(SocketPool::key(ic.name, e))) pool.bind_tcp(*ioc, ic.name, e);
        for (const auto& e : ic.options.udp)
            if (!pool.udps.contains(SocketPool::key(ic.name, e))) pool.bind_udp(*ioc, ic.name, e);
    }
    for (const auto& ic : config.instances)
        if (ic.options.enabled) instances.push_back(assemble(ic, pool));
    refresh_udp_ports();
    if (!config.metrics.http.empty()) {
        const auto ic = detail::metrics_instance_config(config.metrics, metrics_source);
        SocketPool metrics_pool;
        for (const auto& e : ic.options.tcp) metrics_pool.bind_tcp(*ioc, ic.name, e);
        metrics_endpoint = assemble(ic, metrics_pool);
    }
}

void Server::Impl::begin_shutdown() {
    if (state->stopping.exchange(true)) return;
    if (options.notify) options.notify("STOPPING=1\nSTATUS=stopping: " + std::to_string(open_sessions()) + " connection(s) open");
    COSERVE_LOG(Severity::info, "", "") << "shutting down: " << open_sessions()
                                        << " connection(s) open, waiting up to "
                                        << format_duration(config.server.shutdown_grace);
    if (signals) signals->cancel();
    if (metrics_endpoint) {
        for (auto& a : metrics_endpoint->acceptors) {
            boost::system::error_code ignored;
            a.close(ignored);
        }
        if (metrics_endpoint->sweep_timer) metrics_endpoint->sweep_timer->cancel();
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
    for (auto& inst : retired)
        if (inst->sweep_timer) inst->sweep_timer->cancel();
    work.reset();
    asio::co_spawn(state->control, drain(), [](std::exception_ptr e) { detail::log_failure("", "shutdown", e); });
}

asio::awaitable<void> Server::Impl::watchdog() {
    asio::steady_timer timer(state->control);
    while (!state->stopping) {
        options.notify("WATCHDOG=1");
        timer.expires_after(options.watchdog_interval);
        co_await timer.async_wait(asio::as_tuple(asio::deferred));
    }
}

asio::awaitable<void> Server::Impl::drain() {
    using namespace std::chrono_literals;
    asio::steady_timer timer(state->control);
    const auto grace_end = std::chrono::steady_clock::now() + config.server.shutdown_grace;
    while (open_sessions() > 0 && std::chrono::steady_clock::now() < grace_end) {
        timer.expires_after(20ms);
        co_await timer.async_wait(asio::deferred);
    }
    if (open_sessions() > 0) {
        COSERVE_LOG(Severity::info, "", "") << "grace period over: closing " << open_sessions() << " connection(s)";
        for (auto* list : {&instances, &retired})
            for (auto& inst : *list)
                inst->cancel_sessions([](const detail::SessionSlot&) { return true; }, "closed at shutdown", true);
        if (metrics_endpoint)
            metrics_endpoint->cancel_sessions([](const detail::SessionSlot&) { return true; }, "closed at shutdown", true);
        const auto hard_end = std::chrono::steady_clock::now() + 2s;
        while (open_sessions() > 0 && std::chrono::steady_clock::now() < hard_end) {
            timer.expires_after(10ms);
            co_await timer.async_wait(asio::deferred);
        }
    }
    // The services' own I/O (chat's Redis link) ends after their sessions,
    // which may still use it while they finish.
    for (auto* list : {&instances, &retired})
        for (auto& inst : *list)
            if (inst->config.service) inst->config.service->stop();
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
    struct sigaction ignore{};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, nullptr);
    impl_->work.emplace(impl_->ioc->get_executor());
    for (auto& inst : impl_->instances) {
        impl_->launch(*inst);
    }
    impl_->metrics_source.executor = impl_->state->control;
    impl_->metrics_source.metrics = [impl = impl_.get()] {
        return detail::metrics_text(impl->instances, impl->metrics_endpoint.get(), impl->started_at);
    };
    impl_->metrics_source.instances = [impl = impl_.get()] { return detail::instances_json(impl->instances); };
    if (auto& m = impl_->metrics_endpoint) {
        for (const auto& bound : m->tcp_bound)
            COSERVE_LOG(Severity::info, "metrics", "") << "http " << log::format_endpoint(bound)
                                                       << ": GET /metrics, /healthz, /instances";
        detail::start_tcp(*m);
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

// An instance begins: logged, its service's own I/O started, then its listeners.
void Server::Impl::launch(Instance& inst) {
    announce(inst);
    inst.config.service->start(ioc->get_executor());
    detail::start_tcp(inst);
    detail::start_udp(inst);
}

void Server::Impl::announce(const Instance& inst) const {
    std::string tcp_list, udp_list;
    for (auto& ep : inst.tcp_bound) tcp_list += (tcp_list.empty() ? "" : ", ") + log::format_endpoint(ep);
    for (auto& ep : inst.udp_bound) udp_list += (udp_list.empty() ? "" : ", ") + log::format_endpoint(ep);
    COSERVE_LOG(Severity::info, inst.config.name, "")
        << "service " << inst.config.service_type << ": tcp " << (tcp_list.empty() ? "-" : tcp_list) << "; udp "
        << (udp_list.empty() ? "-" : udp_list);
}

// Applies a new, valid configuration: instances that did not change keep
// running untouched; removed ones stop listening and their open connections
// finish normally; changed ones are rebuilt with the new options for new
// connections (sockets of unchanged endpoints are handed over, never closed,
// so no connection attempt is refused); new ones start. Binding what is new
// comes first: if it fails, nothing changes.
void Server::Impl::reload(Config next) {
    if (state->stopping) return;
    auto same = [](const InstanceConfig& a, const InstanceConfig& b) {
        return a.service_type == b.service_type && a.effective == b.effective;
    };
    std::vector<const InstanceConfig*> wanted;  // enabled instances of the new config
    for (const auto& ic : next.instances)
        if (ic.options.enabled) wanted.push_back(&ic);
    std::vector<Instance*> keep;  // unchanged, by position in `wanted` (nullptr: to build)
    std::vector<std::unique_ptr<Instance>> leaving;
    std::map<std::string, Instance*> old_by_name;
    for (auto& inst : instances) old_by_name[inst->config.name] = inst.get();
    for (const auto* ic : wanted) {
        auto it = old_by_name.find(ic->name);
        keep.push_back(it != old_by_name.end() && same(it->second->config, *ic) ? it->second : nullptr);
    }
    // Sockets the leaving (changed or removed) instances hold, by pool key.
    std::map<std::string, std::pair<Instance*, std::size_t>> held_tcp, held_udp;
    // A socket is known by its configured endpoint and by the one it is bound
    // to, so "127.0.0.1:0" that became port 41234 is handed to a new
    // "127.0.0.1:41234" rather than bound twice.
    auto aliases = [](const Instance& inst, const Endpoint& configured, const auto& bound) {
        Endpoint actual;
        actual.address = bound.address();
        actual.port = bound.port();
        return std::array<std::string, 2>{SocketPool::key(inst.config.name, configured), actual.to_string()};
    };
    for (auto& inst : instances) {
        if (std::find(keep.begin(), keep.end(), inst.get()) != keep.end()) continue;
        for (std::size_t i = 0; i < inst->config.options.tcp.size(); ++i)
            for (const auto& k : aliases(*inst, inst->config.options.tcp[i], inst->tcp_bound[i])) held_tcp[k] = {inst.get(), i};
        for (std::size_t i = 0; i < inst->config.options.udp.size(); ++i)
            for (const auto& k : aliases(*inst, inst->config.options.udp[i], inst->udp_bound[i])) held_udp[k] = {inst.get(), i};
    }
    // 1. Bind what nobody holds yet. A failure leaves everything as it was.
    SocketPool pool;
    std::set<std::string> wanted_tcp, wanted_udp;
    try {
        for (std::size_t w = 0; w < wanted.size(); ++w) {
            if (keep[w]) continue;
            for (const auto& e : wanted[w]->options.tcp) {
                const auto k = SocketPool::key(wanted[w]->name, e);
                wanted_tcp.insert(k);
                if (held_tcp.contains(k)) continue;
                if (auto it = inherited_tcp.find(e.to_string()); it != inherited_tcp.end())
                    pool.tcps.emplace(k, SocketPool::Tcp{::dup(it->second.first), it->second.second});
                else
                    pool.bind_tcp(*ioc, wanted[w]->name, e);
            }
            for (const auto& e : wanted[w]->options.udp) {
                const auto k = SocketPool::key(wanted[w]->name, e);
                wanted_udp.insert(k);
                if (held_udp.contains(k)) continue;
                if (auto it = inherited_udp.find(e.to_string()); it != inherited_udp.end())
                    pool.udps.emplace(k, SocketPool::Udp{::dup(it->second.first),
                                                         udp::endpoint(it->second.second.address(), it->second.second.port())});
                else
                    pool.bind_udp(*ioc, wanted[w]->name, e);
            }
        }
    } catch (const BindError& e) {
        COSERVE_LOG(Severity::error, "", "") << "reload failed: " << e.what() << "; the running configuration stays";
        return;
    }
    // 2. Leaving instances stop accepting; their sockets go to the pool when wanted, else close.
    std::size_t stopped = 0, changed = 0, started_count = 0;
    for (auto& inst : instances) {
        if (std::find(keep.begin(), keep.end(), inst.get()) != keep.end()) continue;
        inst->retired = true;
        // Each socket goes to the pool under the key the new config wants it by, or closes.
        auto hand_over = [&](auto& sockets, const auto& configured, const auto& bound, const auto& wanted_keys, auto& into) {
            for (std::size_t i = 0; i < sockets.size(); ++i) {
                boost::system::error_code ignored;
                std::string to;
                for (const auto& k : aliases(*inst, configured[i], bound[i]))
                    if (to.empty() && wanted_keys.contains(k)) to = k;
                if (!to.empty()) into.emplace(to, typename std::decay_t<decltype(into)>::mapped_type{sockets[i].release(ignored), bound[i]});
                else sockets[i].close(ignored);
            }
        };
        hand_over(inst->acceptors, inst->config.options.tcp, inst->tcp_bound, wanted_tcp, pool.tcps);
        hand_over(inst->udp_sockets, inst->config.options.udp, inst->udp_bound, wanted_udp, pool.udps);
        const bool still_wanted = std::any_of(wanted.begin(), wanted.end(), [&](const InstanceConfig* ic) { return ic->name == inst->config.name; });
        (still_wanted ? changed : stopped) += 1;
        if (!still_wanted) COSERVE_LOG(Severity::info, inst->config.name, "") << "removed by reload; open connections finish";
    }
    // 3. The new set, in the new file's order.
    std::vector<std::unique_ptr<Instance>> next_instances;
    for (std::size_t w = 0; w < wanted.size(); ++w) {
        if (keep[w]) {
            for (auto& inst : instances)
                if (inst.get() == keep[w]) next_instances.push_back(std::move(inst));
            continue;
        }
        auto inst = assemble(*wanted[w], pool);
        launch(*inst);
        next_instances.push_back(std::move(inst));
        if (!old_by_name.contains(wanted[w]->name)) ++started_count;
    }
    {
        std::lock_guard lock(instances_mutex);
        for (auto& inst : instances)
            if (inst) retired.push_back(std::move(inst));
        instances = std::move(next_instances);
    }
    refresh_udp_ports();
    // Server-wide settings that apply at once.
    if (next.server.threads != config.server.threads)
        COSERVE_LOG(Severity::warning, "", "") << "reload: threads changes need a restart (still " << config.server.threads << ")";
    if (!(next.metrics.http == config.metrics.http))
        COSERVE_LOG(Severity::warning, "", "") << "reload: [metrics] http changes need a restart";
    next.server.threads = config.server.threads;
    next.metrics = config.metrics;
    state->max_connections = next.server.max_connections;
    config = std::move(next);
    COSERVE_LOG(Severity::info, "", "") << "reload: " << started_count << " started, " << changed << " changed, " << stopped
                                        << " stopped, " << (instances.size() - started_count - changed) << " unchanged";
}

void Server::Impl::watch_signals() {
    signals->async_wait([this](boost::system::error_code ec, int signo) {
        if (ec) return;
        if (signo == SIGHUP) {
            if (options.reopen_logs) options.reopen_logs();
            COSERVE_LOG(Severity::info, "", "") << "received SIGHUP: log reopened";
            if (options.reload) {
                if (options.notify) {
                    timespec now{};
                    clock_gettime(CLOCK_MONOTONIC, &now);
                    options.notify("RELOADING=1\nMONOTONIC_USEC=" +
                                   std::to_string(static_cast<long long>(now.tv_sec) * 1'000'000 + now.tv_nsec / 1000));
                }
                if (auto next = options.reload()) reload(std::move(*next));
                if (options.notify) options.notify("READY=1\nSTATUS=serving " + std::to_string(instances.size()) + " instance(s)");
            }
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

void Server::reload(Config next) {
    auto shared = std::make_shared<Config>(std::move(next));
    asio::post(impl_->state->control, [impl = impl_.get(), shared] { impl->reload(std::move(*shared)); });
}

void Server::stop() {
    asio::post(impl_->state->control, [impl = impl_.get()] { impl->begin_shutdown(); });
}

std::vector<tcp::endpoint> Server::tcp_endpoints(std::string_view instance) const {
    std::lock_guard lock(impl_->instances_mutex);
    for (auto& inst : impl_->instances)
        if (inst->config.name == instance) return inst->tcp_bound;
    return {};
}

std::vector<udp::endpoint> Server::udp_endpoints(std::string_view instance) const {
    std::lock_guard lock(impl_->instances_mutex);
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
                std::to_string(inst->counters.refused[static_cast<std::size_t>(detail::Refusal::limit)].load() +
                               inst->counters.refused[static_cast<std::size_t>(detail::Refusal::acl)].load() +
                               inst->counters.refused[static_cast<std::size_t>(detail::Refusal::per_source)].load() +
                               inst->counters.refused[static_cast<std::size_t>(detail::Refusal::rate)].load()) +
                " refused, " +
                std::to_string(inst->counters.datagrams_in.load()) + " datagrams in";
    }
    return text;
}

std::string Server::status() const {
    return impl_->status();
}

std::vector<tcp::endpoint> Server::metrics_endpoints() const {
    return impl_->metrics_endpoint ? impl_->metrics_endpoint->tcp_bound : std::vector<tcp::endpoint>{};
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
