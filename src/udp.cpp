// UDP: one receive loop per bound socket; buffers allocated once per socket.
#include "listeners.hpp"

#include <coserve/log.hpp>

#include <boost/asio/deferred.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace coserve::detail {
namespace {

namespace asio = boost::asio;
using asio::ip::udp;

// Reused for every batch of one socket: `batch` slots of 64 KiB for requests
// and as many for replies. The memory comes from operator new[] without being
// written, so only the pages that datagrams actually touch become resident.
struct Batch {
    static constexpr std::size_t slot = 65536;
    explicit Batch(int n)
        : size(static_cast<std::size_t>(n)), in(new char[size * slot]), out(new char[size * slot]),
          rx(size), tx(size), rx_iov(size), tx_iov(size), from(size) {}
    std::size_t size;
    std::unique_ptr<char[]> in, out;
    std::vector<mmsghdr> rx, tx;
    std::vector<iovec> rx_iov, tx_iov;
    std::vector<sockaddr_storage> from;
};

// One message of a batch: one buffer, one peer address.
void set_message(mmsghdr& m, iovec& iov, char* data, std::size_t size, sockaddr_storage* peer, socklen_t peer_len) {
    iov = {data, size};
    m.msg_hdr = msghdr{};
    m.msg_hdr.msg_name = peer;
    m.msg_hdr.msg_namelen = peer_len;
    m.msg_hdr.msg_iov = &iov;
    m.msg_hdr.msg_iovlen = 1;
}

udp::endpoint endpoint_of(const sockaddr_storage& sa, socklen_t len) {
    udp::endpoint ep;
    std::memcpy(ep.data(), &sa, std::min<std::size_t>(len, sizeof sa));
    ep.resize(len);
    return ep;
}

// Decides on one received datagram; returns the reply's size or no_reply.
std::size_t answer(Instance& inst, std::span<const char> request, const udp::endpoint& from, std::span<char> reply) {
    ++inst.counters.datagrams_in;
    // Never answer what could start a reflection loop, nor what the limits refuse.
    Refusal why = udp_source_refusal(from.address(), from.port());
    if (why == Refusal::none && inst.server.udp_ports.contains(from.port())) why = Refusal::own_port;
    if (why == Refusal::none) why = inst.limits.admit_datagram(from.address());
    if (why != Refusal::none) {
        ++inst.counters.dropped[static_cast<std::size_t>(why)];
        if (inst.limits.should_log(from.address()))
            COSERVE_LOG(Severity::info, inst.config.name, log::format_endpoint(from))
                << "datagram dropped (" << refusal_name(why) << "); logged once a minute per source";
        return Service::no_reply;
    }
    std::size_t size = Service::no_reply;
    try {
        size = inst.config.service->datagram(request, from, reply);
    } catch (const std::exception& e) {
        ++inst.counters.errors;
        COSERVE_LOG(Severity::error, inst.config.name, log::format_endpoint(from)) << "datagram failed: " << e.what();
        return Service::no_reply;
    }
    if (size != Service::no_reply && inst.config.options.udp_max_reply > 0)
        size = std::min(size, inst.config.options.udp_max_reply);
    return size;
}

bool would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK; }

// Datagrams are taken up to `udp_batch` at a time with one recvmmsg and the
// replies sent with one sendmmsg, with plain non-blocking calls while there
// are any (as an epoll server in C reads until EAGAIN), waiting for
// readability only when the socket is empty, and yielding to the other clients
// of the loop every 64 datagrams.
asio::awaitable<void> receive_loop(Instance& inst, udp::socket& socket) {
    Batch b(inst.config.options.udp_batch);
    const int fd = socket.native_handle();
    boost::system::error_code ignored;
    socket.non_blocking(true, ignored);
    std::size_t since_yield = 0;
    for (;;) {
        for (std::size_t i = 0; i < b.size; ++i)
            set_message(b.rx[i], b.rx_iov[i], b.in.get() + i * Batch::slot, Batch::slot, &b.from[i],
                        sizeof(sockaddr_storage));
        int got = ::recvmmsg(fd, b.rx.data(), static_cast<unsigned>(b.size), MSG_DONTWAIT, nullptr);
        if (got < 0) {
            int e = errno;
            if (e == EINTR) continue;
            if (!would_block(e)) {  // e.g. ICMP port unreachable reported for an earlier reply
                COSERVE_LOG(Severity::debug, inst.config.name, "-") << "receive: " << std::strerror(e);
                continue;
            }
            since_yield = 0;
            auto [wait_ec] = co_await socket.async_wait(udp::socket::wait_read, asio::as_tuple(asio::deferred));
            if (!socket.is_open() || wait_ec == asio::error::operation_aborted) co_return;
            continue;
        }
        std::size_t replies = 0;
        for (std::size_t i = 0; i < static_cast<std::size_t>(got); ++i) {
            const msghdr& h = b.rx[i].msg_hdr;
            udp::endpoint from = endpoint_of(b.from[i], h.msg_namelen);
            char* reply = b.out.get() + replies * Batch::slot;
            std::size_t size = answer(inst, std::span<const char>(b.in.get() + i * Batch::slot, b.rx[i].msg_len), from,
                                      std::span<char>(reply, Batch::slot));
            if (size == Service::no_reply) continue;
            set_message(b.tx[replies], b.tx_iov[replies], reply, size, &b.from[i], h.msg_namelen);
            ++replies;
        }
        for (std::size_t sent = 0; sent < replies;) {
            int n = ::sendmmsg(fd, b.tx.data() + sent, static_cast<unsigned>(replies - sent), MSG_DONTWAIT);
            if (n > 0) {
                sent += static_cast<std::size_t>(n);
                inst.counters.datagrams_out += static_cast<std::uint64_t>(n);
                continue;
            }
            int e = errno;
            if (e == EINTR) continue;
            if (would_block(e)) {  // the send buffer is full: wait, keeping the replies in order
                auto [wait_ec] = co_await socket.async_wait(udp::socket::wait_write, asio::as_tuple(asio::deferred));
                if (!socket.is_open() || wait_ec == asio::error::operation_aborted) co_return;
                continue;
            }
            const msghdr& h = b.tx[sent].msg_hdr;
            COSERVE_LOG(Severity::debug, inst.config.name,
                        log::format_endpoint(endpoint_of(*static_cast<sockaddr_storage*>(h.msg_name), h.msg_namelen)))
                << "send: " << std::strerror(e);
            ++sent;  // this reply is lost, as a failed sendto's would be; the rest still go
        }
        since_yield += static_cast<std::size_t>(got);
        if (since_yield >= 64) {
            since_yield = 0;
            co_await asio::post(socket.get_executor(), asio::deferred);
            if (!socket.is_open()) co_return;
        }
    }
}

}  // namespace

void start_udp(Instance& inst) {
    for (auto& socket : inst.udp_sockets)
        asio::co_spawn(socket.get_executor(), receive_loop(inst, socket),
                       [&inst](std::exception_ptr e) { log_failure(inst.config.name, "udp receive", e); });
}

}  // namespace coserve::detail
