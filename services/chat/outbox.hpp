// chat: a member and the delivery of lines into its outbox.
//
// A Member is shared by its session's reader and its writer coroutine (hence
// shared_ptr) and reached by other members' senders. A sender enqueues a
// reference to a Message in each recipient's bounded queue, then, once its
// input runs dry, flushes the queues it touched: one gathered non-blocking
// send per recipient, so a burst lands in the kernel's buffers instead of
// ours. What the kernel does not take waits for the member's own writer; a
// member whose queue is full is dropped as too slow, never waited for. A TLS
// member's queue always goes to its writer, which encrypts on the member's
// own executor (same queue, same bound).
//
// Locking: the hub's mutex guards a member's name and room; the member's own
// mutex its queue and the socket's send side. Order: hub, then member.
#pragma once

#include "message.hpp"
#include "said.hpp"

#include <coserve/connection.hpp>
#include <coserve/token_bucket.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace coserve::services::chat {

struct Room;

// A member's place in a room: the room, and its position in room->members.
struct Seat {
    Room* room;
    std::size_t index;
};

struct Member : std::enable_shared_from_this<Member> {
    Member(boost::asio::any_io_executor ex, std::size_t max_queue, Format f = Format::line, Wire w = Wire::raw)
        : executor(ex), format(f), wire(w), max_lines(max_queue), queue(max_queue), wake(ex), done(ex) {}

    boost::asio::any_io_executor executor;
    const Format format;  // how it reads what the hub sends
    const Wire wire;      // how it travels: each line a WebSocket frame, or as it is
    // The hub's, guarded by the hub's mutex.
    std::string nick;
    std::vector<Seat> seats;  // the rooms it is in, in the order joined (a line member: at most one)
    std::uint64_t mark = 0;   // already told of an event that spans rooms (a quit, a nick change)
    std::size_t settle_from = 0;  // while a room's batch is told: 1 + its own join's place in it
    std::string away;         // IRC: AWAY's text (empty: here)
    // The ping (IRC, WebSocket): when the reader last heard from the client (steady clock,
    // ns) and when the sweep pinged it (0: not waiting for an answer).
    // Before registration, `pinged` is when the connection began: the client
    // has irc_ping to register.
    std::atomic<std::int64_t> heard{0};
    std::int64_t pinged = 0;  // ping_sweep's own once the member is in Chat::pinged_members_
    std::atomic<bool> registered{false};    // IRC: past NICK and USER
    std::atomic<bool> ping_timeout{false};  // ended by the ping (or registration) timeout
    Room* room() const noexcept { return seats.empty() ? nullptr : seats.front().room; }
    // The outbox, guarded by `mutex`. Any thread may send, under the lock,
    // while `connection` is set (Connection::try_send).
    std::mutex mutex;
    Connection* connection = nullptr;
    const std::size_t max_lines;  // max_queue: the lines `queue` may hold
    std::size_t lines = 0;        // the lines it holds (Message::lines summed)
    Ring<MessageRef> queue;
    std::size_t sent_of_head = 0;  // bytes of the queue's first message already sent
    bool pending = false;          // the kernel was full: the writer owns flushing
    bool in_flush_list = false;
    bool waiting = false;          // the writer sleeps on `wake`
    bool closing = false;          // the writer exits once nothing is pending
    bool encrypted = false;        // TLS: senders never write; the writer encrypts for this member alone
    // Set once, from any thread: the member is being dropped.
    std::atomic<bool> dead{false};
    std::atomic<bool> too_slow{false};
    // The session's, on `executor` only.
    boost::asio::steady_timer wake;
    boost::asio::steady_timer done;
    bool writer_done = false;
    TokenBucket bucket;                 // the rate limit
    std::string_view eol = "\r\n";      // how the line being handled ended (a literal)
};

// The members whose queues one sender touched; flushed when its input runs dry.
using FlushList = std::vector<std::shared_ptr<Member>>;

// Thread-safe.
class Delivery {
public:
    // Lines the server starts end in CRLF; a reply to a line ends as that line did.
    MessageRef make(std::initializer_list<std::string_view> parts, std::string_view eol = "\r\n");
    // A message written by `fill(std::string&)` (its line endings included).
    template <class F>
    MessageRef compose(F&& fill) {
        MessageRef m(pool_.acquire());
        m->text.clear();
        fill(m->text);
        return m;
    }
    // Queues `m` for `member` (sent at the next flush); drops the member if
    // its queue is full. A WebSocket member gets m's lines as frames (framed()).
    void enqueue(Member& member, const MessageRef& m, FlushList& flush) {
        enqueue_raw(member, member.wire == Wire::raw ? m : framed(m, member.wire), flush);
    }
    // Queues bytes that are sent as they are (a WebSocket control frame).
    void enqueue_raw(Member& member, const MessageRef& m, FlushList& flush);
    // `m`'s lines as WebSocket frames: made by the first caller, then shared.
    MessageRef framed(const MessageRef& m, Wire wire);
    void tell(Member& member, std::initializer_list<std::string_view> parts, FlushList& flush) {
        enqueue(member, make(parts), flush);
    }
    // A reply to the line `member` is sending (its reader only).
    void reply(Member& member, std::initializer_list<std::string_view> parts, FlushList& flush) {
        enqueue(member, make(parts, member.eol), flush);
    }
    // Sends what the kernel takes of each listed queue; the rest goes to the members' writers.
    void flush(FlushList& list);
    // flush() in slices with a turn of the event loop between them (a large room).
    boost::asio::awaitable<void> flush_sliced(FlushList& list);
    // Ends a member's session from any thread: its reader and writer stop.
    void kill(Member& member);
    // The member's writer: waits for room in the socket while the queue is handed to it.
    boost::asio::awaitable<void> writer(Connection& c, std::shared_ptr<Member> m);

    std::uint64_t slow_consumers() const noexcept { return slow_consumers_.load(std::memory_order_relaxed); }

private:
    boost::asio::awaitable<void> write_encrypted(Connection& c, Member& m);
    void flush_range(FlushList& list, std::size_t from, std::size_t to);
    bool send_locked(Member& member);  // member mutex held; true if the queue is now empty
    void drop_slow(Member& member);

    static constexpr std::size_t max_gather = 64;  // messages in one gathered send
    MessagePool pool_;
    std::atomic<std::uint64_t> slow_consumers_{0};
};

}  // namespace coserve::services::chat
