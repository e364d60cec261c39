#include <coserve/connection.hpp>

#include "instance.hpp"

#include <boost/asio/deferred.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include <array>
#include <cstring>
#include <memory>

namespace coserve {

namespace asio = boost::asio;

Connection::Connection(asio::ip::tcp::socket socket, detail::Instance& instance, detail::SessionSlot& slot)
    : socket_(std::move(socket)), instance_(instance), slot_(slot), read_timer_(socket_.get_executor()) {
    boost::system::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    peer_ = ec ? std::string("?") : log::format_endpoint(ep);
    socket_.non_blocking(true, ec);  // read_shared() and write_now() try the socket before waiting
    touch();
}

Connection::~Connection() = default;

const std::string& Connection::instance_name() const noexcept {
    return instance_.config.name;
}

const InstanceOptions& Connection::options() const noexcept {
    return instance_.config.options;
}

void Connection::touch() noexcept {
    slot_.last_activity.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
}

asio::awaitable<std::size_t> Connection::read_some(asio::mutable_buffer buffer) {
    auto [ec, n] = co_await socket_.async_read_some(buffer, asio::as_tuple(asio::deferred));
    bytes_in_ += n;
    touch();
    if (ec == asio::error::eof) co_return 0;
    if (ec) throw boost::system::system_error(ec, "read");
    co_return n;
}

namespace {
// read_shared()'s buffer: one per event-loop thread, used between a
// readiness wake-up and the caller's next co_await.
thread_local std::array<char, 65536> loop_buffer;
}  // namespace

asio::awaitable<std::span<const char>> Connection::read_shared() {
    if (eof_pending_) co_return std::span<const char>();
    // Asio's own read into the connection's small buffer: it costs one recv
    // per message and no epoll_ctl (unlike waiting for readability), and
    // tries the socket first only when the last read may have left data.
    // What does not fit is read at once into the loop's buffer behind it.
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(small_), asio::as_tuple(asio::deferred));
    if (ec) {
        if (ec == asio::error::eof) co_return std::span<const char>();
        throw boost::system::system_error(ec, "read");
    }
    std::memcpy(loop_buffer.data(), small_.data(), n);
    if (n == small_.size()) {
        boost::system::error_code more_ec;
        n += socket_.read_some(asio::buffer(loop_buffer.data() + n, loop_buffer.size() - n), more_ec);
        if (!more_ec) {
        } else if (more_ec == asio::error::eof) {
            eof_pending_ = true;  // the bytes first, the end next time
        } else if (more_ec != asio::error::would_block && more_ec != asio::error::try_again) {
            throw boost::system::system_error(more_ec, "read");
        }
    }
    bytes_in_ += n;
    touch();
    co_return std::span<const char>(loop_buffer.data(), n);
}

asio::awaitable<void> Connection::write_now(std::span<const char> data) {
    boost::system::error_code ec;
    std::size_t n = socket_.write_some(asio::buffer(data.data(), data.size()), ec);
    if (!ec) {
    } else if (ec == asio::error::would_block || ec == asio::error::try_again) {
        n = 0;
    } else {
        throw boost::system::system_error(ec, "write");
    }
    bytes_out_ += n;
    touch();
    if (n == data.size()) co_return;
    const std::size_t left = data.size() - n;
    std::unique_ptr<char[]> rest(new char[left]);
    std::memcpy(rest.get(), data.data() + n, left);
    co_await write(asio::buffer(rest.get(), left));
}

asio::awaitable<std::optional<std::size_t>> Connection::read_some_for(asio::mutable_buffer buffer, Duration timeout) {
    // The timeout cancels this read only, through its own cancellation slot,
    // so another coroutine's wait or write on the socket (chat's writer) is
    // not disturbed. The session's cancellation (idle timeout, shutdown) is
    // forwarded to the same slot. The generation check and timer_handlers_
    // keep a late timer handler from touching a later read or a dead *this.
    const unsigned generation = ++read_generation_;
    timed_out_ = false;
    read_timer_.expires_after(timeout);
    ++timer_handlers_;
    read_timer_.async_wait([this, generation](boost::system::error_code ec) {
        --timer_handlers_;
        if (!ec && generation == read_generation_) {
            timed_out_ = true;
            read_cancel_.emit(asio::cancellation_type::terminal);
        }
    });
    auto session = (co_await asio::this_coro::cancellation_state).slot();
    if (session.is_connected())
        session.assign([this](asio::cancellation_type type) { read_cancel_.emit(type); });
    // (Asio 1.26 cannot bind a cancellation slot to asio::deferred.)
    auto [ec, n] = co_await socket_.async_read_some(
        buffer, asio::bind_cancellation_slot(read_cancel_.slot(), asio::as_tuple(asio::use_awaitable)));
    if (session.is_connected()) session.clear();
    ++read_generation_;
    read_timer_.cancel();
    if (ec == asio::error::operation_aborted && timed_out_) co_return std::nullopt;
    bytes_in_ += n;
    touch();
    if (ec == asio::error::eof) co_return 0;
    if (ec) throw boost::system::system_error(ec, "read");
    co_return n;
}

void Connection::shutdown_send() noexcept {
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> Connection::linger() {
    shutdown_send();
    std::array<char, 4096> sink;
    std::size_t dropped = 0;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (dropped < 64 * 1024) {
        const auto left = std::chrono::duration_cast<Duration>(end - std::chrono::steady_clock::now());
        if (left <= Duration::zero()) break;
        const auto n = co_await read_some_for(asio::buffer(sink), left);
        if (!n || *n == 0) break;
        dropped += *n;
    }
}

asio::awaitable<void> Connection::quiesce() {
    read_timer_.cancel();
    while (timer_handlers_ > 0) co_await asio::post(socket_.get_executor(), asio::deferred);
}

bool is_normal_close(const boost::system::error_code& ec) noexcept {
    namespace e = asio::error;
    return ec == e::eof || ec == e::connection_reset || ec == e::broken_pipe || ec == e::operation_aborted ||
           ec == e::connection_aborted || ec == e::not_connected || ec == e::bad_descriptor || ec == e::timed_out;
}

}  // namespace coserve
