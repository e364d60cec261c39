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

#include <coserve/connection.hpp>
#include <coserve/lines.hpp>
#include <coserve/service.hpp>

#include <boost/asio/deferred.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/intrusive_ptr.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace coserve::services {
namespace {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

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
    Member(asio::any_io_executor ex, std::size_t max_queue) : executor(ex), queue(max_queue), wake(ex), done(ex) {}

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
    // Rate limit (reader only).
    double tokens = 0;
    clock::time_point refill{};
    bool told_slow_down = false;
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
    std::string room;
    std::size_t history;
    std::size_t max_clients;
    std::size_t max_queue;
    double rate;  // lines per second; 0 = no limit
    double burst;
};

// ---- the hub: one per chat instance -----------------------------------------

class Chat final : public Service {
public:
    explicit Chat(ChatOptions o) : o_(std::move(o)) {}

    asio::awaitable<void> serve(Connection& c) override;

    void metrics(MetricsWriter& w) const override {
        w.add("chat_clients", "gauge", "Chat clients connected.", static_cast<double>(clients_.load()));
        w.add("chat_messages_total", "counter", "Chat lines broadcast to a room (text and /me).",
              static_cast<double>(messages_.load()));
        w.add("chat_deliveries_total", "counter", "Broadcast lines queued for recipients.",
              static_cast<double>(deliveries_.load()));
        w.add("chat_slow_consumers_total", "counter", "Clients dropped because their queue overflowed.",
              static_cast<double>(slow_consumers_.load()));
        w.add("chat_rate_limited_total", "counter", "Lines dropped by the per-client rate limit.",
              static_cast<double>(rate_dropped_.load()));
    }

private:
    MessageRef make(std::initializer_list<std::string_view> parts) {
        MessageRef m(pool_.acquire());
        m->text.clear();
        for (auto p : parts) m->text.append(p);
        m->text.append("\r\n");
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

    void enter_locked(const std::shared_ptr<Member>& m, Room& room, bool welcome, FlushList& flush) {
        m->room = &room;
        m->index = room.members.size();
        room.members.push_back(m);
        if (welcome) tell(*m, {"* welcome to #", room.name, ", you are ", m->nick, " (type /help for commands)"}, flush);
        else tell(*m, {"* you joined #", room.name}, flush);
        if (o_.history > 0) room.history.for_each([&](const MessageRef& line) { enqueue(*m, line, flush); });
        broadcast_locked(room, make({"* ", m->nick, " joined #", room.name}), m.get(), flush);
    }

    void leave_room_locked(Member& m, std::string_view notice, FlushList& flush) {
        Room* room = m.room;
        if (!room) return;
        auto& list = room->members;
        std::swap(list[m.index], list.back());
        list[m.index]->index = m.index;
        list.pop_back();
        m.room = nullptr;
        if (!notice.empty()) broadcast_locked(*room, make({"* ", m.nick, " ", notice}), &m, flush);
        if (list.empty()) rooms_.erase(chat_key(room->name));
    }

    void remember_locked(Room& room, const MessageRef& line) {
        if (o_.history == 0) return;
        if (room.history.full()) room.history.pop();
        room.history.push(line);
    }

    // Admits a new client: nickname, room, welcome. False when full.
    bool join(const std::shared_ptr<Member>& m, FlushList& flush) {
        std::lock_guard lock(mutex_);
        if (nicks_.size() >= o_.max_clients) return false;
        do m->nick = "guest" + std::to_string(++guest_counter_);
        while (nicks_.contains(chat_key(m->nick)));
        nicks_.emplace(chat_key(m->nick), m.get());
        clients_ = nicks_.size();
        enter_locked(m, room_locked(o_.room), true, flush);
        return true;
    }

    void quit(Member& m, std::string_view notice, FlushList& flush) {
        std::lock_guard lock(mutex_);
        leave_room_locked(m, notice, flush);
        nicks_.erase(chat_key(m.nick));
        clients_ = nicks_.size();
    }

    // One input line from `m`.
    void handle(const std::shared_ptr<Member>& self, std::string_view line, bool& quitting, FlushList& flush);
    bool allow(Member& m, FlushList& flush);

    asio::awaitable<void> writer(Connection& c, std::shared_ptr<Member> m);

    ChatOptions o_;
    MessagePool pool_;  // before the rooms: their history holds Messages
    std::mutex mutex_;
    std::map<std::string, std::unique_ptr<Room>> rooms_;  // by chat_key(name), so /rooms is sorted
    std::unordered_map<std::string, Member*> nicks_;       // by chat_key(nick)
    std::uint64_t guest_counter_ = 0;
    std::atomic<std::uint64_t> rate_dropped_{0};
    std::atomic<std::uint64_t> slow_consumers_{0};
    std::atomic<std::uint64_t> messages_{0};
    std::atomic<std::uint64_t> deliveries_{0};
    std::atomic<std::uint64_t> clients_{0};
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
};

bool Chat::allow(Member& m, FlushList& flush) {
    if (o_.rate <= 0) return true;
    const auto now = clock::now();
    const double elapsed = std::chrono::duration<double>(now - m.refill).count();
    m.refill = now;
    m.tokens = std::min(o_.burst, m.tokens + elapsed * o_.rate);
    if (m.tokens >= 1) {
        m.tokens -= 1;
        m.told_slow_down = false;
        return true;
    }
    ++rate_dropped_;
    if (!m.told_slow_down) tell(m, {"* error: slow down"}, flush);
    m.told_slow_down = true;
    return false;
}

void Chat::handle(const std::shared_ptr<Member>& self, std::string_view line, bool& quitting, FlushList& flush) {
    Member& m = *self;
    const ChatCommand cmd = parse_chat_line(line);
    using K = ChatCommand::Kind;
    if (cmd.kind == K::empty) return;
    if (!allow(m, flush)) return;
    std::lock_guard lock(mutex_);
    switch (cmd.kind) {
    case K::text: {
        auto msg = make({"<", m.nick, "> ", cmd.text});
        ++messages_;
        broadcast_locked(*m.room, msg, &m, flush);
        remember_locked(*m.room, msg);
        break;
    }
    case K::me: {
        if (cmd.text.empty()) return tell(m, {"* error: usage: /me ACTION"}, flush);
        auto msg = make({"* ", m.nick, " ", cmd.text});
        ++messages_;
        broadcast_locked(*m.room, msg, &m, flush);
        remember_locked(*m.room, msg);
        break;
    }
    case K::nick: {
        if (!valid_chat_name(cmd.arg))
            return tell(m, {"* error: invalid nickname (1-32 of A-Z a-z 0-9 _ -)"}, flush);
        const auto key = chat_key(cmd.arg);
        auto it = nicks_.find(key);
        if (it != nicks_.end() && it->second != &m) return tell(m, {"* error: nickname ", cmd.arg, " is taken"}, flush);
        const std::string old = m.nick;
        nicks_.erase(chat_key(old));
        m.nick = cmd.arg;
        nicks_.emplace(key, &m);
        tell(m, {"* you are now known as ", m.nick}, flush);
        broadcast_locked(*m.room, make({"* ", old, " is now known as ", m.nick}), &m, flush);
        break;
    }
    case K::who: {
        std::vector<std::string_view> names;
        for (auto& member : m.room->members) names.push_back(member->nick);
        std::sort(names.begin(), names.end(), [](std::string_view a, std::string_view b) {
            auto ka = chat_key(a), kb = chat_key(b);
            return ka != kb ? ka < kb : a < b;
        });
        std::string list;
        for (auto n : names) list.append(list.empty() ? "" : ", ").append(n);
        tell(m, {"* ", std::to_string(names.size()), " in #", m.room->name, ": ", list}, flush);
        break;
    }
    case K::join: {
        std::string_view name = cmd.arg;
        if (name.starts_with('#')) name.remove_prefix(1);
        if (!valid_chat_name(name)) return tell(m, {"* error: invalid room name (1-32 of A-Z a-z 0-9 _ -)"}, flush);
        if (chat_key(name) == chat_key(m.room->name)) return tell(m, {"* error: you are already in #", m.room->name}, flush);
        const std::string target(name);
        leave_room_locked(m, "left for #" + target, flush);
        enter_locked(self, room_locked(target), false, flush);
        break;
    }
    case K::rooms: {
        std::string list;
        for (auto& [key, room] : rooms_)
            list.append(list.empty() ? "" : ", ").append("#").append(room->name).append(" (")
                .append(std::to_string(room->members.size())).append(")");
        tell(m, {"* ", std::to_string(rooms_.size()), rooms_.size() == 1 ? " room: " : " rooms: ", list}, flush);
        break;
    }
    case K::msg: {
        if (cmd.arg.empty() || cmd.text.empty()) return tell(m, {"* error: usage: /msg NAME TEXT"}, flush);
        auto it = nicks_.find(chat_key(cmd.arg));
        if (it == nicks_.end()) return tell(m, {"* error: no such user ", cmd.arg}, flush);
        enqueue(*it->second, make({"<", m.nick, "> (private) ", cmd.text}), flush);
        break;
    }
    case K::quit:
        leave_room_locked(m, cmd.text.empty() ? std::string("left") : "left (" + std::string(cmd.text) + ")", flush);
        nicks_.erase(chat_key(m.nick));
        clients_ = nicks_.size();
        tell(m, {"* bye"}, flush);
        quitting = true;
        break;
    case K::help:
        for (auto* h : help_lines) tell(m, {h}, flush);
        break;
    case K::unknown:
        tell(m, {"* error: unknown command /", cmd.arg, " (try /help)"}, flush);
        break;
    case K::empty:
        break;
    }
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
    m->tokens = o_.burst;
    m->refill = clock::now();
    FlushList pending;
    if (!join(m, pending)) {
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
            if (line.kind == Line::Kind::too_long) tell(*m, {too_long}, pending);
            else handle(m, line.text, quitting, pending);
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
        o.room = s.string("room", "lobby");
        if (!valid_chat_name(o.room)) s.fail("room", "expected 1-32 of A-Z a-z 0-9 _ -");
        o.history = static_cast<std::size_t>(s.integer("history", 20, 0, 10'000));
        o.max_clients = static_cast<std::size_t>(s.integer("max_clients", 1000, 1, 10'000'000));
        o.max_queue = static_cast<std::size_t>(s.integer("max_queue", 1024, 1, 1'000'000));
        if (o.history >= o.max_queue)
            s.fail("history", "must be smaller than max_queue (" + std::to_string(o.max_queue) +
                                  "): a newcomer gets the history and the welcome in its queue");
        const Rate rate = s.rate("rate", "20/s", "burst", 40);
        o.rate = rate.per_second;
        o.burst = rate.burst;
        return std::make_unique<Chat>(std::move(o));
    },
    true, false, 4096};

}  // namespace coserve::services
