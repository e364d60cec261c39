// chat: rooms, nicknames, and a broadcast that no slow client can stall.
//
// Each client has a reader (the session coroutine: lines in, commands) and a
// writer (a second coroutine that waits for the socket to become writable),
// sharing one Member. A broadcast stores its line once, in a pooled,
// reference-counted Message, and enqueues only a reference per recipient.
// After each chunk of input, the sender flushes the queues it touched with
// one gathered, non-blocking send per recipient, so a burst from many
// senders lands in the kernel's buffers instead of piling up in ours. What
// the kernel does not take waits in the recipient's queue (bounded by
// max_queue) for its writer; a recipient whose queue is full is dropped as
// too slow instead of holding anyone up.
//
// Locking: the hub's mutex guards rooms, nicknames and membership; each
// member's own mutex guards its queue. Order: hub, then member. With one
// event-loop thread neither is ever contended.
#include "protocols.hpp"
#include "redis_link.hpp"

#include <coserve/connection.hpp>
#include <coserve/lines.hpp>
#include <coserve/service.hpp>
#include <coserve/token_bucket.hpp>

#include <boost/asio/deferred.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/intrusive_ptr.hpp>

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <map>
#include <mutex>
#include <random>
#include <unordered_map>
#include <vector>

namespace coserve::services {
namespace {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

// Guest numbers are unique in the process, across chat instances.
std::atomic<std::uint64_t> next_guest{0};

// ---- messages ---------------------------------------------------------------

class MessagePool;

// One line as sent on the wire (CRLF included), immutable once published.
struct Message {
    std::atomic<std::uint32_t> refs{0};
    MessagePool* pool = nullptr;
    std::string text;
};

// Recycles Messages, so the data path allocates nothing in the steady state.
class MessagePool {
public:
    ~MessagePool() {
        for (auto* m : free_) delete m;
    }

    Message* acquire() {
        {
            std::lock_guard lock(mutex_);
            if (!free_.empty()) {
                Message* m = free_.back();
                free_.pop_back();
                return m;
            }
        }
        auto* m = new Message;
        m->pool = this;
        return m;
    }

    void recycle(Message* m) {
        if (m->text.capacity() <= 8192) {
            std::lock_guard lock(mutex_);
            if (free_.size() < max_free) {
                free_.push_back(m);
                return;
            }
        }
        delete m;
    }

private:
    static constexpr std::size_t max_free = 4096;
    std::mutex mutex_;
    std::vector<Message*> free_;
};

void intrusive_ptr_add_ref(Message* m) noexcept {
    m->refs.fetch_add(1, std::memory_order_relaxed);
}

void intrusive_ptr_release(Message* m) noexcept {
    if (m->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) m->pool->recycle(m);
}

using MessageRef = boost::intrusive_ptr<Message>;

// ---- a bounded ring, grown on demand up to its bound -----------------------

template <class T>
class Ring {
public:
    explicit Ring(std::size_t bound) : bound_(bound) {}
    bool full() const noexcept { return size_ == bound_; }
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }

    void push(T value) {  // precondition: !full()
        if (size_ == slots_.size()) grow();
        slots_[(head_ + size_) % slots_.size()] = std::move(value);
        ++size_;
    }
    T pop() {  // precondition: !empty()
        T value = std::move(slots_[head_]);
        head_ = (head_ + 1) % slots_.size();
        --size_;
        return value;
    }
    const T& at(std::size_t i) const { return slots_[(head_ + i) % slots_.size()]; }
    template <class F>
    void for_each(F&& f) const {
        for (std::size_t i = 0; i < size_; ++i) f(slots_[(head_ + i) % slots_.size()]);
    }

private:
    void grow() {
        std::vector<T> bigger(std::min(bound_, std::max<std::size_t>(16, slots_.size() * 2)));
        for (std::size_t i = 0; i < size_; ++i) bigger[i] = std::move(slots_[(head_ + i) % slots_.size()]);
        slots_ = std::move(bigger);
        head_ = 0;
    }

    std::size_t bound_;
    std::vector<T> slots_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

// ---- members and rooms ------------------------------------------------------

struct Room;

// Shared by a client's reader and writer coroutines (hence shared_ptr).
struct Member : std::enable_shared_from_this<Member> {
    Member(asio::any_io_executor ex, std::size_t max_queue) : executor(ex), queue(max_queue), wake(ex), done(ex), answer(ex) {}

    asio::any_io_executor executor;
    // Guarded by the hub's mutex.
    std::string nick;
    Room* room = nullptr;
    std::size_t index = 0;  // position in room->members
    // Guarded by `mutex`: the queue and the socket's send side. Any thread
    // may send, under the lock, while fd >= 0.
    std::mutex mutex;
    int fd = -1;
    Connection* connection = nullptr;
    Ring<MessageRef> queue;
    std::size_t sent_of_head = 0;  // bytes of queue's first message already sent
    bool pending = false;          // the kernel was full: the writer owns flushing
    bool in_flush_list = false;
    bool waiting = false;          // the writer sleeps on `wake`
    bool closing = false;          // the writer exits once nothing is pending
    std::uint64_t bytes_out = 0;
    // Set once, from any thread: the member is being dropped.
    std::atomic<bool> dead{false};
    std::atomic<bool> too_slow{false};
    // On the member's executor only.
    asio::steady_timer wake;
    asio::steady_timer done;
    bool writer_done = false;
    // The reader's pending question to the cluster (Chat::ask).
    asio::steady_timer answer;
    std::optional<detail::RedisReply> reply;
    unsigned ask_seq = 0;
    // Rate limit (reader only).
    TokenBucket bucket;
    // How the line being handled ended: replies to it end the same way (reader only).
    std::string_view eol = "\r\n";
};

// The members whose queues one sender touched; flushed when its input runs dry.
using FlushList = std::vector<std::shared_ptr<Member>>;

struct Room {
    std::string name;
    std::vector<std::shared_ptr<Member>> members;
    Ring<MessageRef> history;
    explicit Room(std::string n, std::size_t history_lines) : name(std::move(n)), history(std::max<std::size_t>(1, history_lines)) {}
};

struct ChatOptions {
    std::optional<detail::RedisAddress> redis;  // backend = redis://...; none: local
    std::string redis_password;
    std::string redis_prefix;
    std::string log_name;  // the section, for the link's log lines
    std::chrono::seconds cluster_ttl{30};  // expiry of names and membership in Redis
    std::string room;
    std::size_t history;
    std::size_t max_clients;
    std::size_t max_queue;
    Rate rate;  // lines per second; 0 = no limit
};

// "* N in #room: a, b, c", names in case-insensitive order.
std::string who_text(std::string_view room, std::vector<std::string> names) {
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
        auto ka = chat_key(a), kb = chat_key(b);
        return ka != kb ? ka < kb : a < b;
    });
    std::string text = "* " + std::to_string(names.size()) + " in #" + std::string(room) + ": ";
    for (std::size_t i = 0; i < names.size(); ++i) text.append(i ? ", " : "").append(names[i]);
    return text;
}

