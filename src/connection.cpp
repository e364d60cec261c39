#include <coserve/connection.hpp>

#include "session.hpp"

#include <boost/asio/deferred.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/append.hpp>

#include <boost/asio/ssl/error.hpp>

#include <openssl/ssl.h>

#include <sys/sendfile.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <stdexcept>
#include <cstring>
#include <memory>

namespace coserve {

namespace asio = boost::asio;

namespace {
// The client's end of stream: FIN, or over TLS close_notify, or a TCP close
// without close_notify (stream_truncated: ordinary for line clients such as
// ncat, which half-close with a bare shutdown).
bool end_of_stream(const boost::system::error_code& ec) noexcept {
    return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
}
}  // namespace

namespace detail {

Session::Session(asio::ip::tcp::socket s, Instance& inst, SessionSlot& sl, std::string known_peer)
    : socket(std::move(s)), executor(socket.get_executor()), instance(inst), slot(sl), peer(std::move(known_peer)),
      read_timer(executor) {
    boost::system::error_code ec;
    if (peer.empty()) {
        const auto ep = socket.remote_endpoint(ec);
        peer = ec ? std::string("?") : log::format_endpoint(ep);
    }
    log_peer = peer;
    socket.non_blocking(true, ec);  // read_shared() and write_now() try the socket before waiting
    slot.session = this;
}

}  // namespace detail

const std::string& Connection::peer() const noexcept {
    return s_.peer;
}

const std::string& Connection::instance_name() const noexcept {
    return s_.instance.config.name;
}

const InstanceOptions& Connection::options() const noexcept {
    return s_.instance.config.options;
}

const asio::any_io_executor& Connection::executor() const noexcept {
    return s_.executor;
}

std::string_view Connection::front_end() const noexcept {
    return s_.front_end;
}

std::string_view Connection::cancel_reason() const noexcept {
    return s_.slot.cancel_reason ? std::string_view(s_.slot.cancel_reason) : std::string_view();
}

bool Connection::encrypted() const noexcept {
    return s_.tls != nullptr;
}

const std::string& Connection::tls_subject() const noexcept {
    return s_.tls_subject;
}

log::Line Connection::log(Severity level) const {
    return log::Line(level, instance_name(), s_.log_peer);
}

std::uint64_t Connection::bytes_in() const noexcept {
    return s_.bytes_in;
}

std::uint64_t Connection::bytes_out() const noexcept {
    return s_.bytes_out + s_.bytes_out_shared.load(std::memory_order_relaxed);
}

asio::awaitable<std::size_t> Connection::read_some(asio::mutable_buffer buffer) {
    auto [ec, n] = s_.tls ? co_await s_.tls->async_read_some(buffer, asio::as_tuple(asio::deferred))
                          : co_await s_.socket.async_read_some(buffer, asio::as_tuple(asio::deferred));
    s_.bytes_in += n;
    s_.touch();
    if (end_of_stream(ec)) co_return 0;
    if (ec) throw boost::system::system_error(ec, "read");
    co_return n;
}

namespace {
// read_shared()'s buffer: one per event-loop thread, used between a
// readiness wake-up and the caller's next co_await.
thread_local std::array<char, 65536> loop_buffer;
}  // namespace

asio::ip::tcp::socket* Connection::plain_read_socket() noexcept {
    if (s_.tls || s_.eof_pending) return nullptr;
    s_.waiting_input = true;
    return &s_.socket;
}

asio::mutable_buffer Connection::small_buffer() noexcept {
    return asio::buffer(s_.small);
}

void Connection::start_other_read(asio::any_completion_handler<void(boost::system::error_code, std::size_t)> handler) {
    if (s_.eof_pending) {
        asio::post(s_.executor, asio::append(std::move(handler), boost::system::error_code(asio::error::eof), std::size_t{0}));
        return;
    }
    s_.tls->async_read_some(asio::buffer(s_.small), std::move(handler));
}

std::span<const char> Connection::finish_shared_read(boost::system::error_code& ec, std::size_t n) {
    // Asio's own read into the connection's small buffer: Asio tries a recv
    // when the read starts (mostly EAGAIN: the client has not answered yet)
    // and one more after the wake-up; what does not fit is read at once into
    // the loop's buffer behind it. Waiting for readiness instead costs an
    // epoll_ctl per wait, which measured no better (docs/benchmarks.md,
    // "system calls per message").
    s_.waiting_input = false;
    if (!ec && s_.park_asked) {  // the input came first: it does not park
        s_.park_asked = false;
        s_.slot.parked = false;
    }
    if (ec) {
        if (end_of_stream(ec)) ec = {};
        return {};
    }
    std::memcpy(loop_buffer.data(), s_.small.data(), n);
    if (s_.tls) {
        // What OpenSSL has already decrypted is read without touching the socket.
        while (n < loop_buffer.size()) {
            const int pending = SSL_pending(s_.tls->native_handle());
            if (pending <= 0) break;
            boost::system::error_code more_ec;
            n += s_.tls->read_some(asio::buffer(loop_buffer.data() + n, std::min<std::size_t>(static_cast<std::size_t>(pending),
                                                                                              loop_buffer.size() - n)),
                                   more_ec);
            if (more_ec) break;
        }
    } else if (n == s_.small.size()) {
        boost::system::error_code more_ec;
        n += s_.socket.read_some(asio::buffer(loop_buffer.data() + n, loop_buffer.size() - n), more_ec);
        if (!more_ec) {
        } else if (more_ec == asio::error::eof) {
            s_.eof_pending = true;  // the bytes first, the end next time
        } else if (more_ec != asio::error::would_block && more_ec != asio::error::try_again) {
            ec = more_ec;  // the bytes already read are lost with the connection
            return {};
        }
    }
    s_.bytes_in += n;
    s_.touch();
    return {loop_buffer.data(), n};
}

std::span<const char> Connection::send_now(std::span<const char> data) {
    if (s_.tls || data.empty()) return data;
    boost::system::error_code ec;
    const std::size_t n = s_.socket.write_some(asio::buffer(data.data(), data.size()), ec);
    if (ec) {  // (tested first: comparing error codes costs more than the rest of this call)
        if (ec == asio::error::would_block || ec == asio::error::try_again) return data;
        throw boost::system::system_error(ec, "write");
    }
    s_.bytes_out += n;
    s_.touch();
    return data.subspan(n);
}

asio::awaitable<void> Connection::write_now(std::span<const char> data) {
    if (s_.tls) {  // copied first: `data` may be read_shared()'s span
        s_.tls_out.assign(data.begin(), data.end());
        co_await s_.tls_flush();
        co_return;
    }
    boost::system::error_code ec;
    std::size_t n = s_.socket.write_some(asio::buffer(data.data(), data.size()), ec);
    if (!ec) {
    } else if (ec == asio::error::would_block || ec == asio::error::try_again) {
        n = 0;
    } else {
        throw boost::system::system_error(ec, "write");
    }
    s_.bytes_out += n;
    s_.touch();
    if (n == data.size()) co_return;
    const std::size_t left = data.size() - n;
    std::unique_ptr<char[]> rest(new char[left]);
    std::memcpy(rest.get(), data.data() + n, left);
    co_await write(asio::buffer(rest.get(), left));
}

asio::awaitable<std::optional<std::size_t>> Connection::read_some_for(asio::mutable_buffer buffer, Duration timeout) {
    return s_.read_for(buffer, timeout);
}

void Connection::shutdown_send() noexcept {
    s_.send_closed = true;
    if (s_.tls) return;  // close_notify first, in linger(), then FIN
    boost::system::error_code ignored;
    s_.socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> Connection::write_gathered(std::span<const asio::const_buffer> buffers) {
    if (s_.tls) {
        co_await s_.tls_write(buffers);
        co_return;
    }
    auto [ec, n] = co_await asio::async_write(s_.socket, buffers, asio::as_tuple(asio::deferred));
    s_.bytes_out += n;
    s_.touch();
    if (ec) throw boost::system::system_error(ec, "write");
}

asio::awaitable<void> Connection::send_file(int file, std::uint64_t offset, std::uint64_t count) {
    if (s_.tls) {
        co_await s_.tls_send_file(file, offset, count);
        co_return;
    }
    const int sock = s_.socket.native_handle();
    s_.socket.native_non_blocking(true);
    off_t off = static_cast<off_t>(offset);
    std::uint64_t since_yield = 0;
    while (count > 0) {
        const ssize_t n = ::sendfile(sock, file, &off, static_cast<std::size_t>(std::min<std::uint64_t>(count, 1 << 20)));
        if (n > 0) {
            count -= static_cast<std::uint64_t>(n);
            s_.bytes_out += static_cast<std::uint64_t>(n);
            s_.touch();
            if ((since_yield += static_cast<std::uint64_t>(n)) >= (16u << 20)) {  // be fair to the other clients
                since_yield = 0;
                co_await asio::post(s_.executor, asio::deferred);
            }
            continue;
        }
        if (n == 0) throw std::runtime_error("file shrank during the transfer");  // cannot send what was promised
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            throw boost::system::system_error(errno, boost::system::system_category(), "sendfile");
        since_yield = 0;
        co_await s_.socket.async_wait(asio::ip::tcp::socket::wait_write, asio::deferred);
    }
}

asio::awaitable<void> Connection::busy_turn() {
    s_.touch();
    co_await asio::post(s_.executor, asio::deferred);
}

std::optional<std::size_t> Connection::try_send(std::span<const iovec> data) noexcept {
    if (s_.tls) return std::nullopt;  // plaintext only: encryption is the session's own writer's
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(data.data());
    msg.msg_iovlen = data.size();
    for (;;) {
        const ssize_t sent = ::sendmsg(s_.socket.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent >= 0) {
            s_.bytes_out_shared.fetch_add(static_cast<std::uint64_t>(sent), std::memory_order_relaxed);
            s_.touch();
            return static_cast<std::size_t>(sent);
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return std::nullopt;  // the client is gone
    }
}

asio::awaitable<void> Connection::wait_writable() {
    co_await s_.socket.async_wait(asio::ip::tcp::socket::wait_write, asio::deferred);
}

void Connection::cancel() noexcept {
    boost::system::error_code ignored;
    s_.socket.cancel(ignored);
}

namespace detail {

asio::awaitable<void> Session::linger() {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    auto left = [&end] { return std::chrono::duration_cast<Duration>(end - std::chrono::steady_clock::now()); };
    if (tls) co_await tls_close(left());
    boost::system::error_code ignored;
    socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    std::array<char, 4096> sink;
    std::size_t dropped = 0;
    while (dropped < 64 * 1024 && left() > Duration::zero()) {
        const auto n = co_await read_for(asio::buffer(sink), left(), true);
        if (!n || *n == 0) break;
        dropped += *n;
    }
}

asio::awaitable<std::optional<std::size_t>> Session::read_for(asio::mutable_buffer buffer, Duration timeout, bool raw) {
    // The timeout cancels this read only, through its own cancellation slot,
    // so another coroutine's wait or write on the socket (chat's writer) is
    // not disturbed. The session's cancellation (idle timeout, shutdown) is
    // forwarded to the same slot. The generation check and timer_handlers
    // keep a late timer handler from touching a later read or a dead *this.
    const unsigned generation = ++read_generation;
    timed_out = false;
    read_timer.expires_after(timeout);
    ++timer_handlers;
    read_timer.async_wait([this, generation](boost::system::error_code ec) {
        --timer_handlers;
        if (!ec && generation == read_generation) {
            timed_out = true;
            read_cancel.emit(asio::cancellation_type::terminal);
        }
    });
    auto session = (co_await asio::this_coro::cancellation_state).slot();
    if (session.is_connected()) session.assign([this](asio::cancellation_type type) { read_cancel.emit(type); });
    // (Asio 1.26 cannot bind a cancellation slot to asio::deferred.)
    auto token = [this] { return asio::bind_cancellation_slot(read_cancel.slot(), asio::as_tuple(asio::use_awaitable)); };
    auto [ec, n] = tls && !raw ? co_await tls->async_read_some(buffer, token()) : co_await socket.async_read_some(buffer, token());
    if (session.is_connected()) session.clear();
    ++read_generation;
    read_timer.cancel();
    if (ec == asio::error::operation_aborted && timed_out) co_return std::nullopt;
    bytes_in += n;
    touch();
    if (end_of_stream(ec)) co_return 0;
    if (ec) throw boost::system::system_error(ec, "read");
    co_return n;
}

asio::awaitable<void> Session::quiesce() {
    read_timer.cancel();
    while (timer_handlers > 0) co_await asio::post(executor, asio::deferred);
}

}  // namespace detail

bool is_normal_close(const boost::system::error_code& ec) noexcept {
    namespace e = asio::error;
    return ec == e::eof || ec == boost::asio::ssl::error::stream_truncated || ec == e::connection_reset || ec == e::broken_pipe || ec == e::operation_aborted ||
           ec == e::connection_aborted || ec == e::not_connected || ec == e::bad_descriptor || ec == e::timed_out;
}

}  // namespace coserve
