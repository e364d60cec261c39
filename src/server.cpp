// The Server's facade: start, run, reload, stop, and what it reports. The
// rest of it: server_impl.hpp and the files it names.
#include "server_impl.hpp"

#include <coserve/log.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <thread>

namespace coserve {

// One thread: Asio skips the per-descriptor locks of its reactor (every socket
// is used only from the loop's thread); posting from other threads, as
// Server::stop() and reload() do, stays safe. More threads: fully locking.
// A loop per thread (thread_model = per-thread) is the same: each socket is
// used only by its own loop's thread (tcp.cpp hands accepted connections
// over as descriptors).
int io_concurrency_hint(const ServerConfig& config) {
    return config.threads == 1 || config.loop_per_thread ? BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO : config.threads;
}


namespace {
// The keys only a daemon acts on: refused where nobody would.
void refuse_daemon_keys(const Config& config, const ServerHooks& options) {
    if (options.daemon_keys) return;
    const std::pair<const char*, const std::string*> keys[] = {
        {"pid_file", &config.server.pid_file}, {"user", &config.server.user}, {"group", &config.server.group}};
    for (const auto& [key, value] : keys)
        if (!value->empty())
            throw ConfigError(config.file + ": [server] " + key +
                              ": only a daemon acts on this key (coserved does); this program does not, so it is refused");
}
}  // namespace

Server::Server(Config config, ServerHooks options) {
    refuse_daemon_keys(config, options);
    impl_ = std::make_unique<Impl>(std::move(config), options);
}

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
    for (auto& l : impl_->loops) impl_->loop_work.emplace_back(l->get_executor());
    for (auto& inst : impl_->instances) {
        impl_->launch(*inst);
    }
    impl_->metrics_source.executor = impl_->state->control;
    impl_->metrics_source.metrics = [impl = impl_.get()] {
        return detail::metrics_text(impl->instances, impl->metrics_endpoint.get(), impl->started_at);
    };
    impl_->metrics_source.instances = [impl = impl_.get()] { return detail::instances_json(impl->instances); };
    if (auto& m = impl_->metrics_endpoint) {
        for (std::size_t i = 0; i < m->tcp_bound.size(); ++i)
            COSERVE_LOG(Severity::info, "metrics", "") << (detail::tls_kind(m->kinds[i]) ? "https " : "http ")
                                                       << log::format_endpoint(m->tcp_bound[i])
                                                       << ": GET /metrics, /healthz, /instances";
        detail::warn_expiry(*m);
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
    // "tcp A, B; tls C; irc D; udp E": tcp and udp always, the other kinds when listened on.
    std::vector<std::pair<std::string, std::string>> lists{{"tcp", ""}};
    for (std::size_t i = 0; i < inst.tcp_bound.size(); ++i) {
        auto it = std::find_if(lists.begin(), lists.end(), [&](const auto& l) { return l.first == inst.kinds[i]; });
        if (it == lists.end()) it = lists.insert(lists.end(), {inst.kinds[i], ""});
        it->second += (it->second.empty() ? "" : ", ") + log::format_endpoint(inst.tcp_bound[i]);
    }
    std::string udp_list, text;
    for (auto& ep : inst.udp_bound) udp_list += (udp_list.empty() ? "" : ", ") + log::format_endpoint(ep);
    lists.emplace_back("udp", udp_list);
    for (const auto& [kind, list] : lists) text += (text.empty() ? "" : "; ") + kind + " " + (list.empty() ? "-" : list);
    COSERVE_LOG(Severity::info, inst.config.name, "") << "service " << inst.config.service_type << ": " << text;
    detail::warn_expiry(inst);
}

void Server::run() {
    if (!impl_->started) throw std::logic_error("Server::run before start");
    std::vector<std::thread> extra;
    if (impl_->loops.empty())
        for (int i = 1; i < impl_->config.server.threads; ++i) extra.emplace_back([this] { impl_->ioc->run(); });
    for (auto& l : impl_->loops) extra.emplace_back([l = l.get()] { l->run(); });
    impl_->ioc->run();
    // The first loop ends after the drain: every session has ended, so the
    // others have nothing left (or were stopped with it).
    impl_->loop_work.clear();
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
    return endpoints(instance, "tcp");
}

std::vector<tcp::endpoint> Server::tls_endpoints(std::string_view instance) const {
    return endpoints(instance, "tls");
}

std::vector<tcp::endpoint> Server::endpoints(std::string_view instance, std::string_view kind) const {
    std::lock_guard lock(impl_->instances_mutex);
    std::vector<tcp::endpoint> out;
    for (auto& inst : impl_->instances)
        if (inst->config.name == instance)
            for (std::size_t i = 0; i < inst->tcp_bound.size(); ++i)
                if (inst->kinds[i] == kind) out.push_back(inst->tcp_bound[i]);
    return out;
}

std::vector<udp::endpoint> Server::udp_endpoints(std::string_view instance) const {
    std::lock_guard lock(impl_->instances_mutex);
    for (auto& inst : impl_->instances)
        if (inst->config.name == instance) return inst->udp_bound;
    return {};
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