// Rooms by chat_key: display name and members.
using RoomCounts = std::map<std::string, std::pair<std::string, std::size_t>>;

// "* N rooms: #a (2), #b (1)"
std::string rooms_text(const RoomCounts& rooms) {
    std::string text = "* " + std::to_string(rooms.size()) + (rooms.size() == 1 ? " room: " : " rooms: ");
    bool first = true;
    for (const auto& [key, room] : rooms) {
        text.append(first ? "#" : ", #").append(room.first).append(" (").append(std::to_string(room.second)).append(")");
        first = false;
    }
    return text;
}

// Redis scripts (EVAL; each runs atomically in Redis).
// Claims or refreshes a name for this daemon: 1 if it is ours now, 0 if another has it.
constexpr std::string_view claim_script = R"(local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('EXPIRE', KEYS[1], ARGV[2]) return 1 end
if v then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1)";
// Releases a name if it is ours.
constexpr std::string_view release_script = R"(if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0)";
// Rewrites this daemon's membership hash (nick -> room) and marks the daemon
// alive in the daemons set (scored by Redis' clock, in ms); forgets daemons
// silent for longer than the ttl.
constexpr std::string_view refresh_script = R"(local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]) * 1000)
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1)";
// Every live daemon's members: daemon, nick, room, daemon, nick, room, ...
constexpr std::string_view who_script = R"(local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[2]) * 1000, '+inf')
local out = {}
for _, id in ipairs(ids) do
  local h = redis.call('HGETALL', ARGV[1] .. id)
  for i = 1, #h, 2 do out[#out + 1] = id; out[#out + 1] = h[i]; out[#out + 1] = h[i + 1] end
end
return out)";

// ---- the hub: one per chat instance -----------------------------------------

class Chat final : public Service {
public:
    explicit Chat(ChatOptions o)
        : o_(std::move(o)), room_channel_(o_.redis_prefix + ":room:"), user_channel_(o_.redis_prefix + ":user:"),
          nick_prefix_(o_.redis_prefix + ":nick:"), who_prefix_(o_.redis_prefix + ":who:"),
          history_prefix_(o_.redis_prefix + ":history:"), daemons_key_(o_.redis_prefix + ":daemons"),
          guests_key_(o_.redis_prefix + ":guests"), ttl_(std::to_string(o_.cluster_ttl.count())) {
        std::random_device rd;
        char id[32];
        std::snprintf(id, sizeof id, "%08x%08x-%d", rd(), rd(), static_cast<int>(::getpid()));
        id_ = id;
        who_key_ = who_prefix_ + id_;
    }
    ~Chat() override { stop(); }

    asio::awaitable<void> serve(Connection& c) override;
    void start(const asio::any_io_executor& executor) override;
    // After the sessions (Service::stop): the link goes, and with it, once
    // its last handler has run, its strand and timers.
    void stop() override {
        if (auto link = std::move(link_)) link->stop();
    }

    void metrics(MetricsWriter& w) const override {
        w.add("chat_clients", "gauge", "Chat clients connected.", static_cast<double>(clients_.load()));
        w.add("chat_messages_total", "counter", "Chat lines broadcast to a room (text and /me).",
              static_cast<double>(messages_.load()));
        w.add("chat_deliveries_total", "counter", "Broadcast lines queued for recipients.",
              static_cast<double>(deliveries_.load()));
        w.add("chat_slow_consumers_total", "counter", "Clients dropped because their queue overflowed.",
              static_cast<double>(slow_consumers_.load()));
        w.add("chat_rate_limited_total", "counter",
              "Lines held back by the per-client rate limit (delayed until within the rate, never dropped).",
              static_cast<double>(rate_delayed_.load()));
        w.add("chat_rate_delay_seconds_total", "counter", "Time clients' reading was paused by the rate limit.",
              static_cast<double>(rate_delay_ns_.load()) / 1e9);
        if (!link_) return;
        w.add("chat_cluster_up", "gauge", "1 while the Redis link is up (backend = redis://).", link_->up() ? 1 : 0);
        w.add("chat_cluster_reconnects_total", "counter", "Reconnection attempts to Redis.",
              static_cast<double>(link_->reconnects()));
        w.add("chat_cluster_published_total", "counter", "Events published to the other daemons.",
              static_cast<double>(cluster_published_.load()));
        w.add("chat_cluster_unpublished_total", "counter",
              "Events not published because the Redis link was down (delivered here only).",
              static_cast<double>(cluster_unpublished_.load()));
        w.add("chat_cluster_received_total", "counter", "Events received from the other daemons.",
              static_cast<double>(cluster_received_.load()));
        w.add("chat_cluster_invalid_total", "counter", "Records from Redis that were not a valid event (ignored).",
              static_cast<double>(cluster_invalid_.load()));
    }

private:
    // ---- the cluster (backend = redis://) --------------------------------
    // Hub mutex held: one event of `room` to the other daemons.
    void publish(std::string_view kind, const Room& room, std::string_view nick, std::string_view text) {
        if (!link_) return;
        if (!link_->up()) {
            ++cluster_unpublished_;
            return;
        }
        ++cluster_published_;
        link_->command({"PUBLISH", room_channel_ + chat_key(room.name), chat_event_record(id_, kind, room.name, nick, text)});
    }
    void watch_nick(std::string_view nick) {
        if (link_) link_->subscribe(user_channel_ + chat_key(nick));
    }
    void unwatch_nick(std::string_view nick) {
        if (link_) link_->unsubscribe(user_channel_ + chat_key(nick));
    }
    // Names and membership in Redis (fire and forget; the tick repairs).
    void release_nick(std::string_view nick) {
        if (link_ && link_->up()) link_->command({"EVAL", std::string(release_script), "1", nick_prefix_ + chat_key(nick), id_});
    }
    void who_set(std::string_view nick, std::string_view room) {
        if (link_ && link_->up()) link_->command({"HSET", who_key_, std::string(nick), std::string(room)});
    }
    void who_remove(std::string_view nick) {
        if (link_ && link_->up()) link_->command({"HDEL", who_key_, std::string(nick)});
    }
    void remember_cluster(const Room& room, const MessageRef& line) {
        if (!link_ || !link_->up() || o_.history == 0) return;
        const std::string key = history_prefix_ + chat_key(room.name);
        link_->command({"LPUSH", key, line->text.substr(0, line->text.size() - 2)});
        link_->command({"LTRIM", key, "0", std::to_string(o_.history - 1)});
    }
    asio::awaitable<std::optional<detail::RedisReply>> ask(Member& m, std::vector<std::string> argv);
    asio::awaitable<std::optional<std::vector<std::string>>> cluster_history(Member& m, std::string_view room);
    asio::awaitable<void> handle_cluster(const std::shared_ptr<Member>& self, const ChatCommand& cmd, FlushList& flush);
    void on_cluster_tick(detail::RedisLink& link);
    void on_cluster_message(std::string_view channel, std::string_view payload);
    void on_cluster_state(bool up);
    // Every local member (hub mutex held).
    template <class F>
    void for_each_member_locked(F f) {
        for (auto& [key, room] : rooms_)
            for (auto& member : room->members) f(*member);
    }

