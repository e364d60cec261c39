// chat: the service and its configuration. See chat.hpp for the parts.
#include "chat.hpp"

namespace coserve::services {
namespace chat {

Chat::Chat(ChatOptions o)
    : o_(std::move(o)), hub_(o_.hub, out_),
      cluster_(o_.cluster ? std::make_unique<Cluster>(*o_.cluster, hub_, out_) : nullptr),
      directory_(cluster_ ? static_cast<Directory&>(*cluster_) : local_) {
    if (cluster_) hub_.set_mirror(cluster_.get());
}

void Chat::start(const boost::asio::any_io_executor& executor) {
    if (cluster_) cluster_->start(executor);
}

void Chat::stop() {
    if (cluster_) cluster_->stop();
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

std::unique_ptr<Service> create(Section& s, const InstanceOptions&) {
    ChatOptions o;
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

extern const ServiceType chat_service{.name = "chat", .create = chat::create, .tcp = true, .udp = false, .max_line_default = 4096};

}  // namespace coserve::services
