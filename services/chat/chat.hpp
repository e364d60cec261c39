// chat: rooms, nicknames, and a broadcast that no slow client can stall.
//
// The service ties the parts together: the outbox and its delivery
// (outbox.hpp), the hub (hub.hpp: rooms, names, history, the checks), the
// directory (directory.hpp: this daemon alone, or the cluster over Redis,
// cluster.hpp), the commands (commands.cpp: one dispatch) and the session
// (session.cpp: a reader coroutine per client, and its writer).
#pragma once

#include "cluster.hpp"
#include "directory.hpp"
#include "hub.hpp"
#include "outbox.hpp"

#include <coserve/service.hpp>

#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <memory>
#include <optional>

namespace coserve::services::chat {

struct ChatOptions {
    HubOptions hub;
    std::optional<ClusterOptions> cluster;  // backend = redis://...; none: local
    std::size_t max_queue = 1024;
    Rate rate;  // lines per second per client; 0 = no limit
};

class Chat final : public Service {
public:
    explicit Chat(ChatOptions o);
    ~Chat() override { stop(); }

    boost::asio::awaitable<void> serve(Connection& c) override;
    void start(const boost::asio::any_io_executor& executor) override;
    void stop() override;  // after the sessions (Service::stop)
    void metrics(MetricsWriter& w) const override;

private:
    // session.cpp
    boost::asio::awaitable<bool> admit(Connection& c, const std::shared_ptr<Member>& m, Asking* asking, FlushList& pending);
    void start_writer(Connection& c, const std::shared_ptr<Member>& m);
    boost::asio::awaitable<void> read_lines(Connection& c, const std::shared_ptr<Member>& m, Asking* asking,
                                            bool& quitting, FlushList& pending);
    boost::asio::awaitable<void> pace(Member& m, boost::asio::steady_timer& timer, FlushList& pending);
    boost::asio::awaitable<bool> leave(Connection& c, const std::shared_ptr<Member>& m, bool quitting, FlushList& pending);
    boost::asio::awaitable<void> wait_writer(Connection& c, Member& m, bool quitting);
    // commands.cpp: the commands answered at once, and those that ask the directory.
    void handle(const std::shared_ptr<Member>& m, const ChatCommand& cmd, bool& quitting, FlushList& flush);
    boost::asio::awaitable<void> look_up(const std::shared_ptr<Member>& m, Asking* asking, const ChatCommand& cmd,
                                         FlushList& flush);

    ChatOptions o_;
    Delivery out_;  // before the hub: the rooms' history holds its messages
    Hub hub_;
    std::unique_ptr<Cluster> cluster_;
    Directory local_;        // this daemon alone
    Directory& directory_;   // *cluster_ or local_
    std::atomic<std::uint64_t> rate_delayed_{0}, rate_delay_ns_{0};
};

// The commands that ask the directory.
bool uses_directory(ChatCommand::Kind kind);

}  // namespace coserve::services::chat