    // Lines the server starts end in CRLF; a reply to a line ends as that line did.
    MessageRef make(std::initializer_list<std::string_view> parts, std::string_view eol = "\r\n") {
        MessageRef m(pool_.acquire());
        m->text.clear();
        for (auto p : parts) m->text.append(p);
        m->text.append(eol);
        return m;
    }

    // Queues `m` for one member (flushed later by the sender); drops the
    // member if its queue is full.
    void enqueue(Member& member, const MessageRef& m, FlushList& flush) {
        if (member.dead.load(std::memory_order_relaxed)) return;
        std::lock_guard lock(member.mutex);
        if (member.queue.full()) {
            drop_slow(member);
            return;
        }
        member.queue.push(m);
        if (!member.pending && !member.in_flush_list) {
            member.in_flush_list = true;
            flush.push_back(member.shared_from_this());
        }
    }

    // flush() in slices of `slice` members with a turn of the event loop
    // between them, so a line to 10,000 members does not hold up everyone
    // else on the loop for the 10,000 sends. The sender's own later lines
    // wait for the whole flush; members still in the list keep their place
    // (in_flush_list), so every member's lines stay in order. If the session
    // is cancelled meanwhile, the rest is flushed at once.
    asio::awaitable<void> flush_sliced(FlushList& list) {
        constexpr std::size_t slice = 256;
        std::size_t done = 0;
        try {
            while (list.size() - done > slice) {
                flush_range(list, done, done + slice);
                done += slice;
                const auto executor = co_await asio::this_coro::executor;
                co_await asio::post(executor, asio::deferred);
            }
        } catch (...) {
            flush_range(list, done, list.size());
            list.clear();
            throw;
        }
        flush_range(list, done, list.size());
        list.clear();
    }

    // Sends what the kernel takes of each listed member's queue, one gathered
    // non-blocking send per member; what is left goes to the member's writer.
    void flush(FlushList& list) {
        flush_range(list, 0, list.size());
        list.clear();
    }

    void flush_range(FlushList& list, std::size_t from, std::size_t to) {
        for (std::size_t k = from; k < to; ++k) {
            Member* member = list[k].get();
            std::lock_guard lock(member->mutex);
            member->in_flush_list = false;
            if (!member->pending) send_locked(*member);
        }
    }

