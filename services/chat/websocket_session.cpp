// chat in the browser: one connection on a `websocket` listener. HTTP
// requests for the page until the client asks for /chat with a WebSocket
// upgrade (Boost.Beast reads both); then a chat member like any other, whose
// messages are lines of the line protocol, or of IRC (text.ircv3.net,
// binary.ircv3.net). The member, outbox, writer, rate limit and leave are
// the line protocol's (session.cpp); what the server sends is framed once
// per event (Delivery::framed). Every close the server starts sends a close
// frame with its reason first.
#include "chat.hpp"

#include "web.hpp"
#include "websocket.hpp"
#include "websocket_stream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace coserve::services::chat {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using clock = std::chrono::steady_clock;

asio::awaitable<ConnectionStream::Result> ConnectionStream::read(asio::mutable_buffer b) {
    try {
        if (!ahead_.empty()) {
            const std::size_t n = asio::buffer_copy(b, asio::buffer(ahead_));
            ahead_.erase(0, n);
            co_return Result{{}, n};
        }
        std::size_t n = 0;
        if (deadline_) {
            const auto left = *deadline_ - clock::now();
            if (left <= clock::duration::zero()) co_return Result{asio::error::timed_out, 0};
            const auto got = co_await c_.read_some_for(b, std::chrono::duration_cast<Duration>(left));
            if (!got) co_return Result{asio::error::timed_out, 0};
            n = *got;
        } else {
            n = co_await c_.read_some(b);
        }
        if (n == 0 && b.size() > 0) co_return Result{asio::error::eof, 0};
        co_return Result{{}, n};
    } catch (const boost::system::system_error& e) {
        co_return Result{e.code(), 0};
    }
}

asio::awaitable<ConnectionStream::Result> ConnectionStream::write(std::vector<asio::const_buffer> list) {
    try {
        co_await c_.write(list);
        co_return Result{{}, asio::buffer_size(list)};
    } catch (const boost::system::system_error& e) {
        co_return Result{e.code(), 0};
    }
}

// What Beast writes once the member exists (a pong, the reply to a close):
// one raw message in the member's outbox, sent at once.
struct Chat::WsSink final : RawSink {
    WsSink(Delivery& out, std::shared_ptr<Member> m) : out(out), m(std::move(m)) {}
    bool send_raw(std::string bytes) override {
        if (m->dead) return false;
        FlushList list;
        out.enqueue_raw(*m, out.compose([&](std::string& text) { text = std::move(bytes); }), list);
        out.flush(list);
        return !m->dead;
    }
    Delivery& out;
    std::shared_ptr<Member> m;
};

namespace {

// The HTTP requests before the upgrade: the page's files, refusals. The
// subprotocol once a request asks for a chat connection that may have one
// (`request` holds it); nullopt when the connection is done.
asio::awaitable<std::optional<web::Subprotocol>> web_requests(Connection& c, ConnectionStream& stream,
                                                              http::request<http::empty_body>& request,
                                                              const WebOptions& o, std::atomic<std::uint64_t>& refused) {
    beast::flat_buffer buffer;
    for (std::size_t served = 0;; ++served) {
        http::request_parser<http::empty_body> parser;
        parser.header_limit(8192);
        stream.deadline(clock::now() + o.request_timeout);
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        web::Answer answer;
        bool head = false, keep_alive = false;
        if (ec) {
            if (ec == http::error::end_of_stream || ec == asio::error::timed_out || is_normal_close(ec)) {
                c.log(Severity::debug) << "http: " << ec.message();
                co_return std::nullopt;
            }
            answer = web::unreadable(ec == http::error::header_limit);
        } else {
            request = parser.release();
            answer = web::answer(request, c.encrypted(), o.origins);
            if (answer.kind == web::Answer::Kind::upgrade) {
                if (buffer.size() > 0) stream.unread(beast::buffers_to_string(buffer.data()));
                co_return answer.subprotocol;
            }
            head = request.method() == http::verb::head;
            // A refused upgrade ends the connection: a client that asked for one has nothing else to ask.
            keep_alive = request.keep_alive() && served + 1 < o.max_requests && answer.status != http::status::forbidden;
        }
        if (answer.status == http::status::forbidden) ++refused;
        c.log(Severity::debug) << "http " << (ec ? "(unreadable: " + ec.message() + ")" : std::string(request.method_string()) + " " +
                                                                           std::string(request.target().substr(0, 200)))
            << ": " << static_cast<unsigned>(answer.status);
        auto response = web::response(answer, head, keep_alive);
        auto [wec, wn] = co_await http::async_write(stream, response, asio::as_tuple(asio::use_awaitable));
        if (wec || !keep_alive) {
            if (!wec) c.shutdown_send();
            co_return std::nullopt;
        }
    }
}

// The close frame the server sends when it ends a chat connection, if it does.
std::optional<std::string> close_frame(const Member& m, bool quitting, std::string_view cancelled) {
    std::string frame;
    if (m.too_slow) ws::append_close(frame, ws::policy, "too slow");
    else if (m.ping_timeout) ws::append_close(frame, ws::going_away, "ping timeout");
    else if (quitting) ws::append_close(frame, ws::normal, "bye");
    else if (cancelled == "idle timeout") ws::append_close(frame, ws::going_away, "idle timeout");
    else if (!cancelled.empty()) ws::append_close(frame, ws::going_away, "server shutting down");
    else return std::nullopt;
    return frame;
}

}  // namespace

