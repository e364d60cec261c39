#include "outbox.hpp"

#include "websocket.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cerrno>

namespace coserve::services::chat {

namespace asio = boost::asio;

MessageRef Delivery::make(std::initializer_list<std::string_view> parts, std::string_view eol) {
    MessageRef m(pool_.acquire());
    m->text.clear();
    for (auto p : parts) m->text.append(p);
    m->text.append(eol);
    return m;
}

MessageRef Delivery::framed(const MessageRef& m, Wire wire) {
    std::atomic<Message*>& slot = m->framed[wire == Wire::ws_binary ? 1 : 0];
    if (Message* twin = slot.load(std::memory_order_acquire)) return MessageRef(twin);
    MessageRef twin = compose([&](std::string& out) { ws::append_frames(out, m->text, wire == Wire::ws_binary); });
    twin->lines = m->lines;
    Message* expected = nullptr;
    intrusive_ptr_add_ref(twin.get());  // the slot's reference, given back when `m` is recycled
    if (slot.compare_exchange_strong(expected, twin.get(), std::memory_order_acq_rel)) return twin;
    intrusive_ptr_release(twin.get());  // another thread framed it first: theirs is shared
    return MessageRef(expected);
}

void Delivery::enqueue_raw(Member& member, const MessageRef& m, FlushList& flush) {
    if (member.dead.load(std::memory_order_relaxed)) return;
    std::lock_guard lock(member.mutex);
    if (member.queue.full() || member.lines + m->lines > member.max_lines) {
        drop_slow(member);
        return;
    }
    member.lines += m->lines;
    member.queue.push(m);
    if (member.pending) return;  // the writer sends it
    if (!member.in_flush_list) {
        member.in_flush_list = true;
        flush.push_back(member.shared_from_this());
    }
    // A gathered send's worth of lines goes out at once: while one sender's
    // sliced flush has the member in its list, the others' lines for it must
    // not wait for that flush (their queue would fill, and a member that
    // reads would be dropped as too slow). A full batch (SaidLines) is such
    // a send on its own.
    if (member.lines >= max_gather && member.connection) send_locked(member);
}

void Delivery::flush(FlushList& list) {
    flush_range(list, 0, list.size());
    list.clear();
}

// A line to 10,000 members does not hold up everyone else on the loop for the
// 10,000 sends. The sender's own later lines wait for the whole flush;
// members still in the list keep their place (in_flush_list), so every
// member's lines stay in order. If the session is cancelled meanwhile, the
// rest is flushed at once.
asio::awaitable<void> Delivery::flush_sliced(FlushList& list) {
    constexpr std::size_t slice = 64;
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

// Each member is let go of as soon as it is flushed: the list may hold the
// last reference to members whose sessions have ended (10,000 leaving at
// once), and their destruction is spread over the slices instead of all
// falling in one turn of the loop when the list is cleared.
void Delivery::flush_range(FlushList& list, std::size_t from, std::size_t to) {
    for (std::size_t k = from; k < to; ++k) {
        const std::shared_ptr<Member> member = std::move(list[k]);
        std::lock_guard lock(member->mutex);  // released before `member`
        member->in_flush_list = false;
        if (!member->pending) send_locked(*member);
    }
}

bool Delivery::send_locked(Member& member) {
    while (!member.encrypted && !member.queue.empty() && member.connection && !member.dead) {
        std::array<iovec, max_gather> iov;
        const std::size_t n = std::min(max_gather, member.queue.size());
        for (std::size_t i = 0; i < n; ++i) {
            const std::string& text = member.queue.at(i)->text;
            const std::size_t skip = i == 0 ? member.sent_of_head : 0;
            iov[i] = {const_cast<char*>(text.data()) + skip, text.size() - skip};
        }
        const auto sent = member.connection->try_send(std::span<const iovec>(iov.data(), n));
        if (!sent) {
            kill(member);  // the client is gone
            return false;
        }
        if (*sent == 0) break;  // the socket is full
        std::size_t left = *sent;
        while (left > 0) {
            const std::size_t rest = member.queue.at(0)->text.size() - member.sent_of_head;
            if (left < rest) {
                member.sent_of_head += left;
                break;
            }
            left -= rest;
            member.sent_of_head = 0;
            member.lines -= member.queue.pop()->lines;
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

void Delivery::drop_slow(Member& member) {
    if (member.too_slow.exchange(true)) return;
    ++slow_consumers_;
    kill(member);
}

void Delivery::kill(Member& member) {
    if (member.dead.exchange(true)) return;
    asio::post(member.executor, [self = member.shared_from_this()] {
        if (self->connection) self->connection->cancel();  // ends the pending read and wait
        self->wake.cancel();
    });
}

asio::awaitable<void> Delivery::writer(Connection& c, std::shared_ptr<Member> m) {
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
        try {
            if (m->encrypted) {
                co_await write_encrypted(c, *m);
                continue;
            }
            co_await c.wait_writable();
        } catch (const boost::system::system_error&) {
            co_return;  // cancelled, or the client is gone: the session is ending
        }
        std::lock_guard lock(m->mutex);
        if (send_locked(*m)) m->pending = false;
    }
}

// The head of the queue, written through TLS; the lines stay queued (and
// count against the bound) until written.
asio::awaitable<void> Delivery::write_encrypted(Connection& c, Member& m) {
    constexpr std::size_t max_batch = 64;
    std::array<MessageRef, max_batch> batch;
    std::array<asio::const_buffer, max_batch> buffers;
    std::size_t n = 0;
    {
        std::lock_guard lock(m.mutex);
        n = std::min(max_batch, m.queue.size());
        for (std::size_t i = 0; i < n; ++i) {
            batch[i] = m.queue.at(i);
            buffers[i] = asio::buffer(batch[i]->text);
        }
    }
    co_await c.write_gathered(std::span<const asio::const_buffer>(buffers.data(), n));
    std::lock_guard lock(m.mutex);
    for (std::size_t i = 0; i < n && !m.queue.empty(); ++i) m.lines -= m.queue.pop()->lines;
    if (m.queue.empty()) m.pending = false;
}

}  // namespace coserve::services::chat
