#include "instance.hpp"
#include "tls.hpp"

#include <coserve/log.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

namespace coserve::detail {

namespace asio = boost::asio;

Instance::Instance(InstanceConfig c, ServerState& server)
    : config(std::move(c)), server(server), limits(config.options), tls_(config.tls) {}

void warn_expiry(const Instance& inst) {
    const auto tls = inst.tls();
    if (!tls) return;
    if (const auto warning = tls->expiry_warning(std::time(nullptr)); !warning.empty())
        COSERVE_LOG(Severity::warning, inst.config.name, "") << warning;
}

std::shared_ptr<const TlsContext> Instance::tls() const {
    std::lock_guard lock(tls_mutex_);
    return tls_;
}

void Instance::set_tls(std::shared_ptr<const TlsContext> context) {
    std::lock_guard lock(tls_mutex_);
    tls_ = std::move(context);
}

SessionSlot& Instance::add_session(asio::any_io_executor executor) {
    std::lock_guard lock(mutex_);
    const auto id = next_id_++;
    auto& slot = sessions_[id];
    slot.id = id;
    slot.executor = std::move(executor);
    // Stamped at the start: the sweep must not take a session that has not run yet for an idle one.
    slot.last_seen = std::chrono::steady_clock::now().time_since_epoch().count();
    return slot;
}

void Instance::remove_session(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    sessions_.erase(id);
}

std::size_t Instance::session_count() {
    std::lock_guard lock(mutex_);
    return sessions_.size();
}

void Instance::cancel_sessions(const std::function<bool(SessionSlot&)>& pick, const char* reason, bool again) {
    std::vector<std::pair<std::uint64_t, asio::any_io_executor>> targets;
    {
        std::lock_guard lock(mutex_);
        for (auto& [id, slot] : sessions_)
            if (!slot.finished && (again || !slot.cancel_reason) && pick(slot)) targets.emplace_back(id, slot.executor);
    }
    for (auto& [id, executor] : targets) {
        asio::post(executor, [this, id = id, reason] {
            // On the session's executor: its coroutine is not running, and
            // its slot cannot be erased while we hold the lock.
            std::lock_guard lock(mutex_);
            auto it = sessions_.find(id);
            if (it == sessions_.end() || it->second.finished) return;
            it->second.cancel_reason = reason;
            it->second.signal.emit(asio::cancellation_type::terminal);
        });
    }
}

ServerState::ServerState(asio::io_context& ioc, const ServerConfig& config)
    : ioc(ioc),
      config(config),
      control(config.threads > 1 ? asio::any_io_executor(asio::make_strand(ioc))
                                 : asio::any_io_executor(ioc.get_executor())),
      max_connections(config.max_connections) {}

asio::any_io_executor ServerState::connection_executor() {
    if (config.threads > 1) return asio::make_strand(ioc);
    return ioc.get_executor();
}

}  // namespace coserve::detail
