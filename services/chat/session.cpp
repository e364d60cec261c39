// chat: one client's session. The reader (this coroutine) reads lines and
// runs the commands; a writer coroutine takes over the member's queue when
// the socket is full. They share the Member.
#include "chat.hpp"

#include "websocket.hpp"

#include <coserve/lines.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

namespace coserve::services::chat {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

std::shared_ptr<Member> Chat::new_member(Connection& c, Format format, Wire wire) const {
    auto m = std::make_shared<Member>(c.executor(), o_.max_queue, format, wire);
    {
        std::lock_guard lock(m->mutex);
        m->connection = &c;
        m->encrypted = c.encrypted();
    }
    m->bucket = TokenBucket(o_.rate, clock::now());
    m->heard = now_ns();
    return m;
}

asio::awaitable<void> Chat::serve(Connection& c) {
    if (c.front_end() == "irc") co_return co_await serve_irc(c);
    if (c.front_end() == "websocket") co_return co_await serve_websocket(c);
    const auto m = new_member(c);
    const auto asking = directory_.asking(m->executor);
    FlushList pending;
    if (!co_await admit(c, m, asking.get(), pending)) co_return;
    bool quitting = false;
    bool writer_started = false;
    std::exception_ptr failure;
    try {  // from here on every exit goes through leave()
        co_await out_.flush_sliced(pending);
        start_writer(c, m);
        writer_started = true;
        co_await read_lines(c, m, asking.get(), quitting, pending);
    } catch (...) {
        failure = std::current_exception();
        if (!writer_started) m->writer_done = true;
    }
    // The clean-up runs even when the framework cancelled the session.
    co_await asio::this_coro::throw_if_cancelled(false);
    if (co_await leave(c, m, quitting, pending)) co_return;  // dropped as too slow
    if (failure && !quitting) std::rethrow_exception(failure);
    c.shutdown_send();
}

// A name (in a cluster, one no daemon has given out), the start room and its
// history (in a cluster, from Redis). False, with the client told, when full.
asio::awaitable<bool> Chat::admit(Connection& c, const std::shared_ptr<Member>& m, Asking* asking, FlushList& pending) {
    const std::string guest = co_await directory_.guest(asking);
    const auto history = co_await directory_.history(asking, o_.hub.room);
    if (hub_.admit(m, guest, history ? &*history : nullptr, pending)) co_return true;
    if (!guest.empty()) directory_.release(guest);
    {
        std::lock_guard lock(m->mutex);
        m->connection = nullptr;
    }
    std::string full = "* error: chat is full (" + std::to_string(o_.hub.max_clients) + " clients)\r\n";
    if (m->wire != Wire::raw) {
        std::string frames;
        ws::append_frames(frames, full, m->wire == Wire::ws_binary);
        ws::append_close(frames, ws::try_later, "chat is full");
        full = std::move(frames);
    }
    co_await c.write(asio::buffer(full));
    co_return false;
}

void Chat::start_writer(Connection& c, const std::shared_ptr<Member>& m) {
    m->done.expires_at(asio::steady_timer::time_point::max());
    asio::co_spawn(m->executor, out_.writer(c, m), [this, m](std::exception_ptr) {
        m->writer_done = true;
        m->done.cancel();
        bool closing = false;
        {
            std::lock_guard lock(m->mutex);
            closing = m->closing;
        }
        if (!closing) out_.kill(*m);  // the writer failed first: end the reader too
    });
}

// Text and actions said in a row go to the room in batches (SaidLines): a
// batch is told when it is full, before any other command, and before the
// reader lets the loop turn or flushes (so never later than its input runs
// dry). Each line is rate-limited as it is read.
asio::awaitable<void> Chat::read_lines(Connection& c, const std::shared_ptr<Member>& m, Asking* asking, bool& quitting,
                                       FlushList& pending) {
    LineReader lines(c, c.options().max_line, Duration::zero());
    asio::steady_timer pacer(m->executor);
    const std::string too_long = "* error: line too long (max " + std::to_string(c.options().max_line) + " bytes)";
    SaidLines said(std::min<std::size_t>(max_said, o_.max_queue));
    Flushing flushing;
    try {
        while (!quitting && !m->dead) {
            co_await flush_when_dry(lines, flushing, *m, said, pending);
            Line line = co_await lines.next();
            if (line.kind == Line::Kind::end || m->dead) break;
            if (line.kind == Line::Kind::too_long) {
                say_lines(*m, said, flushing, pending);
                out_.tell(*m, {too_long}, pending);
                continue;
            }
            m->eol = line.ending == "\n" ? "\n" : "\r\n";  // literals: the line's own bytes go with the next read
            const ChatCommand cmd = parse_chat_line(line.text);
            if (cmd.kind == ChatCommand::Kind::empty) continue;  // ignored: nothing to tell first
            const bool plain = cmd.kind == ChatCommand::Kind::text || (cmd.kind == ChatCommand::Kind::me && !cmd.text.empty());
            if (plain && (!o_.rate.limited() || m->bucket.take(o_.rate, clock::now()))) {
                if (!said.fits(cmd.text)) say_lines(*m, said, flushing, pending);
                said.add(cmd.kind == ChatCommand::Kind::me ? Said::Kind::me : Said::Kind::msg, cmd.text);
                if (said.full()) say_lines(*m, said, flushing, pending);
                continue;
            }
            say_lines(*m, said, flushing, pending);
            co_await run_line(m, asking, cmd, quitting, pacer, pending);
            flushing.queued += pending.size();
        }
    } catch (...) {
        say_lines(*m, said, flushing, pending);  // what was read is not lost
        throw;
    }
    say_lines(*m, said, flushing, pending);
}

void Chat::say_lines(Member& m, SaidLines& said, Flushing& flushing, FlushList& pending) {
    if (said.empty()) return;
    hub_.say_lines(m, said, pending);
    said.clear();
    flushing.queued += pending.size();
}

asio::awaitable<void> Chat::run_line(const std::shared_ptr<Member>& m, Asking* asking, const ChatCommand& cmd,
                                     bool& quitting, asio::steady_timer& pacer, FlushList& pending) {
    if (cmd.kind == ChatCommand::Kind::empty) co_return;
    if (o_.rate.limited() && !m->bucket.take(o_.rate, clock::now())) co_await pace(*m, pacer, pending);
    if (uses_directory(cmd.kind)) {
        co_await out_.flush_sliced(pending);  // what was said before is not held up by the answer
        co_await look_up(m, asking, cmd, pending);
    } else {
        handle(m, cmd, quitting, pending);
    }
}

// What a reader's commands queued goes out when its input runs dry, and
// every 64 lines of a long burst: one send per recipient for all of them.
// In a large room the reader also lets the loop turn (without flushing)
// each time the broadcasts times their recipients pass another 16,384,
// about a millisecond of queueing, so that one reader's turn of the loop
// stays short. Lines gathered for a broadcast are told first.
asio::awaitable<void> Chat::flush_when_dry(const LineReader& lines, Flushing& flushing, Member& m, SaidLines& said,
                                           FlushList& pending) {
    constexpr std::size_t max_lines = 64, max_queued = 16384;
    if (pending.empty() && said.empty()) co_return;
    if (lines.ready() && ++flushing.lines < max_lines) {
        if (flushing.queued >= max_queued) {
            say_lines(m, said, flushing, pending);
            flushing.queued = 0;
            co_await asio::post(co_await asio::this_coro::executor, asio::deferred);
        }
        co_return;
    }
    say_lines(m, said, flushing, pending);
    co_await out_.flush_sliced(pending);
    flushing.lines = 0;
    flushing.queued = 0;
}

// Fakelag, as IRC servers do it: a client over its rate is not read until
// it is back within it. Its later lines wait in our line buffer and in the
// kernel's (TCP flow control), and none is lost. What it was sent meanwhile
// is flushed first. Called when the bucket was found empty (the common case,
// a token there, costs no coroutine frame).
asio::awaitable<void> Chat::pace(Member& m, asio::steady_timer& timer, FlushList& pending) {
    ++rate_delayed_;
    co_await out_.flush_sliced(pending);
    while (!m.bucket.take(o_.rate, clock::now())) {
        const auto wait = m.bucket.wait(o_.rate, clock::now());
        rate_delay_ns_ += static_cast<std::uint64_t>(std::chrono::nanoseconds(wait).count());
        timer.expires_after(wait);
        co_await timer.async_wait(asio::deferred);
    }
}

// The room hears the leave (after /quit it has already), the writer ends, and
// no sender may touch the socket any more. A member dropped as too slow gets
// a last line, best effort: it is not reading. True for such a member.
asio::awaitable<bool> Chat::leave(Connection& c, const std::shared_ptr<Member>& m, bool quitting, FlushList& pending,
                                  const MessageRef& last, bool drain) {
    const bool slow = m->too_slow;
    if (!quitting) hub_.remove(*m, slow ? "left (too slow)" : m->ping_timeout ? "left (ping timeout)" : "left", pending);
    if (last && !m->dead) out_.enqueue_raw(*m, last, pending);
    out_.flush(pending);  // after /quit this sends "* bye"
    {
        std::lock_guard lock(m->mutex);
        m->closing = true;
    }
    drain = drain && !m->dead;
    if ((!quitting && !drain) || slow) {
        m->dead = true;
        c.cancel();
    }
    m->wake.cancel();
    co_await wait_writer(c, *m, quitting || drain, drain);
    {
        std::lock_guard lock(m->mutex);
        m->connection = nullptr;  // no sender may touch the connection once we return
    }
    if (slow || (last && m->dead)) {  // not reading (a WebSocket member: its close frame, if not sent above)
        static constexpr std::string_view bye = "\r\n* error: too slow, disconnected\r\n";
        const std::string_view text = m->wire == Wire::raw ? bye : last ? std::string_view(last->text) : std::string_view();
        const iovec line{const_cast<char*>(text.data()), text.size()};
        if (!text.empty()) c.try_send(std::span<const iovec>(&line, 1));
    }
    co_return slow;
}

// After /quit the writer may still be flushing "* bye" to a client that does
// not read: it gets 5 s, and is stopped at once if the framework cancels the
// session (shutdown, idle timeout), even if that came while nothing was
// pending. With `drain` (a WebSocket close frame queued last), it gets 2 s,
// cancelled or not.
asio::awaitable<void> Chat::wait_writer(Connection& c, Member& m, bool quitting, bool drain) {
    m.done.expires_after(std::chrono::seconds(drain ? 2 : 5));
    while (!m.writer_done) {
        co_await m.done.async_wait(asio::as_tuple(asio::deferred));
        const auto state = co_await asio::this_coro::cancellation_state;
        const bool cancelled = !drain && state.cancelled() != asio::cancellation_type::none;
        if (!m.writer_done && (cancelled || clock::now() >= m.done.expiry() || !quitting)) {
            m.dead = true;
            c.cancel();
            m.wake.cancel();
            m.done.expires_at(asio::steady_timer::time_point::max());
        }
    }
}

}  // namespace coserve::services::chat
