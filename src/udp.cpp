// UDP: one receive loop per bound socket; buffers allocated once per socket.
#include "listeners.hpp"

#include <coserve/log.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <vector>

namespace coserve::detail {
namespace {

namespace asio = boost::asio;
using asio::ip::udp;

asio::awaitable<void> receive_loop(Instance& inst, udp::socket& socket) {
    std::vector<char> request(65536);
    std::vector<char> reply(65536);
    udp::endpoint from;
    Service& service = *inst.config.service;
    // Datagrams are read and answered with plain non-blocking calls while
    // there are any (as an epoll server in C does), waiting for readability
    // only when the socket is empty, and yielding to the other clients of
    // the loop every `batch` datagrams.
    constexpr int batch = 64;
    boost::system::error_code ignored;
    socket.non_blocking(true, ignored);
    for (int handled = 0;; ++handled) {
        boost::system::error_code ec;
        std::size_t n = socket.receive_from(asio::buffer(request), from, 0, ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again || handled == batch) {
            handled = 0;
            if (ec) {
                auto [wait_ec] = co_await socket.async_wait(udp::socket::wait_read, asio::as_tuple(asio::use_awaitable));
                if (!socket.is_open() || wait_ec == asio::error::operation_aborted) co_return;
                continue;
            }
            co_await asio::post(socket.get_executor(), asio::use_awaitable);
            if (!socket.is_open()) co_return;
        }
        if (!socket.is_open() || ec == asio::error::operation_aborted) co_return;
        if (ec) {  // e.g. ICMP port unreachable reported for an earlier reply
            COSERVE_LOG(Severity::debug, inst.config.name, log::format_endpoint(from)) << "receive: " << ec.message();
            continue;
        }
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
            continue;
        }
        std::size_t size = Service::no_reply;
        try {
            size = service.datagram(std::span<const char>(request.data(), n), from, std::span<char>(reply));
        } catch (const std::exception& e) {
            ++inst.counters.errors;
            COSERVE_LOG(Severity::error, inst.config.name, log::format_endpoint(from)) << "datagram failed: " << e.what();
            continue;
        }
        if (size == Service::no_reply) continue;
        if (inst.config.options.udp_max_reply > 0) size = std::min(size, inst.config.options.udp_max_reply);
        boost::system::error_code send_ec;
        socket.send_to(asio::buffer(reply.data(), size), from, 0, send_ec);
        if (send_ec == asio::error::would_block || send_ec == asio::error::try_again) {  // the send buffer is full: wait
            auto [ec2, sent] =
                co_await socket.async_send_to(asio::buffer(reply.data(), size), from, asio::as_tuple(asio::use_awaitable));
            if (!socket.is_open()) co_return;
            send_ec = ec2;
            (void)sent;
        }
        if (send_ec)
            COSERVE_LOG(Severity::debug, inst.config.name, log::format_endpoint(from)) << "send: " << send_ec.message();
        else
            ++inst.counters.datagrams_out;
    }
}

}  // namespace

void start_udp(Instance& inst) {
    for (auto& socket : inst.udp_sockets)
        asio::co_spawn(socket.get_executor(), receive_loop(inst, socket),
                       [&inst](std::exception_ptr e) { log_failure(inst.config.name, "udp receive", e); });
}

}  // namespace coserve::detail
