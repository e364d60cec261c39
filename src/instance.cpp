#include "instance.hpp"
#include "tls.hpp"

#include <coserve/log.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

namespace coserve::detail {

namespace asio = boost::asio;

Instance::Instance(InstanceConfig c, ServerState& server)
    : config(std::move(c)),
      server(server),
      limits(config.options),
      idle_restart([this] {
          const ServiceType* type = find_service_type(config.service_type);
          return type && type->idle_restart;
      }()),
      tls_(config.tls) {}

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
    std::uint32_t index = 0;
    if (free_.empty()) {
        index = static_cast<std::uint32_t>(slots_.size());
        slots_.emplace_back();
    } else {
        index = free_.back();
        free_.pop_back();
    }
    auto& slot = slots_[index];
    slot.id = next_id_++;
    slot.index = index;
    slot.executor = std::move(executor);
    // Stamped at the start: the sweep must not take a session that has not run yet for an idle one.
    slot.last_seen = std::chrono::steady_clock::now().time_since_epoch().count();
    return slot;
}

void Instance::remove_session(SessionSlot& slot) {
    std::lock_guard lock(mutex_);
    const auto index = slot.index;
    std::destroy_at(&slot);  // its signal and executor go now, as the session's did
    std::construct_at(&slot);
    free_.push_back(index);
}

std::size_t Instance::session_count() {
    std::lock_guard lock(mutex_);
    return slots_.size() - free_.size();
}

void Instance::cancel_sessions(const std::function<bool(SessionSlot&)>& pick, const char* reason, bool again) {
    visit_sessions([&](SessionSlot& s) { return (again || !s.cancel_reason) && pick(s); },
                   [](SessionSlot& slot, const char* why) {
                       slot.cancel_reason = why;
                       if (slot.parked_socket) {
                           boost::system::error_code ignored;
                           slot.parked_socket->cancel(ignored);  // its wait ends the session (tcp.cpp)
                       } else {
                           slot.signal.emit(asio::cancellation_type::terminal);
                       }
                   },
                   reason);
}

void Instance::visit_sessions(const std::function<bool(SessionSlot&)>& pick, void (*act)(SessionSlot&, const char*),
                              const char* reason) {
    struct Target {
        SessionSlot* slot;
        std::uint64_t id;
        asio::any_io_executor executor;
    };
    std::vector<Target> targets;
    {
        std::lock_guard lock(mutex_);
        for (auto& slot : slots_)
            if (slot.id != 0 && !slot.finished && pick(slot)) targets.push_back({&slot, slot.id, slot.executor});
    }
    for (auto& t : targets) {
        asio::post(t.executor, [this, slot = t.slot, id = t.id, act, reason] {
            // On the session's executor: its coroutine is not running, and
            // its slot cannot be freed while we hold the lock (the id says
            // whether it is still the same session's).
            std::lock_guard lock(mutex_);
            if (slot->id != id || slot->finished) return;
            act(*slot, reason);
        });
    }
}

ServerState::ServerState(asio::io_context& ioc, const ServerConfig& config, std::vector<asio::io_context*> loops)
    : ioc(ioc),
      config(config),
      control(config.threads > 1 && loops.empty() ? asio::any_io_executor(asio::make_strand(ioc))
                                                  : asio::any_io_executor(ioc.get_executor())),
      max_connections(config.max_connections),
      loops_(std::move(loops)) {}

asio::any_io_executor ServerState::connection_executor() {
    if (!loops_.empty()) return loops_[next_loop_.fetch_add(1, std::memory_order_relaxed) % loops_.size()]->get_executor();
    if (config.threads > 1) return asio::make_strand(ioc);
    return ioc.get_executor();
}

}  // namespace coserve::detail