    // Member mutex held. Returns true if the queue is now empty.
    bool send_locked(Member& member) {
        constexpr std::size_t max_iov = 64;
        while (!member.queue.empty() && member.fd >= 0 && !member.dead) {
            std::array<iovec, max_iov> iov;
            std::size_t n = std::min(max_iov, member.queue.size());
            for (std::size_t i = 0; i < n; ++i) {
                const std::string& text = member.queue.at(i)->text;
                const std::size_t skip = i == 0 ? member.sent_of_head : 0;
                iov[i] = {const_cast<char*>(text.data()) + skip, text.size() - skip};
            }
            msghdr msg{};
            msg.msg_iov = iov.data();
            msg.msg_iovlen = n;
            const ssize_t sent = ::sendmsg(member.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (sent < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                kill(member);  // the client is gone
                return false;
            }
            member.bytes_out += static_cast<std::size_t>(sent);
            member.connection->touch();
            std::size_t left = static_cast<std::size_t>(sent);
            while (left > 0) {
                const std::size_t rest = member.queue.at(0)->text.size() - member.sent_of_head;
                if (left < rest) {
                    member.sent_of_head += left;
                    break;
                }
                left -= rest;
                member.sent_of_head = 0;
                member.queue.pop();
            }
        }
        if (member.queue.empty()) return true;
        if (!member.pending && !member.dead) {
            member.pending = true;  // the writer waits for room in the socket
            if (member.waiting) {
                member.waiting = false;
                asio::post(member.executor, [self = member.shared_from_this()] { self->wake.cancel(); });
            }
        }
        return false;
    }

    void drop_slow(Member& member) {
        if (member.too_slow.exchange(true)) return;
        ++slow_consumers_;
        kill(member);
    }

    // Ends a member's session from any thread: its reader and writer stop.
    void kill(Member& member) {
        if (member.dead.exchange(true)) return;
        asio::post(member.executor, [self = member.shared_from_this()] {
            if (self->connection) {
                boost::system::error_code ignored;
                self->connection->socket().cancel(ignored);  // ends the pending read and wait
            }
            self->wake.cancel();
        });
    }

    void tell(Member& member, std::initializer_list<std::string_view> parts, FlushList& flush) {
        enqueue(member, make(parts), flush);
    }
    // A reply to the line `member` sent (reader only).
    void reply(Member& member, std::initializer_list<std::string_view> parts, FlushList& flush) {
        enqueue(member, make(parts, member.eol), flush);
    }

    // Everyone in `room` but `except` (hub mutex held).
    void broadcast_locked(Room& room, const MessageRef& m, const Member* except, FlushList& flush) {
        std::uint64_t n = 0;
        for (auto& member : room.members)
            if (member.get() != except) {
                enqueue(*member, m, flush);
                ++n;
            }
        deliveries_.fetch_add(n, std::memory_order_relaxed);  // one atomic add per broadcast, not per recipient
    }

    // Hub mutex held.
    Room& room_locked(const std::string& name) {
        auto key = chat_key(name);
        auto it = rooms_.find(key);
        if (it == rooms_.end()) it = rooms_.emplace(key, std::make_unique<Room>(name, o_.history)).first;
        return *it->second;
    }

    // `history`: the room's recent lines from Redis, oldest first; null: the local ones.
    void enter_locked(const std::shared_ptr<Member>& m, Room& room, bool welcome, FlushList& flush,
                      const std::vector<std::string>* history = nullptr) {
        m->room = &room;
        m->index = room.members.size();
        room.members.push_back(m);
        if (welcome) tell(*m, {"* welcome to #", room.name, ", you are ", m->nick, " (type /help for commands)"}, flush);
        else reply(*m, {"* you joined #", room.name}, flush);
        if (history) {
            for (const auto& line : *history) tell(*m, {line}, flush);
        } else if (o_.history > 0) {
            room.history.for_each([&](const MessageRef& line) { enqueue(*m, line, flush); });
        }
        if (welcome && cluster_down_) tell(*m, {cluster_down_notice}, flush);
        // Membership first: whoever hears the join and asks /who finds it.
        who_set(m->nick, room.name);
        broadcast_locked(room, make({"* ", m->nick, " joined #", room.name}), m.get(), flush);
        publish("join", room, m->nick, "");
    }

    void leave_room_locked(Member& m, std::string_view notice, FlushList& flush) {
        Room* room = m.room;
        if (!room) return;
        auto& list = room->members;
        std::swap(list[m.index], list.back());
        list[m.index]->index = m.index;
        list.pop_back();
        m.room = nullptr;
        if (!notice.empty()) {
            broadcast_locked(*room, make({"* ", m.nick, " ", notice}), &m, flush);
            publish("leave", *room, m.nick, notice);
        }
        if (list.empty()) rooms_.erase(chat_key(room->name));
    }

    void remember_locked(Room& room, const MessageRef& line) {
        if (o_.history == 0) return;
        if (room.history.full()) room.history.pop();
        room.history.push(line);
    }

    // Admits a new client: nickname, room, welcome. False when full.
    // `guest`: a name claimed in the cluster; empty: the next local guestN.
    bool join(const std::shared_ptr<Member>& m, FlushList& flush, const std::string& guest,
              const std::vector<std::string>* history) {
        std::lock_guard lock(mutex_);
        if (nicks_.size() >= o_.max_clients) return false;
        if (!guest.empty() && !nicks_.contains(chat_key(guest))) {
            m->nick = guest;
        } else {
            do m->nick = "guest" + std::to_string(++next_guest);
            while (nicks_.contains(chat_key(m->nick)));
        }
        nicks_.emplace(chat_key(m->nick), m.get());
        clients_ = nicks_.size();
        watch_nick(m->nick);
        enter_locked(m, room_locked(o_.room), true, flush, history);
        return true;
    }

    void quit(Member& m, std::string_view notice, FlushList& flush) {
        std::lock_guard lock(mutex_);
        remove_locked(m, notice, flush);
    }

    // Takes `m` out of its room and of the names, here and in the cluster.
    void remove_locked(Member& m, std::string_view notice, FlushList& flush) {
        who_remove(m.nick);  // before the leave is heard
        leave_room_locked(m, notice, flush);
        if (nicks_.erase(chat_key(m.nick))) {
            unwatch_nick(m.nick);
            release_nick(m.nick);
        }
        clients_ = nicks_.size();
    }

    // A line or an action of `m` to its room, here and to the other daemons.
    void say_locked(Member& m, const MessageRef& msg, std::string_view kind, std::string_view text, FlushList& flush) {
        ++messages_;
        broadcast_locked(*m.room, msg, &m, flush);
        remember_locked(*m.room, msg);
        remember_cluster(*m.room, msg);
        publish(kind, *m.room, m.nick, text);
    }

    // Renames `m` to `name`, which is free here (and claimed in the cluster
    // when there is one), and tells the room.
    void rename_locked(Member& m, const std::string& name, FlushList& flush) {
        const std::string old = m.nick;
        nicks_.erase(chat_key(old));
        m.nick = name;
        nicks_.emplace(chat_key(name), &m);
        if (chat_key(old) != chat_key(name)) {
            release_nick(old);
            unwatch_nick(old);
            watch_nick(m.nick);
        }
        who_remove(old);
        who_set(m.nick, m.room->name);
        reply(m, {"* you are now known as ", m.nick}, flush);
        broadcast_locked(*m.room, make({"* ", old, " is now known as ", m.nick}), &m, flush);
        publish("nick", *m.room, m.nick, old);
    }

    // Moves `self` to the room `target`; `history` as for enter_locked.
    void move_locked(const std::shared_ptr<Member>& self, const std::string& target, FlushList& flush,
                     const std::vector<std::string>* history = nullptr) {
        who_set(self->nick, target);  // before the leave is heard
        leave_room_locked(*self, "left for #" + target, flush);
        enter_locked(self, room_locked(target), false, flush, history);
    }

    // /who or /rooms: this daemon's members, and the other daemons' from
    // `cluster` (the who script's reply: daemon, nick, room, ...) if given.
    void tell_members_locked(Member& m, ChatCommand::Kind kind, const detail::RedisReply* cluster, FlushList& flush) {
        std::vector<std::string> names;
        RoomCounts counts;
        for (auto& [key, room] : rooms_) counts[key] = {room->name, room->members.size()};
        for (auto& member : m.room->members) names.push_back(member->nick);
        const auto here = chat_key(m.room->name);
        if (cluster)
            for (std::size_t i = 0; i + 2 < cluster->elements.size(); i += 3) {
                const std::string& daemon = cluster->elements[i];
                const std::string& nick = cluster->elements[i + 1];
                const std::string& room = cluster->elements[i + 2];
                if (daemon == id_) continue;  // ours come from our own state
                const auto key = chat_key(room);
                auto& count = counts[key];
                if (count.first.empty()) count.first = room;
                ++count.second;
                if (key == here) names.push_back(nick);
            }
        if (kind == ChatCommand::Kind::who) reply(m, {who_text(m.room->name, std::move(names))}, flush);
        else reply(m, {rooms_text(counts)}, flush);
    }

    // The claim script's command for `nick` (claim_script).
    std::vector<std::string> claim_command(std::string_view nick) const {
        return {"EVAL", std::string(claim_script), "1", nick_prefix_ + chat_key(nick), id_, ttl_};
    }

    // One input line from `m`.
    void handle(const std::shared_ptr<Member>& self, const ChatCommand& cmd, bool& quitting, FlushList& flush);
    asio::awaitable<void> pace(Member& m, asio::steady_timer& timer, FlushList& flush);

    asio::awaitable<void> writer(Connection& c, std::shared_ptr<Member> m);

    ChatOptions o_;
    MessagePool pool_;  // before the rooms: their history holds Messages
    std::mutex mutex_;
    std::map<std::string, std::unique_ptr<Room>> rooms_;  // by chat_key(name), so /rooms is sorted
    std::unordered_map<std::string, Member*> nicks_;       // by chat_key(nick)
    std::atomic<std::uint64_t> rate_delayed_{0}, rate_delay_ns_{0};
    std::atomic<std::uint64_t> slow_consumers_{0};
    std::atomic<std::uint64_t> messages_{0};
    std::atomic<std::uint64_t> deliveries_{0};
    std::atomic<std::uint64_t> clients_{0};
    // The cluster.
    std::string id_;  // this daemon's (instance's) id in published events
    const std::string room_channel_, user_channel_;  // "PREFIX:room:", "PREFIX:user:"
    const std::string nick_prefix_, who_prefix_, history_prefix_, daemons_key_, guests_key_, ttl_;
    std::string who_key_;  // PREFIX:who:ID, this daemon's members
    std::shared_ptr<detail::RedisLink> link_;
    bool cluster_down_ = false;  // hub mutex: members have been told the link is down
    std::atomic<std::uint64_t> cluster_published_{0}, cluster_unpublished_{0}, cluster_received_{0},
        cluster_invalid_{0};
    static constexpr std::string_view cluster_down_notice = "* notice: cluster link down, messages reach this server only";
};

const char* const help_lines[] = {
    "* commands:",
    "*   /nick NAME       change your name (1-32 of A-Z a-z 0-9 _ -)",
    "*   /who             who is in this room",
    "*   /me ACTION       say what you do",
    "*   /join ROOM       leave this room for ROOM (created on demand)",
    "*   /rooms           the rooms and how many are in each",
    "*   /msg NAME TEXT   a private message",
    "*   /quit [REASON]   leave",
    "*   //TEXT           send TEXT starting with one /",
    "*   /help            this list",
};

// Fakelag, as IRC servers do it: a client over its rate is not read until
// it is back within it. Its later lines wait in our line buffer and in the
// kernel's (TCP flow control), and none is lost. What it was sent meanwhile
// is flushed first.
// Called when the bucket was found empty (the common case of a token there
// costs no coroutine frame).
asio::awaitable<void> Chat::pace(Member& m, asio::steady_timer& timer, FlushList& flush) {
    ++rate_delayed_;
    co_await flush_sliced(flush);
    while (!m.bucket.take(o_.rate, clock::now())) {
        const auto wait = m.bucket.wait(o_.rate, clock::now());
        rate_delay_ns_ += static_cast<std::uint64_t>(std::chrono::nanoseconds(wait).count());
        timer.expires_after(wait);
        co_await timer.async_wait(asio::deferred);
    }
}

void Chat::handle(const std::shared_ptr<Member>& self, const ChatCommand& cmd, bool& quitting, FlushList& flush) {
    Member& m = *self;
    using K = ChatCommand::Kind;
    std::lock_guard lock(mutex_);
    switch (cmd.kind) {
    case K::text:
        say_locked(m, make({"<", m.nick, "> ", cmd.text}), "msg", cmd.text, flush);
        break;
    case K::me:
        if (cmd.text.empty()) return reply(m, {"* error: usage: /me ACTION"}, flush);
        say_locked(m, make({"* ", m.nick, " ", cmd.text}), "me", cmd.text, flush);
        break;
    case K::nick: {
        if (!valid_chat_name(cmd.arg))
            return reply(m, {"* error: invalid nickname (1-32 of A-Z a-z 0-9 _ -)"}, flush);
        const auto key = chat_key(cmd.arg);
        auto it = nicks_.find(key);
        if (it != nicks_.end() && it->second != &m) return reply(m, {"* error: nickname ", cmd.arg, " is taken"}, flush);
        rename_locked(m, std::string(cmd.arg), flush);
        break;
    }
    case K::who:
    case K::rooms:
        tell_members_locked(m, cmd.kind, nullptr, flush);
        break;
    case K::join: {
        std::string_view name = cmd.arg;
        if (name.starts_with('#')) name.remove_prefix(1);
        if (!valid_chat_name(name)) return reply(m, {"* error: invalid room name (1-32 of A-Z a-z 0-9 _ -)"}, flush);
        if (chat_key(name) == chat_key(m.room->name)) return reply(m, {"* error: you are already in #", m.room->name}, flush);
        move_locked(self, std::string(name), flush);
        break;
    }
    case K::msg: {
        if (cmd.arg.empty() || cmd.text.empty()) return reply(m, {"* error: usage: /msg NAME TEXT"}, flush);
        auto it = nicks_.find(chat_key(cmd.arg));
        if (it != nicks_.end()) {
            enqueue(*it->second, make({"<", m.nick, "> (private) ", cmd.text}), flush);
            break;
        }
        if (!link_ || !link_->up()) return reply(m, {"* error: no such user ", cmd.arg}, flush);
        // Another daemon's user, if any: each daemon subscribes to the
        // channels of its own users, so PUBLISH counts the daemons that
        // have this one (0: nobody has).
        ++cluster_published_;
        link_->command({"PUBLISH", user_channel_ + chat_key(cmd.arg), chat_event_record(id_, "priv", m.room->name, m.nick, cmd.text)},
                       [this, weak = std::weak_ptr<Member>(self), name = std::string(cmd.arg)](const detail::RedisReply& r) {
                           if (r.ok && r.integer > 0) return;
                           auto member = weak.lock();
                           if (!member) return;
                           FlushList list;
                           const std::string_view why = r.ok ? "* error: no such user " : "* error: could not reach user ";
                           tell(*member, {why, name}, list);
                           this->flush(list);
                       });
        break;
    }
    case K::quit:
        remove_locked(m, cmd.text.empty() ? std::string("left") : "left (" + std::string(cmd.text) + ")", flush);
        reply(m, {"* bye"}, flush);
        quitting = true;
        break;
    case K::help:
        for (auto* h : help_lines) reply(m, {h}, flush);
        break;
    case K::unknown:
        reply(m, {"* error: unknown command /", cmd.arg, " (try /help)"}, flush);
        break;
    case K::empty:
        break;
    }
}

void Chat::start(const asio::any_io_executor& executor) {
    if (!o_.redis) return;
    detail::RedisLink::Options lo{*o_.redis, o_.redis_password, o_.log_name};
    link_ = detail::RedisLink::create(
        executor, lo, {room_channel_ + "*"},
        [this](std::string_view channel, std::string_view payload) { on_cluster_message(channel, payload); },
        [this](bool up) { on_cluster_state(up); });
    link_->set_tick(std::chrono::duration_cast<std::chrono::milliseconds>(o_.cluster_ttl) / 3,
                    [this, weak = std::weak_ptr<detail::RedisLink>(link_)] {
                        if (auto link = weak.lock()) on_cluster_tick(*link);
                    });
    link_->start();
}

// Sends a command for `m`'s reader and waits for the reply, at most 5 s:
// nullopt when the link is down or drops, or the wait ends first.
asio::awaitable<std::optional<detail::RedisReply>> Chat::ask(Member& m, std::vector<std::string> argv) {
    if (!link_ || !link_->up()) co_return std::nullopt;
    const unsigned seq = ++m.ask_seq;
    m.reply.reset();
    m.answer.expires_after(std::chrono::seconds(5));
    link_->command(std::move(argv), [weak = m.weak_from_this(), seq](const detail::RedisReply& r) {
        auto self = weak.lock();
        if (!self) return;
        asio::post(self->executor, [self, seq, r] {
            if (seq != self->ask_seq) return;  // the reader stopped waiting
            self->reply = r;
            self->answer.cancel();
        });
    });
    co_await m.answer.async_wait(asio::as_tuple(asio::deferred));
    ++m.ask_seq;
    std::optional<detail::RedisReply> r = std::move(m.reply);
    m.reply.reset();
    if (r && !r->ok && r->text.empty()) co_return std::nullopt;  // no reply: the link went down
    co_return r;
}

// The room's recent lines from Redis, oldest first; nullopt: use the local ones.
asio::awaitable<std::optional<std::vector<std::string>>> Chat::cluster_history(Member& m, std::string_view room) {
    if (o_.history == 0) co_return std::vector<std::string>{};
    std::vector<std::string> argv{"LRANGE", history_prefix_ + chat_key(room), "0", std::to_string(o_.history - 1)};
    auto r = co_await ask(m, std::move(argv));
    if (!r || !r->ok) co_return std::nullopt;
    std::vector<std::string> lines(r->elements.rbegin(), r->elements.rend());
    co_return lines;
}

// /nick, /who, /rooms and /join with the cluster's names, members and history.
// `cmd` points into the line reader's buffer, which stays as it is until
// the session reads again, after this returns.
asio::awaitable<void> Chat::handle_cluster(const std::shared_ptr<Member>& self, const ChatCommand& cmd, FlushList& flush) {
    Member& m = *self;
    using K = ChatCommand::Kind;
    switch (cmd.kind) {
    case K::nick: {
        if (!valid_chat_name(cmd.arg)) {
            reply(m, {"* error: invalid nickname (1-32 of A-Z a-z 0-9 _ -)"}, flush);
            co_return;
        }
        const std::string name(cmd.arg), key = chat_key(cmd.arg);
        {
            std::lock_guard lock(mutex_);
            auto it = nicks_.find(key);
            if (it != nicks_.end() && it->second != &m) {
                reply(m, {"* error: nickname ", name, " is taken"}, flush);
                co_return;
            }
        }
        const bool new_key = chat_key(m.nick) != key;  // m.nick changes only on this reader
        if (new_key) {
            auto argv = claim_command(name);
            auto r = co_await ask(m, std::move(argv));
            if (r && r->ok && r->integer != 1) {
                reply(m, {"* error: nickname ", name, " is taken"}, flush);
                co_return;
            }
            // No answer (the link is down): the name is checked on this daemon only.
        }
        std::lock_guard lock(mutex_);
        auto it = nicks_.find(key);
        if ((it != nicks_.end() && it->second != &m) || !m.room) {  // taken here meanwhile
            if (new_key) release_nick(name);
            reply(m, {"* error: nickname ", name, " is taken"}, flush);
            co_return;
        }
        rename_locked(m, name, flush);
        co_return;
    }
    case K::who:
    case K::rooms: {
        std::vector<std::string> argv{"EVAL", std::string(who_script), "1", daemons_key_, who_prefix_, ttl_};
        auto r = co_await ask(m, std::move(argv));
        std::lock_guard lock(mutex_);
        if (!m.room) co_return;
        tell_members_locked(m, cmd.kind, r && r->ok ? &*r : nullptr, flush);
        co_return;
    }
    case K::join: {
        std::string_view name = cmd.arg;
        if (name.starts_with('#')) name.remove_prefix(1);
        if (!valid_chat_name(name)) {
            reply(m, {"* error: invalid room name (1-32 of A-Z a-z 0-9 _ -)"}, flush);
            co_return;
        }
        const std::string target(name);
        {
            std::lock_guard lock(mutex_);
            if (!m.room || chat_key(target) == chat_key(m.room->name)) {
                if (m.room) reply(m, {"* error: you are already in #", m.room->name}, flush);
                co_return;
            }
        }
        // The history first, then the room: a line said in between may be
        // missed by the newcomer, but none is shown twice.
        const auto history = co_await cluster_history(m, target);
        std::lock_guard lock(mutex_);
        if (!m.room || chat_key(target) == chat_key(m.room->name)) co_return;
        move_locked(self, target, flush, history ? &*history : nullptr);
        co_return;
    }
    default:
        co_return;
    }
}

// Every ttl/3 while the link is up: this daemon's names and members stay in Redis.
void Chat::on_cluster_tick(detail::RedisLink& link) {
    std::vector<std::string> refresh{"EVAL", std::string(refresh_script), "2", daemons_key_, who_key_, id_, ttl_};
    std::vector<std::string> nicks;
    {
        std::lock_guard lock(mutex_);
        for_each_member_locked([&](Member& member) {
            refresh.push_back(member.nick);
            refresh.push_back(member.room->name);
            nicks.push_back(member.nick);
        });
    }
    link.command(std::move(refresh));
    for (auto& nick : nicks)
        link.command(claim_command(nick), [log_name = o_.log_name, nick](const detail::RedisReply& r) {
            if (r.ok && r.integer == 0)
                COSERVE_LOG(Severity::warning, log_name, "")
                    << "nickname " << nick << " is also in use on another daemon (given out while the cluster link was down)";
        });
}

// An event from another daemon (on the link's strand).
void Chat::on_cluster_message(std::string_view channel, std::string_view payload) {
    const auto e = parse_chat_event(payload);
    if (!e) {
        ++cluster_invalid_;
        return;
    }
    if (e->daemon == id_) return;  // ours: delivered here already
    ++cluster_received_;
    FlushList list;
    {
        std::lock_guard lock(mutex_);
        if (channel.starts_with(user_channel_)) {
            auto it = nicks_.find(std::string(channel.substr(user_channel_.size())));
            if (e->kind == "priv" && it != nicks_.end())
                enqueue(*it->second, make({"<", e->nick, "> (private) ", e->text}), list);
        } else {
            auto it = rooms_.find(chat_key(e->room));
            if (it == rooms_.end()) return;  // nobody here is in that room
            Room& room = *it->second;
            MessageRef m;
            if (e->kind == "msg") m = make({"<", e->nick, "> ", e->text});
            else if (e->kind == "me") m = make({"* ", e->nick, " ", e->text});
            else if (e->kind == "join") m = make({"* ", e->nick, " joined #", room.name});
            else if (e->kind == "leave") m = make({"* ", e->nick, " ", e->text});
            else if (e->kind == "nick") m = make({"* ", e->text, " is now known as ", e->nick});
            else return;
            broadcast_locked(room, m, nullptr, list);
            if (e->kind == "msg" || e->kind == "me") remember_locked(room, m);
        }
    }
    flush(list);
}

// The link went down (once per outage) or came up (on the link's strand).
void Chat::on_cluster_state(bool up) {
    FlushList list;
    {
        std::lock_guard lock(mutex_);
        if (up == !cluster_down_) return;
        cluster_down_ = !up;
        const std::string_view notice = up ? std::string_view("* notice: cluster link restored") : cluster_down_notice;
        const MessageRef m = make({notice});
        for_each_member_locked([&](Member& member) { enqueue(member, m, list); });
    }
    flush(list);
}

// The commands that ask the cluster when there is one.
bool needs_cluster(ChatCommand::Kind kind) {
    using K = ChatCommand::Kind;
    return kind == K::nick || kind == K::who || kind == K::rooms || kind == K::join;
}

asio::awaitable<void> Chat::writer(Connection& c, std::shared_ptr<Member> m) {
    for (;;) {
        bool sleep = false;
        {
            std::lock_guard lock(m->mutex);
            if (m->dead) co_return;
            if (!m->pending) {
                if (m->closing) co_return;
                m->waiting = true;
                sleep = true;
            }
        }
        if (sleep) {  // until a sender finds the socket full and hands the queue over
            m->wake.expires_at(asio::steady_timer::time_point::max());
            co_await m->wake.async_wait(asio::as_tuple(asio::deferred));
            continue;
        }
        auto [ec] = co_await c.socket().async_wait(asio::ip::tcp::socket::wait_write, asio::as_tuple(asio::deferred));
        if (ec) co_return;  // cancelled: the session is ending
        std::lock_guard lock(m->mutex);
        if (send_locked(*m)) m->pending = false;
    }
}

asio::awaitable<void> Chat::serve(Connection& c) {
    auto m = std::make_shared<Member>(c.socket().get_executor(), o_.max_queue);
    {
        std::lock_guard lock(m->mutex);
        m->connection = &c;
        m->fd = c.socket().native_handle();
    }
    m->bucket = TokenBucket(o_.rate, clock::now());
    FlushList pending;
    // In a cluster: a guest number no daemon has given out, and the room's
    // history from Redis. Without the link: local ones.
    std::string guest;
    std::optional<std::vector<std::string>> history;
    if (link_ && link_->up()) {
        for (int attempt = 0; attempt < 5 && guest.empty(); ++attempt) {
            std::vector<std::string> incr{"INCR", guests_key_};
            auto n = co_await ask(*m, std::move(incr));
            if (!n || !n->ok) break;
            const std::string name = "guest" + std::to_string(n->integer);
            auto argv = claim_command(name);
            auto claim = co_await ask(*m, std::move(argv));
            if (!claim || !claim->ok) break;
            if (claim->integer == 1) guest = name;
        }
        history = co_await cluster_history(*m, o_.room);
    }
    if (!join(m, pending, guest, history ? &*history : nullptr)) {
        if (!guest.empty()) release_nick(guest);
        {
            std::lock_guard lock(m->mutex);
            m->fd = -1;
            m->connection = nullptr;
        }
        const std::string full = "* error: chat is full (" + std::to_string(o_.max_clients) + " clients)\r\n";
        co_await c.write(asio::buffer(full));
        co_return;
    }
    bool quitting = false;
    bool writer_started = false;
    std::exception_ptr failure;
    try {  // from here on every exit goes through the clean-up below
        co_await flush_sliced(pending);
        m->done.expires_at(asio::steady_timer::time_point::max());
        asio::co_spawn(m->executor, writer(c, m), [this, m](std::exception_ptr) {
            m->writer_done = true;
            m->done.cancel();
            bool closing = false;
            {
                std::lock_guard lock(m->mutex);
                closing = m->closing;
            }
            if (!closing) kill(*m);  // the writer failed first: end the reader too
        });
        writer_started = true;
        LineReader lines(c, c.options().max_line, Duration::zero());
        asio::steady_timer pacer(m->executor);
        const std::string too_long = "* error: line too long (max " + std::to_string(c.options().max_line) + " bytes)";
        std::size_t since_flush = 0;
        while (!quitting && !m->dead) {
            // Flush when the input runs dry, and every 64 lines of a long burst.
            if (!pending.empty() && (!lines.ready() || ++since_flush >= 64)) {
                co_await flush_sliced(pending);
                since_flush = 0;
            }
            Line line = co_await lines.next();
            if (line.kind == Line::Kind::end || m->dead) break;
            if (line.kind == Line::Kind::too_long) {
                tell(*m, {too_long}, pending);
                continue;
            }
            const ChatCommand cmd = parse_chat_line(line.text);
            if (cmd.kind == ChatCommand::Kind::empty) continue;
            m->eol = line.ending == "\n" ? "\n" : "\r\n";  // literals: the line's own bytes go with the next read
            if (o_.rate.limited() && !m->bucket.take(o_.rate, clock::now())) co_await pace(*m, pacer, pending);
            if (link_ && link_->up() && needs_cluster(cmd.kind)) {
                co_await flush_sliced(pending);
                co_await handle_cluster(m, cmd, pending);
            } else {
                handle(m, cmd, quitting, pending);
            }
        }
    } catch (...) {
        failure = std::current_exception();
        if (!writer_started) m->writer_done = true;
    }

    // Clean-up runs even when the framework cancelled the session.
    co_await asio::this_coro::throw_if_cancelled(false);
    const bool slow = m->too_slow;
    if (!quitting) quit(*m, slow ? "left (too slow)" : "left", pending);
    flush(pending);  // the room hears the leave; after /quit we get "* bye"
    {
        std::lock_guard lock(m->mutex);
        m->closing = true;
    }
    if (!quitting || slow) {
        m->dead = true;
        boost::system::error_code ignored;
        c.socket().cancel(ignored);
    }
    m->wake.cancel();
    // Wait for the writer: after /quit it may still be flushing "* bye" to a
    // client that does not read; give it 5 s, and stop it at once if the
    // framework cancels us (shutdown, idle timeout), even if that signal came
    // while nothing was pending.
    m->done.expires_after(std::chrono::seconds(5));
    while (!m->writer_done) {
        co_await m->done.async_wait(asio::as_tuple(asio::deferred));
        const auto state = co_await asio::this_coro::cancellation_state;
        if (!m->writer_done &&
            (state.cancelled() != asio::cancellation_type::none || clock::now() >= m->done.expiry() || !quitting)) {
            m->dead = true;
            boost::system::error_code ignored;
            c.socket().cancel(ignored);
            m->wake.cancel();
            m->done.expires_at(asio::steady_timer::time_point::max());
        }
    }
    {
        std::lock_guard lock(m->mutex);
        m->fd = -1;  // no sender may touch the socket once we return
        m->connection = nullptr;
        c.add_bytes_out(m->bytes_out);
    }
    if (slow) {
        // Best effort: the client is not reading, so this may not arrive.
        static constexpr std::string_view bye = "\r\n* error: too slow, disconnected\r\n";
        boost::system::error_code ignored;
        c.socket().non_blocking(true, ignored);
        c.socket().send(asio::buffer(bye.data(), bye.size()), 0, ignored);
        co_return;
    }
    if (failure && !quitting) std::rethrow_exception(failure);
    c.shutdown_send();
}

}  // namespace

