// Signals (SIGHUP: logs reopened and the config reloaded; SIGUSR1: the
// status; SIGINT, SIGTERM: shutdown), the systemd watchdog, the status text.
#include "server_impl.hpp"

#include <coserve/log.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>

#include <signal.h>

#include <ctime>

namespace coserve {

namespace {
// TCP connections closed at accept, for every reason there is.
std::uint64_t refused(const Instance& inst) {
    std::uint64_t n = 0;
    for (std::size_t r = 0; r < detail::refusal_count; ++r)
        if (detail::refuses_connections(static_cast<detail::Refusal>(r))) n += inst.counters.refused[r].load();
    return n;
}
}  // namespace

asio::awaitable<void> Server::Impl::watchdog() {
    asio::steady_timer timer(state->control);
    while (!state->stopping) {
        options.notify("WATCHDOG=1");
        timer.expires_after(options.watchdog_interval);
        co_await timer.async_wait(asio::as_tuple(asio::deferred));
    }
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

std::string Server::Impl::status() const {
    std::string text;
    for (const auto& inst : instances) {
        std::string endpoints;
        for (std::size_t i = 0; i < inst->tcp_bound.size(); ++i)
            endpoints += " " + inst->kinds[i] + " " + log::format_endpoint(inst->tcp_bound[i]);
        for (const auto& ep : inst->udp_bound) endpoints += " udp " + log::format_endpoint(ep);
        text += "\n  [" + inst->config.name + "] service " + inst->config.service_type + endpoints + ": " +
                std::to_string(inst->counters.active.load()) + " open, " +
                std::to_string(inst->counters.accepted.load()) + " accepted, " +
                std::to_string(refused(*inst)) + " refused, " +
                std::to_string(inst->counters.datagrams_in.load()) + " datagrams in";
    }
    return text;
}

}  // namespace coserve
