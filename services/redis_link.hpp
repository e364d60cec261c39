// A link to one Redis server for a service that shares state across daemons
// (chat's `backend = redis://`): hiredis' asynchronous API driven by the
// daemon's own event loop, so Redis I/O never blocks it.
//
// Two connections: one in subscriber mode (PSUBSCRIBE/SUBSCRIBE, messages
// in), one for commands (PUBLISH, SET, ...). When either drops, both are
// closed, the link reports itself down once, and reconnects with backoff
// (100 ms doubling to 5 s), then subscribes again to everything it had.
//
// Threading: every member function, and every callback the link makes, runs
// on the link's strand. Ownership: create() returns a shared_ptr; pending
// waits hold it, so stop() must be called to let it go.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace coserve::detail {

struct RedisAddress {
    std::string host = "127.0.0.1";  // numeric address: nothing is resolved through DNS
    unsigned short port = 6379;
    int db = 0;
};

// Parses redis://HOST:PORT[/DB] (HOST a numeric IPv4 or [IPv6] address).
// Returns nullopt on anything else.
std::optional<RedisAddress> parse_redis_url(std::string_view url);

// One reply, as much of it as the callers here need.
struct RedisReply {
    bool ok = false;           // not an error reply, and the link was up
    long long integer = 0;     // integer replies
    bool nil = false;          // a nil reply (e.g. SET ... NX that lost)
    std::string text;          // status, string or error text
    std::vector<std::string> elements;  // array replies of strings (e.g. SMEMBERS, LRANGE)
};

class RedisLink : public std::enable_shared_from_this<RedisLink> {
public:
    struct Options {
        RedisAddress address;
        std::string password;   // AUTH on both connections when not empty
        std::string log_name;   // the instance name in log lines
    };
    using MessageFn = std::function<void(std::string_view channel, std::string_view payload)>;
    using StateFn = std::function<void(bool up)>;
    using ReplyFn = std::function<void(const RedisReply&)>;

    static std::shared_ptr<RedisLink> create(boost::asio::any_io_executor executor, Options options,
                                             std::vector<std::string> patterns, MessageFn on_message,
                                             StateFn on_state);
    ~RedisLink();

    // Before start(): `fn` runs on the strand when the link comes up and then
    // every `every` while it stays up (to refresh keys that expire).
    void set_tick(std::chrono::milliseconds every, std::function<void()> fn);

    // Connects. on_state(true) each time both connections are ready;
    // on_state(false) once per outage (also when the first connect fails).
    void start();
    // Closes the link, on the strand: the subscriber at once; commands
    // already queued are still sent (for up to a second). No callback is made
    // once stop() has returned. Any thread.
    void stop();

    // A command (argv form: no quoting issues), from any thread. `done`, if
    // given, gets the reply on the strand, or ok = false when the link is
    // down or drops before the reply arrives.
    void command(std::vector<std::string> argv, ReplyFn done = {});
    // Channels subscribed besides the patterns; kept across reconnects. Any thread.
    void subscribe(const std::string& channel);
    void unsubscribe(const std::string& channel);

    bool up() const noexcept { return up_; }
    std::uint64_t reconnects() const noexcept { return reconnects_; }

    // For the hiredis callbacks in redis_link.cpp; on the strand.
    struct Conn;
    void lost(const std::string& why);  // a connection failed or dropped
    void ready_one();                   // a connection answered its first command
    void deliver(std::string_view channel, std::string_view payload);
    bool current(const Conn* c) const noexcept { return c && (c == sub_.get() || c == cmd_.get()); }
    bool stopped() const noexcept { return stopped_; }
    void closed_after_stop();           // the last connection is gone after stop()
    std::size_t patterns() const noexcept { return patterns_.size(); }

private:
    RedisLink(boost::asio::any_io_executor executor, Options options, std::vector<std::string> patterns,
              MessageFn on_message, StateFn on_state);
    void connect();
    void close_all();
    void arm_tick();
    void send_subscribe(const char* verb, const std::string& channel);

    boost::asio::strand<boost::asio::any_io_executor> strand_;
    Options options_;
    std::vector<std::string> patterns_;
    std::set<std::string> channels_;
    MessageFn on_message_;
    StateFn on_state_;
    std::shared_ptr<Conn> sub_, cmd_;
    int ready_ = 0;  // connections that have answered their first command
    std::atomic<bool> up_{false};
    std::atomic<bool> stopped_{false};
    bool was_up_ = false;       // for "restored" instead of "connected" in the log
    bool logged_down_ = false;  // this outage has been logged
    bool reconnect_scheduled_ = false;  // lost() has closed up and armed the backoff
    std::chrono::milliseconds backoff_{100};
    boost::asio::steady_timer timer_;  // the reconnect backoff; the deadline of stop()
    boost::asio::steady_timer tick_timer_;
    std::chrono::milliseconds tick_every_{0};
    std::function<void()> on_tick_;
    std::atomic<std::uint64_t> reconnects_{0};
};

}  // namespace coserve::detail
