// chat: rooms, nicknames, and a broadcast that no slow client can stall.
//
// The service ties the parts together: the outbox and its delivery
// (outbox.hpp), the hub (hub.hpp: rooms, names, history, the checks), the
// directory (directory.hpp: this daemon alone, or the cluster over Redis,
// cluster.hpp), the commands (commands.cpp: one dispatch) and the session
// (session.cpp: a reader coroutine per client, and its writer), and the IRC
// front-end (irc_session.cpp: registration and the read loop; irc_commands.cpp:
// the commands; irc.hpp: the protocol's pure part).
#pragma once

#include "cluster.hpp"
#include "directory.hpp"
#include "hub.hpp"
#include "irc.hpp"
#include "outbox.hpp"

#include <coserve/lines.hpp>
#include <coserve/service.hpp>

#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <unordered_map>

namespace coserve::services::chat {

// The IRC front-end's keys (irc_server_name is HubOptions::host;
// irc_max_channels HubOptions::max_channels).
struct IrcOptions {
    std::optional<std::vector<std::string>> motd;  // irc_motd's lines; none: 422 ERR_NOMOTD
    std::string password;                          // irc_password; empty: no PASS needed
    Duration ping = std::chrono::seconds(120);     // irc_ping
};

struct ChatOptions {
    std::string name;  // the instance, for log lines
    HubOptions hub;
    std::optional<IrcOptions> irc;  // with `irc` or `irc_tls` listeners
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
    boost::asio::awaitable<void> flush_when_dry(const LineReader& lines, std::size_t& since_flush, FlushList& pending);
    boost::asio::awaitable<bool> leave(Connection& c, const std::shared_ptr<Member>& m, bool quitting, FlushList& pending);
    // irc_session.cpp, irc_commands.cpp
    struct IrcClient {
        std::string nick, user;  // as given at registration
        bool pass = false;       // PASS given (and right)
        bool cap = false;        // CAP negotiation holds the registration until CAP END
        bool registered = false;
        bool invisible = false;  // user mode +i: shown, nothing more
    };
    boost::asio::awaitable<void> serve_irc(Connection& c);
    boost::asio::awaitable<void> irc_read(Connection& c, const std::shared_ptr<Member>& m, Asking* asking,
                                          IrcClient& client, bool& quitting, FlushList& pending);
    boost::asio::awaitable<void> irc_register(const std::shared_ptr<Member>& m, Asking* asking, IrcClient& client,
                                              const irc::Message& msg, bool& quitting, FlushList& pending);
    boost::asio::awaitable<void> irc_command(const std::shared_ptr<Member>& m, Asking* asking, IrcClient& client,
                                             const irc::Message& msg, bool& quitting, FlushList& pending);
    boost::asio::awaitable<void> irc_join(const std::shared_ptr<Member>& m, Asking* asking, std::string_view channels,
                                          FlushList& pending);
    void irc_message(const std::shared_ptr<Member>& m, const irc::Message& msg, FlushList& pending);
    boost::asio::awaitable<void> irc_whois(Member& m, Asking* asking, std::string_view nick, FlushList& pending);
    boost::asio::awaitable<void> irc_who(Member& m, Asking* asking, std::string_view mask, FlushList& pending);
    void irc_mode(Member& m, IrcClient& client, const irc::Message& msg, FlushList& pending);
    void irc_welcome(Member& m, FlushList& pending);
    void irc_motd(Member& m, FlushList& pending);
    void irc_lusers(Member& m, FlushList& pending);
    void irc_pong(Member& m, const irc::Message& msg, FlushList& pending);
    void irc_cap(Member& m, IrcClient& client, const irc::Message& msg, FlushList& pending);
    // Every irc_ping/4, the registered IRC members: a PING for the silent,
    // the end for those that did not answer it.
    boost::asio::awaitable<void> irc_sweep(std::shared_ptr<boost::asio::steady_timer> timer);
    // Lines from the server to an IRC member.
    void irc_reply(Member& m, std::string text, FlushList& pending);
    void irc_numeric(Member& m, std::string_view code, std::initializer_list<std::string_view> params,
                     FlushList& pending, bool trailing = true);
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
    // The registered IRC members, for irc_sweep.
    std::mutex irc_mutex_;
    std::unordered_map<Member*, std::shared_ptr<Member>> irc_members_;
    // irc_sweep's, shared with it: stop() lets go of it and has it cancelled
    // on its own executor.
    std::shared_ptr<boost::asio::steady_timer> irc_timer_;
    std::atomic<std::uint64_t> irc_clients_{0}, irc_ping_timeouts_{0};
    const std::string irc_created_;  // when the service was built, for 003
};

// The commands that ask the directory.
bool uses_directory(ChatCommand::Kind kind);

}  // namespace coserve::services::chat
