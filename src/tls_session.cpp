// A TCP session's TLS: the handshake (bounded, counted by outcome), writes
// gathered into records, files copied through the stream, and a close that
// cannot hang on a silent client.
#include "session.hpp"
#include "tls.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <openssl/ssl.h>

#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace coserve::detail {

namespace asio = boost::asio;

void Session::arm_deadline(Duration timeout) {
    const unsigned generation = ++read_generation;
    timed_out = false;
    read_timer.expires_after(timeout);
    ++timer_handlers;
    read_timer.async_wait([this, generation](boost::system::error_code ec) {
        --timer_handlers;
        if (!ec && generation == read_generation) {
            timed_out = true;
            boost::system::error_code ignored;
            socket.cancel(ignored);
        }
    });
}

void Session::disarm_deadline() {
    ++read_generation;
    read_timer.cancel();
}

asio::awaitable<bool> Session::handshake(std::shared_ptr<const TlsContext> context) {
    tls_context = std::move(context);
    tls = std::make_unique<TlsStream>(socket, tls_context->context());
    arm_deadline(tls_context->settings().handshake_timeout);
    auto [ec] = co_await tls->async_handshake(asio::ssl::stream_base::server, asio::as_tuple(asio::deferred));
    const bool expired = timed_out;
    disarm_deadline();
    touch();
    SSL* ssl = tls->native_handle();
    if (!ec) {
        ++instance.counters.tls_handshakes[SSL_version(ssl) == TLS1_3_VERSION ? 1 : 0];
        tls_subject = verified_peer_subject(ssl);
        if (!tls_subject.empty()) log_peer = peer + " " + tls_subject;
        connection_.log(Severity::debug) << "tls: " << SSL_get_version(ssl) << " " << SSL_get_cipher_name(ssl)
                                         << (tls_subject.empty() ? ", no client certificate" : ", client certificate verified");
        co_return true;
    }
    if (ec == asio::error::operation_aborted && !expired) throw boost::system::system_error(ec, "tls handshake");
    const TlsFailure why = expired ? TlsFailure::timeout : classify_tls_failure(ec);
    ++instance.counters.tls_failed[static_cast<std::size_t>(why)];
    boost::system::error_code peer_ec;
    const auto remote = socket.remote_endpoint(peer_ec);
    const bool loud = why != TlsFailure::closed && !peer_ec && instance.limits.should_log(remote.address());
    connection_.log(loud ? Severity::info : Severity::debug)
        << "tls handshake failed (" << tls_failure_name(why) << "): "
        << (expired ? "not finished within " + format_duration(tls_context->settings().handshake_timeout) : ec.message())
        << (loud ? "; logged once a minute per source" : "");
    co_return false;
}

asio::awaitable<void> Session::tls_flush() {
    if (tls_out.empty()) co_return;
    auto [ec, n] = co_await asio::async_write(*tls, asio::buffer(tls_out), asio::as_tuple(asio::deferred));
    bytes_out += n;
    touch();
    tls_out.clear();
    if (ec) throw boost::system::system_error(ec, "write");
}

asio::awaitable<void> Session::tls_write(std::span<const asio::const_buffer> data) {
    constexpr std::size_t record = 16 * 1024;
    for (const auto& b : data) {
        if (!tls_out.empty() && tls_out.size() + b.size() > record) co_await tls_flush();
        if (b.size() >= record) {
            auto [ec, n] = co_await asio::async_write(*tls, b, asio::as_tuple(asio::deferred));
            bytes_out += n;
            touch();
            if (ec) throw boost::system::system_error(ec, "write");
            continue;
        }
        const char* p = static_cast<const char*>(b.data());
        tls_out.insert(tls_out.end(), p, p + b.size());
    }
    co_await tls_flush();
}

asio::awaitable<void> Session::tls_send_file(int file, std::uint64_t offset, std::uint64_t count) {
    constexpr std::size_t piece = 16 * 1024;
    std::uint64_t since_yield = 0;
    while (count > 0) {
        tls_out.resize(static_cast<std::size_t>(std::min<std::uint64_t>(count, piece)));
        const ssize_t n = ::pread(file, tls_out.data(), tls_out.size(), static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            tls_out.clear();
            throw boost::system::system_error(errno, boost::system::system_category(), "read file");
        }
        if (n == 0) {
            tls_out.clear();
            throw std::runtime_error("file shrank during the transfer");
        }
        tls_out.resize(static_cast<std::size_t>(n));
        co_await tls_flush();
        offset += static_cast<std::uint64_t>(n);
        count -= static_cast<std::uint64_t>(n);
        if ((since_yield += static_cast<std::uint64_t>(n)) >= (16u << 20)) {  // be fair to the other clients
            since_yield = 0;
            co_await asio::post(executor, asio::deferred);
        }
    }
}

asio::awaitable<void> Session::tls_close(Duration limit) {
    if (limit <= Duration::zero()) co_return;
    // Marked as if the client's close_notify had come: async_shutdown then
    // sends ours and returns instead of reading until the client's (which
    // may never come; boostorg/asio 164). linger() drains what follows.
    SSL* ssl = tls->native_handle();
    SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);
    arm_deadline(limit);  // a client that reads nothing cannot hold the send
    co_await tls->async_shutdown(asio::as_tuple(asio::deferred));  // any outcome ends the session
    disarm_deadline();
}

}  // namespace coserve::detail
