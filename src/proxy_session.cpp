// A TCP session's PROXY protocol header: read to its last byte and not one
// byte further (the service's first bytes, or a TLS ClientHello, follow it),
// within one deadline for the whole header.
#include "proxy_header.hpp"
#include "session.hpp"

#include <coserve/log.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/read.hpp>

#include <array>

namespace coserve::detail {

namespace asio = boost::asio;

namespace {
// Throws the error that ends a header read: the deadline, the client's close, or the socket's.
[[noreturn]] void fail_read(const boost::system::error_code& ec, bool timed_out) {
    if (timed_out) throw proxy::Error("no complete header in time");
    if (ec == asio::error::eof) throw proxy::Error("closed before the header ended");
    throw boost::system::system_error(ec, "PROXY header");
}
}  // namespace

asio::awaitable<std::optional<asio::ip::tcp::endpoint>> Session::read_proxy_header() {
    const auto& options = instance.config.options;
    std::array<unsigned char, proxy::v2_fixed + proxy::v2_address_max> buf{};
    std::size_t have = 0;
    arm_deadline(options.proxy_timeout);  // expiry cancels the socket's operations
    struct Disarm {
        Session& s;
        ~Disarm() { s.disarm_deadline(); }
    } disarm{*this};
    auto read_exactly = [&](std::size_t n) -> asio::awaitable<void> {
        auto [ec, got] = co_await asio::async_read(socket, asio::buffer(buf.data() + have, n), asio::as_tuple(asio::deferred));
        if (ec) fail_read(ec, timed_out);
        have += got;
    };
    co_await read_exactly(proxy::probe_size);
    proxy::Header header;
    if (proxy::detect(std::span(buf).first(have), options.proxy_protocol) == 1) {
        // v1: a line of at most 107 bytes. Peek at what has come, and take
        // through the LF if it is there, or all of it (none of it is the
        // service's) and wait for more: never more than the line.
        auto text = [&] { return std::string_view(reinterpret_cast<const char*>(buf.data()), have); };
        std::size_t length = proxy::v1_length(text());
        while (length == 0) {
            boost::system::error_code ec;
            const std::size_t seen = socket.receive(asio::buffer(buf.data() + have, proxy::v1_max - have),
                                                    asio::socket_base::message_peek, ec);
            if (ec == asio::error::would_block) {
                auto [wait_ec] = co_await socket.async_wait(asio::socket_base::wait_read, asio::as_tuple(asio::deferred));
                if (wait_ec) fail_read(wait_ec, timed_out);
                continue;
            }
            if (ec) fail_read(ec, false);
            if (seen == 0) fail_read(asio::error::eof, false);
            const auto lf = std::string_view(reinterpret_cast<const char*>(buf.data() + have), seen).find('\n');
            const std::size_t take = lf == std::string_view::npos ? seen : lf + 1;
            co_await read_exactly(take);  // already here: completes at once
            length = proxy::v1_length(text());
        }
        header = proxy::parse_v1(text().substr(0, length));
    } else {
        co_await read_exactly(proxy::v2_fixed - proxy::probe_size);
        const auto fixed = std::span<const unsigned char>(buf).first(proxy::v2_fixed);
        const std::size_t length = proxy::v2_length(fixed);
        const std::size_t keep = proxy::v2_keep(fixed);
        co_await read_exactly(keep);
        // TLVs (and whatever else the length covers): read and dropped.
        std::array<unsigned char, 256> skip{};
        for (std::size_t left = length - keep; left > 0;) {
            auto [ec, got] = co_await asio::async_read(socket, asio::buffer(skip.data(), std::min(left, skip.size())),
                                                       asio::as_tuple(asio::deferred));
            if (ec) fail_read(ec, timed_out);
            left -= got;
        }
        header = proxy::parse_v2(fixed, std::span<const unsigned char>(buf).subspan(proxy::v2_fixed, keep));
    }
    touch();
    if (header.local) co_return std::nullopt;
    co_return header.source;
}

void Session::set_peer(const asio::ip::tcp::endpoint& client) {
    peer = log::format_endpoint(client);
    log_peer = peer;
}

}  // namespace coserve::detail
