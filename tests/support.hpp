// Test support: an in-process server on OS-chosen loopback ports, and small
// blocking clients on raw POSIX sockets whose every wait has a timeout, so a
// broken server fails a test instead of hanging it.
#pragma once

#include <coserve/config.hpp>
#include <coserve/server.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace testing {

using namespace std::chrono_literals;

// Runs a Server built from INI text on its own thread; stops and joins on destruction.
class RunningServer {
public:
    explicit RunningServer(std::string_view ini);
    ~RunningServer();

    coserve::Server& server() { return *server_; }
    boost::asio::ip::tcp::endpoint tcp(std::string_view instance, std::size_t index = 0) const;
    boost::asio::ip::udp::endpoint udp(std::string_view instance, std::size_t index = 0) const;
    // Begins graceful shutdown and waits (up to `limit`) for run() to return; true if it did.
    bool stop_and_wait(std::chrono::milliseconds limit = 10s);

private:
    std::unique_ptr<coserve::Server> server_;
    std::thread thread_;
    std::atomic<bool> done_{false};
};

class TcpClient {
public:
    explicit TcpClient(const boost::asio::ip::tcp::endpoint& to);
    ~TcpClient();
    TcpClient(TcpClient&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    TcpClient(const TcpClient&) = delete;

    void send(std::string_view data);
    void shutdown_write();
    // Some bytes, or "" at EOF; throws on timeout or error.
    std::string recv_some(std::chrono::milliseconds timeout = 5s, std::size_t max = 65536);
    // Exactly n bytes (never more); throws on EOF or timeout first.
    std::string recv_exact(std::size_t n, std::chrono::milliseconds timeout = 10s);
    // Everything until the server closes.
    std::string recv_all(std::chrono::milliseconds timeout = 10s);
    // True if the server closed (EOF or reset) within `timeout`, with no data first.
    bool closed_within(std::chrono::milliseconds timeout);
    int fd() const { return fd_; }

private:
    int fd_ = -1;
};

class UdpClient {
public:
    explicit UdpClient(const boost::asio::ip::udp::endpoint& to);
    ~UdpClient();
    void send(std::string_view data);
    // One datagram, or nullopt after `timeout`.
    std::optional<std::string> recv(std::chrono::milliseconds timeout = 2s);

private:
    int fd_ = -1;
};

std::string random_bytes(std::size_t n, unsigned seed);

}  // namespace testing
