// chat: the service and its configuration. See chat.hpp for the parts.
#include "chat.hpp"

#include "web.hpp"

#include <coserve/log.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/post.hpp>

#include <ctime>
#include <fstream>
#include <span>

namespace coserve::services {
namespace chat {

namespace {

// For 003 RPL_CREATED: "2026-12-02 06:51:16 UTC".
std::string now_text() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

// A background task's failure, in the error log.
void log_failure(const std::string& instance, std::string_view what, std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        COSERVE_LOG(Severity::error, instance, "") << what << " failed: " << x.what();
    } catch (...) {
        COSERVE_LOG(Severity::error, instance, "") << what << " failed";
    }
}

}  // namespace

// The join notices waiting in the hub's batches, one loop pass after the
// first of them: whatever joins meanwhile goes in the same broadcast. One
// flusher at a time (the hub starts it), so a storm of joins costs the loop
// one sliced flush per pass, however many join.
boost::asio::awaitable<void> Chat::flush_notices() {
    const auto executor = co_await boost::asio::this_coro::executor;
    for (;;) {
        co_await boost::asio::post(executor, boost::asio::deferred);
        FlushList list;
        if (!hub_.settle_notices(list)) co_return;
        co_await out_.flush_sliced(list);
    }
}

Chat::Chat(ChatOptions o)
    : o_(std::move(o)), hub_(o_.hub, out_),
      cluster_(o_.cluster ? std::make_unique<Cluster>(*o_.cluster, hub_, out_) : nullptr),
      directory_(cluster_ ? static_cast<Directory&>(*cluster_) : local_), irc_created_(now_text()) {
    if (cluster_) hub_.set_mirror(cluster_.get());
}

void Chat::start(const boost::asio::any_io_executor& executor) {
    if (cluster_) cluster_->start(executor);
    hub_.set_notice_flusher([this, executor] {
        boost::asio::co_spawn(executor, flush_notices(), [this](std::exception_ptr e) {
            if (!e) return;
            hub_.flusher_ended();
            log_failure(o_.name, "join notices", e);
        });
    });
    if (o_.irc || o_.web) {
        ping_timer_ = std::make_shared<boost::asio::steady_timer>(executor);
        boost::asio::co_spawn(executor, ping_sweep(ping_timer_), [name = o_.name](std::exception_ptr e) {
            if (e) log_failure(name, "ping sweep", e);
        });
    }
}

void Chat::stop() {
    if (cluster_) cluster_->stop();
    if (auto timer = std::exchange(ping_timer_, nullptr))
        boost::asio::post(timer->get_executor(), [timer] { timer->cancel(); });
}

void Chat::metrics(MetricsWriter& w) const {
    w.add("chat_clients", "gauge", "Chat clients connected.", static_cast<double>(hub_.clients()));
    w.add("chat_messages_total", "counter", "Chat lines broadcast to a room (text and /me).",
          static_cast<double>(hub_.messages()));
    w.add("chat_deliveries_total", "counter", "Broadcast lines queued for recipients.",
          static_cast<double>(hub_.deliveries()));
    w.add("chat_slow_consumers_total", "counter", "Clients dropped because their queue overflowed.",
          static_cast<double>(out_.slow_consumers()));
    w.add("chat_rate_limited_total", "counter",
          "Lines held back by the per-client rate limit (delayed until within the rate, never dropped).",
          static_cast<double>(rate_delayed_.load()));
    w.add("chat_rate_delay_seconds_total", "counter", "Time clients' reading was paused by the rate limit.",
          static_cast<double>(rate_delay_ns_.load()) / 1e9);
    if (o_.irc) {
        w.add("chat_irc_connections", "gauge", "Connections on the IRC front-end (registered or not).",
              static_cast<double>(irc_clients_.load()));
        w.add("chat_irc_ping_timeouts_total", "counter", "IRC clients closed for not answering PING, or not registering, within irc_ping.",
              static_cast<double>(irc_ping_timeouts_.load()));
    }
    if (o_.web) {
        w.add("chat_websocket_connections", "gauge", "Chat members on the WebSocket front-end (lines or IRC).",
              static_cast<double>(ws_clients_.load()));
        w.add("chat_websocket_ping_timeouts_total", "counter",
              "WebSocket chat members closed for not answering a ping within websocket_ping.",
              static_cast<double>(ws_ping_timeouts_.load()));
        w.add("chat_websocket_origin_refused_total", "counter",
              "WebSocket upgrades refused (403) for an Origin not allowed (websocket_origins).",
              static_cast<double>(ws_refused_origin_.load()));
    }
    if (cluster_) cluster_->metrics(w);
}

namespace {

std::optional<ClusterOptions> cluster_options(Section& s) {
    const std::string backend = s.string("backend", "local");
    ClusterOptions o;
    o.password = s.secret("redis_password");
    o.prefix = s.string("redis_prefix", "coserve");
    o.ttl = std::chrono::duration_cast<std::chrono::seconds>(
        s.duration("cluster_ttl", std::chrono::seconds(30), std::chrono::seconds(3), std::chrono::hours(24)));
    if (o.prefix.empty() || o.prefix.size() > 64 || o.prefix.find_first_of(" \t\r\n*?[]") != std::string::npos)
        s.fail("redis_prefix", "expected 1-64 characters without blanks or * ? [ ]");
    o.log_name = s.name();
    if (backend == "local") return std::nullopt;
    const auto address = detail::parse_redis_url(backend);
    if (!address) s.fail("backend", "expected local or redis://HOST:PORT[/DB] with a numeric HOST (no name is resolved)");
    o.address = *address;
    return o;
}

constexpr std::string_view irc_keys[] = {"irc_server_name", "irc_motd", "irc_password", "irc_max_channels", "irc_ping"};

// The MOTD file's lines (at most 100 of 400 bytes: it is sent at each registration).
std::vector<std::string> read_motd(Section& s, const std::string& path) {
    std::ifstream in(path);
    if (!in) s.fail("irc_motd", "cannot read " + path);
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (lines.size() == 100) s.fail("irc_motd", path + ": more than 100 lines");
        if (line.size() > 400) s.fail("irc_motd", path + ": line " + std::to_string(lines.size() + 1) + " is longer than 400 bytes");
        lines.push_back(irc::clean(line));
    }
    return lines;
}

// Keys of a front-end set without its listeners: a mistake, named.
void refuse_without_listeners(Section& s, std::span<const std::string_view> keys, std::string_view listeners) {
    for (auto key : keys)
        if (s.raw(key)) s.fail(key, "is set, but there are no " + std::string(listeners));
}

bool listening(const InstanceOptions& options, std::string_view front_end) {
    return std::any_of(options.front_ends.begin(), options.front_ends.end(), [&](const FrontEndListeners& f) {
        return f.name == front_end && (!f.tcp.empty() || !f.tls.empty());
    });
}

// The irc_* keys, read (and shown) when there are IRC listeners, or
// WebSocket ones (IRC over text.ircv3.net); set without them, a mistake.
std::optional<IrcOptions> irc_options(Section& s, const InstanceOptions& options, HubOptions& hub) {
    if (!listening(options, "irc") && !listening(options, "websocket")) {
        refuse_without_listeners(s, irc_keys, "IRC listeners (irc = ENDPOINTS or irc_tls = ENDPOINTS) "
                                              "or WebSocket ones (websocket, websocket_tls)");
        return std::nullopt;
    }
    IrcOptions o;
    hub.host = s.string("irc_server_name", "coserve");
    const bool host_ok = !hub.host.empty() && hub.host.size() <= 63 &&
                         std::all_of(hub.host.begin(), hub.host.end(), [](char c) {
                             return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
                         });
    if (!host_ok) s.fail("irc_server_name", "expected 1-63 of A-Z a-z 0-9 . - _ (a name, not an address clients resolve)");
    if (const auto motd = s.path("irc_motd", ""); !motd.empty()) o.motd = read_motd(s, motd);
    o.password = s.secret("irc_password");
    if (o.password.find_first_of(" \t") != std::string::npos || o.password.size() > 100)
        s.fail("irc_password", "expected at most 100 characters without blanks (a PASS parameter)");
    hub.max_channels = static_cast<std::size_t>(s.integer("irc_max_channels", 20, 1, 1000));
    o.ping = s.duration("irc_ping", std::chrono::seconds(120), std::chrono::milliseconds(100), std::chrono::hours(1));
    return o;
}

constexpr std::string_view web_keys[] = {"websocket_origins", "websocket_ping", "websocket_request_timeout"};

// The websocket_* keys, with `websocket` or `websocket_tls` listeners.
std::optional<WebOptions> web_options(Section& s, const InstanceOptions& options) {
    if (!listening(options, "websocket")) {
        refuse_without_listeners(s, web_keys, "WebSocket listeners (websocket = ENDPOINTS or websocket_tls = ENDPOINTS)");
        return std::nullopt;
    }
    WebOptions o;
    const std::string list = s.string("websocket_origins", "");
    std::size_t start = 0;
    while (start < list.size()) {
        std::size_t end = list.find_first_of(", \t", start);
        if (end == std::string::npos) end = list.size();
        const std::string one = list.substr(start, end - start);
        start = end + 1;
        if (one.empty()) continue;
        const auto origin = web::normal_origin(one);
        if (!origin)
            s.fail("websocket_origins", "expected origins as browsers send them, http://HOST[:PORT] or "
                                        "https://HOST[:PORT] (no path), separated by commas; got " + one);
        o.origins.push_back(*origin);
    }
    o.ping = s.duration("websocket_ping", std::chrono::seconds(30), std::chrono::milliseconds(100), std::chrono::hours(1));
    o.request_timeout = s.duration("websocket_request_timeout", std::chrono::seconds(10), std::chrono::milliseconds(100),
                                   std::chrono::minutes(5));
    return o;
}

std::unique_ptr<Service> create(Section& s, const InstanceOptions& options) {
    ChatOptions o;
    o.name = s.name();
    o.irc = irc_options(s, options, o.hub);
    o.web = web_options(s, options);
    o.cluster = cluster_options(s);
    o.hub.room = s.string("room", "lobby");
    if (!valid_chat_name(o.hub.room)) s.fail("room", "expected 1-32 of A-Z a-z 0-9 _ -");
    o.hub.history = static_cast<std::size_t>(s.integer("history", 20, 0, 10'000));
    o.hub.max_clients = static_cast<std::size_t>(s.integer("max_clients", 1000, 1, 10'000'000));
    o.max_queue = static_cast<std::size_t>(s.integer("max_queue", 1024, 1, 1'000'000));
    if (o.hub.history >= o.max_queue)
        s.fail("history", "must be smaller than max_queue (" + std::to_string(o.max_queue) +
                              "): a newcomer gets the history and the welcome in its queue");
    o.rate = s.rate("rate", "20/s", "burst", 40);
    if (o.cluster) o.cluster->history = o.hub.history;
    return std::make_unique<Chat>(std::move(o));
}

}  // namespace
}  // namespace chat

namespace {
constexpr std::string_view chat_front_ends[] = {"irc", "websocket"};
}

extern const ServiceType chat_service{.name = "chat",
                                      .create = chat::create,
                                      .tcp = true,
                                      .udp = false,
                                      .max_line_default = 4096,
                                      .front_ends = chat_front_ends};

}  // namespace coserve::services