extern const ServiceType chat_service{
    "chat",
    [](Section& s, const InstanceOptions&) -> std::unique_ptr<Service> {
        ChatOptions o;
        const std::string backend = s.string("backend", "local");
        if (backend != "local") {
            o.redis = detail::parse_redis_url(backend);
            if (!o.redis) s.fail("backend", "expected local or redis://HOST:PORT[/DB] with a numeric HOST (no name is resolved)");
        }
        o.redis_password = s.secret("redis_password");
        o.redis_prefix = s.string("redis_prefix", "coserve");
        o.cluster_ttl = std::chrono::duration_cast<std::chrono::seconds>(
            s.duration("cluster_ttl", std::chrono::seconds(30), std::chrono::seconds(3), std::chrono::hours(24)));
        if (o.redis_prefix.empty() || o.redis_prefix.size() > 64 ||
            o.redis_prefix.find_first_of(" \t\r\n*?[]") != std::string::npos)
            s.fail("redis_prefix", "expected 1-64 characters without blanks or * ? [ ]");
        o.room = s.string("room", "lobby");
        if (!valid_chat_name(o.room)) s.fail("room", "expected 1-32 of A-Z a-z 0-9 _ -");
        o.history = static_cast<std::size_t>(s.integer("history", 20, 0, 10'000));
        o.max_clients = static_cast<std::size_t>(s.integer("max_clients", 1000, 1, 10'000'000));
        o.max_queue = static_cast<std::size_t>(s.integer("max_queue", 1024, 1, 1'000'000));
        if (o.history >= o.max_queue)
            s.fail("history", "must be smaller than max_queue (" + std::to_string(o.max_queue) +
                                  "): a newcomer gets the history and the welcome in its queue");
        o.rate = s.rate("rate", "20/s", "burst", 40);
        o.log_name = s.name();
        return std::make_unique<Chat>(std::move(o));
    },
    true, false, 4096};

}  // namespace coserve::services
