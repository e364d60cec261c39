// chat: rooms, nicknames, and a broadcast that no slow client can stall.
//
// The service ties the parts together: the outbox and its delivery
// (outbox.hpp), the hub (hub.hpp: rooms, names, history, the checks), the
// directory (directory.hpp: this daemon alone, or the cluster over Redis,
// cluster.hpp), the commands (commands.cpp: one dispatch) and the session
// (session.cpp: a reader coroutine per client, and its writer), and the IRC
// front-end (irc_session.cpp: registration and the read loop; irc_commands.cpp:
// the commands; irc.hpp: the protocol's pure part), and the browser front-end
// (websocket_session.cpp: HTTP, the upgrade and the read loop; web_http.cpp:
// what each request gets; websocket_protocol.cpp: the frames sent; web/: the page).
#pragma once

#include "cluster.hpp"
#include "directory.hpp"
#include "hub.hpp"
#include "irc.hpp"
#include "outbox.hpp"

#include <coserve/lines.hpp>
#include <coserve/service.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/websocket/stream_fwd.hpp>

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

// The WebSocket front-end's keys.
struct WebOptions {
    std::vector<std::string> origins;                     // websocket_origins, normalized; besides the page's own
    Duration ping = std::chrono::seconds(30);             // websocket_ping
    Duration request_timeout = std::chrono::seconds(10);  // websocket_request_timeout: each HTTP request, and the upgrade
    std::size_t max_requests = 100;                       // HTTP requests on one connection before it is closed
};

class ConnectionStream;
using WsStream = boost::beast::websocket::stream<ConnectionStream, true>;

// The steady clock in ns, as Member::heard holds it.
inline std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

struct ChatOptions {
    std::string name;  // the instance, for log lines
    HubOptions hub;
    std::optional<IrcOptions> irc;  // with IRC or WebSocket listeners (text.ircv3.net)
    std::optional<WebOptions> web;  // with `websocket` or `websocket_tls` listeners
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
    // A member for the session on `c`: its outbox writes to `c`, its rate
    // bucket is full, it was last heard now.
    std::shared_ptr<Member> new_member(Connection& c, Format format = Format::line, Wire wire = Wire::raw) const;
    boost::asio::awaitable<bool> admit(Connection& c, const std::shared_ptr<Member>& m, Asking* asking, FlushList& pending);
    void start_writer(Connection& c, const std::shared_ptr<Member>& m);
    boost::asio::awaitable<void> read_lines(Connection& c, const std::shared_ptr<Member>& m, Asking* asking,
                                            bool& quitting, FlushList& pending);
    boost::asio::awaitable<void> pace(Member& m, boost::asio::steady_timer& timer, FlushList& pending);
    // A reader's count since its last flush: lines read, and recipients
    // queued for (each broadcast adds the members touched so far).
    struct Flushing {
        std::size_t lines = 0, queued = 0;
    };
    static constexpr std::size_t max_said = 64;  // lines in one broadcast (and at most max_queue)
    boost::asio::awaitable<void> flush_when_dry(const LineReader& lines, Flushing& flushing, Member& m, SaidLines& said,
                                                FlushList& pending);
    // The gathered lines to the room (none: nothing).
    void say_lines(Member& m, SaidLines& said, Flushing& flushing, FlushList& pending);
    // One line of the line protocol (a TCP line or a WebSocket message), parsed.
    boost::asio::awaitable<void> run_line(const std::shared_ptr<Member>& m, Asking* asking, const ChatCommand& cmd,
                                          bool& quitting, boost::asio::steady_timer& pacer, FlushList& pending);
    // `last`: queued after everything else (a WebSocket close frame); with
    // `drain`, the writer gets 2 s to send what is queued even when the
    // session was cancelled.
    boost::asio::awaitable<bool> leave(Connection& c, const std::shared_ptr<Member>& m, bool quitting, FlushList& pending,
                                       const MessageRef& last = {}, bool drain = false);
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
    boost::asio::awaitable<void> irc_line(const std::shared_ptr<Member>& m, Asking* asking, IrcClient& client,
                                          std::string_view text, bool& quitting, boost::asio::steady_timer& pacer,
                                          FlushList& pending);
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
    // websocket_session.cpp
    struct WsSink;
    boost::asio::awaitable<void> serve_websocket(Connection& c);
    boost::asio::awaitable<void> ws_read(WsStream& ws, const std::shared_ptr<Member>& m, Asking* asking,
                                         IrcClient* irc, bool& quitting, FlushList& pending);
    // Every ping/4 (irc_ping, websocket_ping), the members that are pinged
    // (IRC, WebSocket): a ping for the silent, the end for those that did
    // not answer it.
    boost::asio::awaitable<void> ping_sweep(std::shared_ptr<boost::asio::steady_timer> timer);
    // chat.cpp: the hub's batched join notices (Hub::set_notice_flusher).
    boost::asio::awaitable<void> flush_notices();
    // A member's place in pinged_members_ (`pinged` set before).
    void watch_pings(const std::shared_ptr<Member>& m);
    void unwatch_pings(Member& m);
    // Lines from the server to an IRC member.
    void irc_reply(Member& m, std::string text, FlushList& pending);
    void irc_numeric(Member& m, std::string_view code, std::initializer_list<std::string_view> params,
                     FlushList& pending, bool trailing = true);
    boost::asio::awaitable<void> wait_writer(Connection& c, Member& m, bool quitting, bool drain = false);
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
    // The members ping_sweep watches: IRC (TCP or WebSocket) and WebSocket.
    std::mutex pinged_mutex_;
    std::unordered_map<Member*, std::shared_ptr<Member>> pinged_members_;
    // ping_sweep's, shared with it: stop() lets go of it and has it cancelled
    // on its own executor.
    std::shared_ptr<boost::asio::steady_timer> ping_timer_;
    std::atomic<std::uint64_t> irc_clients_{0}, irc_ping_timeouts_{0};
    std::atomic<std::uint64_t> ws_clients_{0}, ws_ping_timeouts_{0}, ws_http_requests_{0}, ws_refused_origin_{0};
    const std::string irc_created_;  // when the service was built, for 003
};

// The commands that ask the directory.
bool uses_directory(ChatCommand::Kind kind);

}  // namespace coserve::services::chat
