#include "cluster.hpp"

#include "cluster_scripts.hpp"

#include <coserve/log.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <unistd.h>

#include <cstdio>
#include <random>

namespace coserve::services::chat {

namespace asio = boost::asio;

// A session's question to Redis and the wait for its reply: a timer that the
// reply's handler cancels, with a sequence number against late replies.
struct Asking : std::enable_shared_from_this<Asking> {
    explicit Asking(const asio::any_io_executor& ex) : executor(ex), answer(ex) {}
    asio::any_io_executor executor;
    asio::steady_timer answer;
    std::optional<detail::RedisReply> reply;
    unsigned seq = 0;
};

Cluster::Cluster(ClusterOptions o, Hub& hub, Delivery& out)
    : o_(std::move(o)), hub_(hub), out_(out), room_channel_(o_.prefix + ":room:"), user_channel_(o_.prefix + ":user:"),
      nick_prefix_(o_.prefix + ":nick:"), who_prefix_(o_.prefix + ":who:"), history_prefix_(o_.prefix + ":history:"),
      daemons_key_(o_.prefix + ":daemons"), guests_key_(o_.prefix + ":guests"), ttl_(std::to_string(o_.ttl.count())) {
    std::random_device rd;
    char id[32];
    std::snprintf(id, sizeof id, "%08x%08x-%d", rd(), rd(), static_cast<int>(::getpid()));
    id_ = id;
    who_key_ = who_prefix_ + id_;
}

void Cluster::start(const asio::any_io_executor& executor) {
    detail::RedisLink::Options lo{o_.address, o_.password, o_.log_name};
    link_ = detail::RedisLink::create(
        executor, lo, {room_channel_ + "*"},
        [this](std::string_view channel, std::string_view payload) { on_message(channel, payload); },
        [this](bool up) { on_state(up); });
    link_->set_tick(std::chrono::duration_cast<std::chrono::milliseconds>(o_.ttl) / 3,
                    [this, weak = std::weak_ptr<detail::RedisLink>(link_)] {
                        if (auto link = weak.lock()) on_tick(*link);
                    });
    link_->start();
}

// The link goes, and with it, once its last handler has run, its strand and timers.
void Cluster::stop() {
    if (auto link = std::move(link_)) link->stop();
}

void Cluster::metrics(MetricsWriter& w) const {
    if (!link_) return;
    w.add("chat_cluster_up", "gauge", "1 while the Redis link is up (backend = redis://).", link_->up() ? 1 : 0);
    w.add("chat_cluster_reconnects_total", "counter", "Reconnection attempts to Redis.",
          static_cast<double>(link_->reconnects()));
    w.add("chat_cluster_published_total", "counter", "Events published to the other daemons.",
          static_cast<double>(published_.load()));
    w.add("chat_cluster_unpublished_total", "counter",
          "Events not published because the Redis link was down (delivered here only).",
          static_cast<double>(unpublished_.load()));
    w.add("chat_cluster_received_total", "counter", "Events received from the other daemons.",
          static_cast<double>(received_.load()));
    w.add("chat_cluster_invalid_total", "counter", "Records from Redis that were not a valid event (ignored).",
          static_cast<double>(invalid_.load()));
}

std::shared_ptr<Asking> Cluster::asking(const asio::any_io_executor& executor) {
    return std::make_shared<Asking>(executor);
}

// Sends a command and waits for the reply, at most 5 s: nullopt when the
// link is down or drops, or the wait ends first.
asio::awaitable<std::optional<detail::RedisReply>> Cluster::ask(Asking* a, std::vector<std::string> argv) {
    if (!a || !up()) co_return std::nullopt;
    const unsigned seq = ++a->seq;
    a->reply.reset();
    a->answer.expires_after(std::chrono::seconds(5));
    link_->command(std::move(argv), [weak = a->weak_from_this(), seq](const detail::RedisReply& r) {
        auto self = weak.lock();
        if (!self) return;
        asio::post(self->executor, [self, seq, r] {
            if (seq != self->seq) return;  // the session stopped waiting
            self->reply = r;
            self->answer.cancel();
        });
    });
    co_await a->answer.async_wait(asio::as_tuple(asio::deferred));
    ++a->seq;
    std::optional<detail::RedisReply> r = std::move(a->reply);
    a->reply.reset();
    if (r && !r->ok && r->text.empty()) co_return std::nullopt;  // no reply: the link went down
    co_return r;
}

std::vector<std::string> Cluster::claim_command(std::string_view nick) const {
    return {"EVAL", std::string(scripts::claim), "1", nick_prefix_ + chat_key(nick), id_, ttl_};
}

asio::awaitable<std::string> Cluster::guest(Asking* a) {
    for (int attempt = 0; attempt < 5; ++attempt) {
        std::vector<std::string> incr{"INCR", guests_key_};  // not a braced list in co_await: GCC 12
        auto n = co_await ask(a, std::move(incr));
        if (!n || !n->ok) break;
        const std::string name = "guest" + std::to_string(n->integer);
        auto claim = claim_command(name);
        auto claimed = co_await ask(a, std::move(claim));
        if (!claimed || !claimed->ok) break;
        if (claimed->integer == 1) co_return name;
    }
    co_return std::string();
}

// No answer (the link is down): the name is checked on this daemon only.
asio::awaitable<bool> Cluster::claim(Asking* a, const std::string& name) {
    auto argv = claim_command(name);
    auto r = co_await ask(a, std::move(argv));
    co_return !(r && r->ok && r->integer != 1);
}

void Cluster::release(const std::string& name) {
    if (up()) link_->command({"EVAL", std::string(scripts::release), "1", nick_prefix_ + chat_key(name), id_});
}

asio::awaitable<std::optional<Others>> Cluster::others(Asking* a) {
    std::vector<std::string> who{"EVAL", std::string(scripts::who), "1", daemons_key_, who_prefix_, ttl_};
    auto r = co_await ask(a, std::move(who));
    if (!r || !r->ok) co_return std::nullopt;
    Others others;
    for (std::size_t i = 0; i + 2 < r->elements.size(); i += 3)
        if (r->elements[i] != id_)  // ours: from the hub
            for (std::string_view rooms = r->elements[i + 2]; !rooms.empty();) {
                const auto space = rooms.find(' ');
                if (auto room = rooms.substr(0, space); !room.empty()) others.emplace_back(r->elements[i + 1], room);
                rooms = space == std::string_view::npos ? std::string_view() : rooms.substr(space + 1);
            }
    co_return others;
}

asio::awaitable<std::optional<std::vector<std::string>>> Cluster::history(Asking* a, const std::string& room) {
    if (o_.history == 0) co_return std::vector<std::string>{};
    std::vector<std::string> range{"LRANGE", history_prefix_ + chat_key(room), "0", std::to_string(o_.history - 1)};
    auto r = co_await ask(a, std::move(range));
    if (!r || !r->ok) co_return std::nullopt;
    co_return std::vector<std::string>(r->elements.rbegin(), r->elements.rend());
}

// Each daemon subscribes to the channels of its own members, so PUBLISH
// counts the daemons that have this one (0: nobody has). `from`'s name and
// room change only on its own reader, which is the caller.
bool Cluster::send_private(const std::shared_ptr<Member>& from, const std::string& to, std::string_view text) {
    if (!up()) return false;
    ++published_;
    const Room* room = from->room();  // the record names a room; an IRC member may be in none
    link_->command({"PUBLISH", user_channel_ + chat_key(to), chat_event_record(id_, "priv", room ? room->name : "-", from->nick, text)},
                   [this, weak = std::weak_ptr<Member>(from), to](const detail::RedisReply& r) {
                       if (r.ok && r.integer > 0) return;
                       auto member = weak.lock();
                       if (!member) return;
                       FlushList list;
                       out_.tell(*member, {r.ok ? "* error: no such user " : "* error: could not reach user ", to}, list);
                       out_.flush(list);
                   });
    return true;
}

void Cluster::name_taken(std::string_view nick) {
    if (link_) link_->subscribe(user_channel_ + chat_key(nick));
}

void Cluster::name_released(std::string_view nick) {
    if (!link_) return;
    link_->unsubscribe(user_channel_ + chat_key(nick));
    release(std::string(nick));
}

void Cluster::placed(std::string_view nick, std::string_view rooms) {
    if (!up()) return;
    if (rooms.empty()) link_->command({"HDEL", who_key_, std::string(nick)});
    else link_->command({"HSET", who_key_, std::string(nick), std::string(rooms)});
}

void Cluster::event(std::string_view kind, std::string_view room, std::string_view nick, std::string_view text) {
    if (!link_) return;
    if (!link_->up()) {
        ++unpublished_;
        return;
    }
    ++published_;
    link_->command({"PUBLISH", room_channel_ + chat_key(room), chat_event_record(id_, kind, room, nick, text)});
}

void Cluster::remember(std::string_view room, const MessageRef& line) {
    if (!up() || o_.history == 0) return;
    const std::string key = history_prefix_ + chat_key(room);
    link_->command({"LPUSH", key, line->text.substr(0, line->text.size() - 2)});
    link_->command({"LTRIM", key, "0", std::to_string(o_.history - 1)});
}

// Every ttl/3 while the link is up: this daemon's names and members stay in Redis.
void Cluster::on_tick(detail::RedisLink& link) {
    std::vector<std::string> refresh{"EVAL", std::string(scripts::refresh), "2", daemons_key_, who_key_, id_, ttl_};
    const Others here = hub_.placements();
    for (const auto& [nick, room] : here) {
        refresh.push_back(nick);
        refresh.push_back(room);
    }
    link.command(std::move(refresh));
    for (const auto& placement : here) {
        const std::string& nick = placement.first;  // (clang 14 cannot capture a structured binding)
        link.command(claim_command(nick), [log_name = o_.log_name, nick](const detail::RedisReply& r) {
            if (r.ok && r.integer == 0)
                COSERVE_LOG(Severity::warning, log_name, "")
                    << "nickname " << nick << " is also in use on another daemon (given out while the cluster link was down)";
        });
    }
}

// An event from another daemon (on the link's strand).
void Cluster::on_message(std::string_view channel, std::string_view payload) {
    const auto e = parse_chat_event(payload);
    if (!e) {
        ++invalid_;
        return;
    }
    if (e->daemon == id_) return;  // ours: delivered here already
    ++received_;
    FlushList list;
    if (channel.starts_with(user_channel_)) {
        if (e->kind == "priv") hub_.deliver_private(channel.substr(user_channel_.size()), e->nick, e->text, list);
    } else {
        hub_.deliver(*e, list);
    }
    out_.flush(list);
}

// The link went down (once per outage) or came up (on the link's strand).
void Cluster::on_state(bool up) {
    FlushList list;
    hub_.link_state(up, list);
    out_.flush(list);
}

}  // namespace coserve::services::chat
