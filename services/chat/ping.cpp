// chat: the ping sweep, for IRC and WebSocket members. A coarse sweep instead
// of a timer per session: a member silent for its ping interval (irc_ping,
// websocket_ping) gets a ping (IRC: a PING line; WebSocket: a ping frame);
// one still silent as long again after it is closed. An IRC connection that
// has not registered within irc_ping of its start is closed (no PING: it has
// not shown it is an IRC client).
#include "chat.hpp"

#include "websocket.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>

namespace coserve::services::chat {

namespace asio = boost::asio;

void Chat::watch_pings(const std::shared_ptr<Member>& m) {
    std::lock_guard lock(pinged_mutex_);
    pinged_members_.emplace(m.get(), m);
}

void Chat::unwatch_pings(Member& m) {
    std::lock_guard lock(pinged_mutex_);
    pinged_members_.erase(&m);
}

asio::awaitable<void> Chat::ping_sweep(std::shared_ptr<asio::steady_timer> timer) {
    using std::chrono::nanoseconds;
    const auto ns = [](Duration d) { return std::chrono::duration_cast<nanoseconds>(d).count(); };
    const std::int64_t irc_ping = o_.irc ? ns(o_.irc->ping) : 0, ws_ping = o_.web ? ns(o_.web->ping) : 0;
    const Duration shortest = o_.irc && o_.web ? std::min(o_.irc->ping, o_.web->ping) : o_.irc ? o_.irc->ping : o_.web->ping;
    const auto period = std::clamp<Duration>(shortest / 4, std::chrono::milliseconds(10), std::chrono::seconds(5));
    const std::string line = "PING :" + o_.hub.host + "\r\n";
    std::string frame;
    ws::append_ping(frame, "coserve");
    for (;;) {
        timer->expires_after(period);
        auto [ec] = co_await timer->async_wait(asio::as_tuple(asio::deferred));
        if (ec) co_return;
        const auto now = now_ns();
        std::vector<std::shared_ptr<Member>> members;
        {
            std::lock_guard lock(pinged_mutex_);
            for (const auto& [key, member] : pinged_members_) members.push_back(member);
        }
        FlushList flush;
        for (const auto& member : members) {
            const bool irc = member->format == Format::irc;
            const std::int64_t ping = irc ? irc_ping : ws_ping;
            auto& timeouts = irc ? irc_ping_timeouts_ : ws_ping_timeouts_;
            const auto heard = member->heard.load(std::memory_order_relaxed);
            if (!member->registered.load(std::memory_order_relaxed)) {
                if (now - member->pinged >= ping && !member->ping_timeout.exchange(true)) {
                    ++timeouts;
                    out_.kill(*member);
                }
                continue;
            }
            if (member->pinged != 0 && heard > member->pinged) member->pinged = 0;  // it answered (or registered)
            if (member->pinged == 0 && now - heard >= ping) {
                member->pinged = now;
                if (irc) out_.enqueue(*member, out_.compose([&](std::string& out) { out = line; }), flush);
                else out_.enqueue_raw(*member, out_.compose([&](std::string& out) { out = frame; }), flush);
            } else if (member->pinged != 0 && now - member->pinged >= ping && !member->ping_timeout.exchange(true)) {
                ++timeouts;
                out_.kill(*member);
            }
        }
        out_.flush(flush);
    }
}

}  // namespace coserve::services::chat