asio::awaitable<void> Chat::serve_websocket(Connection& c) {
    WsStream ws(c);
    http::request<http::empty_body> request;
    const auto subprotocol = co_await web_requests(c, ws.next_layer(), request, *o_.web, ws_refused_origin_);
    if (!subprotocol) co_return;
    ws.set_option(websocket::stream_base::decorator([name = web::name(*subprotocol)](websocket::response_type& r) {
        r.set(http::field::server, "coserve");
        if (!name.empty()) r.set(http::field::sec_websocket_protocol, name);
    }));
    ws.read_message_max(0);  // a long message is read in pieces and refused like a long line (ws_read)
    ws.next_layer().deadline(clock::now() + o_.web->request_timeout);
    if (auto [ec] = co_await ws.async_accept(request, asio::as_tuple(asio::use_awaitable)); ec) {
        c.log(Severity::debug) << "websocket upgrade refused: " << ec.message();  // Beast has answered (400)
        co_return;
    }
    ws.next_layer().deadline(std::nullopt);
    const bool irc = *subprotocol != web::Subprotocol::line;
    const auto m = new_member(c, irc ? Format::irc : Format::line,
                              *subprotocol == web::Subprotocol::irc_binary ? Wire::ws_binary : Wire::ws_text);
    WsSink sink(out_, m);
    ws.next_layer().sink(&sink);
    ws.control_callback([member = m.get()](websocket::frame_type, beast::string_view) {
        member->heard.store(now_ns(), std::memory_order_relaxed);  // a pong (or ping) is a sign of life
    });
    c.log(Severity::debug) << "websocket: " << (irc ? web::name(*subprotocol) : "chat lines");
    const auto asking = directory_.asking(m->executor);
    FlushList pending;
    if (!irc && !co_await admit(c, m, asking.get(), pending)) co_return;
    if (!irc) m->registered = true;
    m->pinged = irc ? m->heard.load() : 0;  // IRC: the registration deadline counts from here
    bool quitting = false;
    IrcClient client;
    std::exception_ptr failure;
    start_writer(c, m);
    ++ws_clients_;
    watch_pings(m);
    try {
        co_await out_.flush_sliced(pending);
        co_await ws_read(ws, m, asking.get(), irc ? &client : nullptr, quitting, pending);
    } catch (const boost::system::system_error& e) {
        // The client's close, or a protocol error Beast has answered with its own close frame: not ours to report.
        if (e.code().category() == websocket::make_error_code(websocket::error::closed).category())
            c.log(Severity::debug) << "websocket: " << e.code().message();
        else failure = std::current_exception();
    } catch (...) {
        failure = std::current_exception();
    }
    co_await asio::this_coro::throw_if_cancelled(false);
    unwatch_pings(*m);
    --ws_clients_;
    if (m->ping_timeout) failure = nullptr;  // closed by us, as intended
    MessageRef last;
    if (auto frame = close_frame(*m, quitting, c.cancel_reason()))
        last = out_.compose([&](std::string& out) { out = std::move(*frame); });
    if (co_await leave(c, m, quitting, pending, last, true)) co_return;  // dropped as too slow
    if (failure && !quitting) std::rethrow_exception(failure);
    c.shutdown_send();
}

// Messages, each one line: read in pieces of at most 4 KiB into one buffer
// of at most max_line (IRC: 510) bytes; the rest of a longer message is read
// and dropped, and the member told, as for a long line.
asio::awaitable<void> Chat::ws_read(WsStream& ws, const std::shared_ptr<Member>& m, Asking* asking, IrcClient* irc,
                                    bool& quitting, FlushList& pending) {
    Connection& c = ws.next_layer().connection();
    const std::size_t max = irc ? irc::max_line - 2 : c.options().max_line;
    const std::string too_long = "* error: line too long (max " + std::to_string(max) + " bytes)";
    std::string message;
    bool dropping = false;
    asio::steady_timer pacer(m->executor);
    while (!quitting && !m->dead) {
        if (!pending.empty()) co_await out_.flush_sliced(pending);
        const std::size_t size = message.size();
        const std::size_t room = std::min<std::size_t>(4096, max + 1 - size);  // max + 1: one byte more tells
        message.resize(size + room);
        const std::size_t n = co_await ws.async_read_some(asio::buffer(message.data() + size, room), asio::use_awaitable);
        message.resize(size + n);
        m->heard.store(now_ns(), std::memory_order_relaxed);
        if (message.size() > max) {
            dropping = true;
            message.clear();
        }
        if (!ws.is_message_done()) continue;
        std::string_view text = message;
        if (text.ends_with("\r\n")) text.remove_suffix(2);
        else if (text.ends_with("\n")) text.remove_suffix(1);
        if (dropping) {
            if (irc) irc_numeric(*m, "417", {"Input line was too long"}, pending);
            else out_.tell(*m, {too_long}, pending);
        } else if (!irc && !ws.got_text()) {
            out_.tell(*m, {"* error: binary message ignored (chat lines are text messages)"}, pending);
        } else if (text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
            if (irc) irc_reply(*m, ":" + o_.hub.host + " NOTICE * :one IRC line per message (no CR, LF or NUL)\r\n", pending);
            else out_.tell(*m, {"* error: one line per message (no CR, LF or NUL)"}, pending);
        } else if (irc) {
            co_await irc_line(m, asking, *irc, text, quitting, pacer, pending);
        } else {
            const ChatCommand cmd = parse_chat_line(text);
            co_await run_line(m, asking, cmd, quitting, pacer, pending);
        }
        dropping = false;
        message.clear();
    }
}

}  // namespace coserve::services::chat
