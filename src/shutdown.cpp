// Shutdown: listeners close at once; open connections get shutdown_grace to
// finish, then are cancelled; the services' own I/O ends after them. The
// drain waits for the last session's end (ServerState::connection_ended),
// not on a polling loop.
#include "server_impl.hpp"

#include <coserve/log.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>

namespace coserve {

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

asio::awaitable<void> Server::Impl::drain() {
    using namespace std::chrono_literals;
    drain_timer.emplace(state->control);
    co_await wait_sessions(config.server.shutdown_grace);
    if (open_sessions() > 0) {
        COSERVE_LOG(Severity::info, "", "") << "grace period over: closing " << open_sessions() << " connection(s)";
        for (auto* list : {&instances, &retired})
            for (auto& inst : *list)
                inst->cancel_sessions([](const detail::SessionSlot&) { return true; }, "closed at shutdown", true);
        if (metrics_endpoint)
            metrics_endpoint->cancel_sessions([](const detail::SessionSlot&) { return true; }, "closed at shutdown", true);
        co_await wait_sessions(2s);
    }
    // The services' own I/O (chat's Redis link) ends after their sessions,
    // which may still use it while they finish.
    for (auto* list : {&instances, &retired})
        for (auto& inst : *list)
            if (inst->config.service) inst->config.service->stop();
    if (open_sessions() > 0) {
        COSERVE_LOG(Severity::error, "", "") << open_sessions() << " connection(s) did not end when cancelled; stopping";
        ioc->stop();
        for (auto& l : loops) l->stop();
    }
}

// Until no session is open, or `limit` has passed. The last session's end
// cancels the wait (ServerState::on_last_connection, posted here); the
// count is checked on this executor before each wait, so no wake is lost.
asio::awaitable<void> Server::Impl::wait_sessions(Duration limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    drain_timer->expires_at(end);
    while (open_sessions() > 0 && std::chrono::steady_clock::now() < end)
        co_await drain_timer->async_wait(asio::as_tuple(asio::deferred));
}

}  // namespace coserve
