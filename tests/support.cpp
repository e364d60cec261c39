#include "support.hpp"

#include <catch2/catch.hpp>

#include <coserve/log.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <algorithm>
#include <random>
#include <stdexcept>

namespace testing {

namespace {

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

template <class Endpoint, class From = Endpoint>
int connect_to(const Endpoint& ep, int type, const From* from = nullptr) {
    int fd = ::socket(ep.protocol().family(), type | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket");
    if (from) {
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd, from->data(), static_cast<socklen_t>(from->size())) != 0) {
            int e = errno;
            ::close(fd);
            errno = e;
            fail("bind");
        }
    }
    if (::connect(fd, ep.data(), static_cast<socklen_t>(ep.size())) != 0) {
        int e = errno;
        ::close(fd);
        errno = e;
        fail("connect");
    }
    return fd;
}

// Waits for readability; false on timeout.
bool wait_readable(int fd, std::chrono::milliseconds timeout) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r < 0) fail("poll");
    return r > 0;
}

}  // namespace

RunningServer::RunningServer(std::string_view ini) {
    coserve::log::init(coserve::Severity::warning);
    auto config = coserve::load_config_text(ini, "test.ini");
    // The ThreadSanitizer run (ctest --preset tsan) runs every in-process
    // server on several event-loop threads.
    if (const char* t = std::getenv("COSERVE_TEST_THREADS"); t && config.server.threads == 1)
        config.server.threads = std::stoi(t);
    // ... and with COSERVE_TEST_THREAD_MODEL=per-thread, as that many loops.
    if (const char* m = std::getenv("COSERVE_TEST_THREAD_MODEL"); m && std::string_view(m) == "per-thread")
        config.server.loop_per_thread = true;
    server_ = std::make_unique<coserve::Server>(std::move(config), testing::no_signals());
    server_->start();
    thread_ = std::thread([this] {
        server_->run();
        done_ = true;
    });
}

RunningServer::~RunningServer() {
    if (thread_.joinable()) {
        server_->stop();
        thread_.join();
    }
}

bool RunningServer::stop_and_wait(std::chrono::milliseconds limit) {
    server_->stop();
    auto end = std::chrono::steady_clock::now() + limit;
    while (!done_ && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(5ms);
    if (!done_) return false;
    thread_.join();
    return true;
}

boost::asio::ip::tcp::endpoint RunningServer::tcp(std::string_view instance, std::size_t index) const {
    return server_->tcp_endpoints(instance).at(index);
}

boost::asio::ip::udp::endpoint RunningServer::udp(std::string_view instance, std::size_t index) const {
    return server_->udp_endpoints(instance).at(index);
}

TcpClient::TcpClient(const boost::asio::ip::tcp::endpoint& to) : fd_(connect_to(to, SOCK_STREAM)) {}

TcpClient::TcpClient(const boost::asio::ip::tcp::endpoint& to, const boost::asio::ip::address& from) {
    const boost::asio::ip::tcp::endpoint local(from, 0);
    fd_ = connect_to(to, SOCK_STREAM, &local);
}

TcpClient::~TcpClient() {
    if (fd_ >= 0) ::close(fd_);
}

void TcpClient::send(std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("send");
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

void TcpClient::shutdown_write() {
    ::shutdown(fd_, SHUT_WR);
}

std::string TcpClient::recv_some(std::chrono::milliseconds timeout, std::size_t max) {
    if (!wait_readable(fd_, timeout)) throw std::runtime_error("recv: timed out");
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, std::min(max, sizeof buf), 0);
    if (n < 0) {
        if (errno == ECONNRESET) return {};
        fail("recv");
    }
    return std::string(buf, static_cast<std::size_t>(n));
}

std::string TcpClient::recv_exact(std::size_t n, std::chrono::milliseconds timeout) {
    std::string out;
    auto end = std::chrono::steady_clock::now() + timeout;
    while (out.size() < n) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
        if (left <= 0ms) throw std::runtime_error("recv_exact: timed out after " + std::to_string(out.size()) + " bytes");
        auto chunk = recv_some(left, n - out.size());
        if (chunk.empty()) throw std::runtime_error("recv_exact: EOF after " + std::to_string(out.size()) + " bytes");
        out += chunk;
    }
    return out;
}

std::string TcpClient::recv_all(std::chrono::milliseconds timeout) {
    std::string out;
    auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
        if (left <= 0ms) throw std::runtime_error("recv_all: timed out");
        auto chunk = recv_some(left);
        if (chunk.empty()) return out;
        out += chunk;
    }
}

bool TcpClient::closed_within(std::chrono::milliseconds timeout) {
    if (!wait_readable(fd_, timeout)) return false;
    char c;
    ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

std::string LineClient::line(std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto lf = buffer_.find('\n', head_);
        if (lf != std::string::npos) {
            std::string line = buffer_.substr(head_, lf - head_);
            consume(buffer_, head_, lf + 1 - head_);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            return line;
        }
        compact();
        if (eof_) throw std::runtime_error("line: EOF (buffered: " + buffer_ + ")");
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
        if (left <= 0ms) throw std::runtime_error("line: timed out (buffered: " + buffer_ + ")");
        auto chunk = tcp_.recv_some(left);
        if (chunk.empty()) eof_ = true;
        buffer_ += chunk;
    }
}

std::string LineClient::bytes(std::size_t n, std::chrono::milliseconds timeout) {
    compact();
    std::string out = buffer_.substr(0, n);
    buffer_.erase(0, out.size());
    if (out.size() < n) out += tcp_.recv_exact(n - out.size(), timeout);
    return out;
}

bool LineClient::quiet_for(std::chrono::milliseconds wait) {
    try {
        auto l = line(wait);
        compact();
        buffer_.insert(0, l + "\n");
        return false;
    } catch (const std::runtime_error&) {
        return buffer_.find('\n', head_) == std::string::npos && !eof_;
    }
}

bool LineClient::closed_within(std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (!eof_) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
        if (left <= 0ms) return false;
        try {
            auto chunk = tcp_.recv_some(left);
            if (chunk.empty()) eof_ = true;
            buffer_ += chunk;
        } catch (const std::runtime_error&) {
            return false;
        }
    }
    return true;
}

UdpClient::UdpClient(const boost::asio::ip::udp::endpoint& to) : fd_(connect_to(to, SOCK_DGRAM)) {}

UdpClient::UdpClient(const boost::asio::ip::udp::endpoint& to, const boost::asio::ip::udp::endpoint& from)
    : fd_(connect_to(to, SOCK_DGRAM, &from)) {}

UdpClient::~UdpClient() {
    if (fd_ >= 0) ::close(fd_);
}

void UdpClient::send(std::string_view data) {
    if (::send(fd_, data.data(), data.size(), 0) < 0) fail("udp send");
}

std::optional<std::string> UdpClient::recv(std::chrono::milliseconds timeout) {
    if (!wait_readable(fd_, timeout)) return std::nullopt;
    std::string buf(65536, '\0');
    ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n < 0) fail("udp recv");
    buf.resize(static_cast<std::size_t>(n));
    return buf;
}

#ifndef COSERVED_PATH
#define COSERVED_PATH "coserved"
#endif

ServerProcess::ServerProcess(std::string_view ini, std::vector<std::string> env) {
    char tmpl[] = "/tmp/coserve-test-XXXXXX";
    if (!mkdtemp(tmpl)) fail("mkdtemp");
    dir_ = tmpl;
    {
        std::ofstream out(dir_ + "/test.ini");
        out << ini;
    }
    pid_ = fork();
    if (pid_ < 0) fail("fork");
    if (pid_ == 0) {
        for (auto& e : env) putenv(e.data());
        const std::string log = dir_ + "/log";
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        dup2(fd, 1);
        const std::string config = dir_ + "/test.ini";
        execl(COSERVED_PATH, COSERVED_PATH, "--config", config.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    for (int i = 0; i < 400; ++i) {
        if (log().find("; udp ") != std::string::npos) return;
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("coserved exited at start: " + log());
        }
        std::this_thread::sleep_for(25ms);
    }
    throw std::runtime_error("coserved did not start: " + log());
}

std::pair<int, bool> terminate(int pid, std::chrono::milliseconds grace) {
    ::kill(pid, SIGTERM);
    int status = 0;
    bool reaped = false;
    const auto end = std::chrono::steady_clock::now() + grace;
    while (!reaped && std::chrono::steady_clock::now() < end) {
        reaped = waitpid(pid, &status, WNOHANG) == pid;
        if (!reaped) std::this_thread::sleep_for(10ms);
    }
    if (!reaped) {
        ::kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    return {status, reaped};
}

int ServerProcess::stop() {
    if (pid_ <= 0) return status_;
    const auto [status, reaped] = terminate(pid_, 10s);
    pid_ = -1;
    status_ = status;
    INFO("coserved's log:\n" << log());
    CHECK(reaped);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(sanitizer_reports(log()).empty());
    return status;
}

void ServerProcess::kill_hard() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
    pid_ = -1;
}

ServerProcess::~ServerProcess() {
    if (pid_ > 0) {
        if (std::uncaught_exceptions() > 0) {  // the test failed already: just end it
            ::kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        } else {
            stop();
        }
    }
    std::filesystem::remove_all(dir_);
}

std::string sanitizer_reports(const std::string& log) {
    std::string found;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);)
        if (line.find("Sanitizer") != std::string::npos || line.find("runtime error") != std::string::npos)
            found += line + "\n";
    return found;
}

std::string ServerProcess::log() const {
    std::ifstream in(dir_ + "/log");
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

namespace {
// "[NAME] service TYPE: tcp A:P, ...; udp A:P, ..." -> the first address and
// port after `what` ("tcp " or "udp ").
std::pair<boost::asio::ip::address, unsigned short> announced(const std::string& text, std::string_view instance,
                                                              std::string_view what) {
    const std::string key = "[" + std::string(instance) + "] service ";
    auto at = text.find(key);
    if (at == std::string::npos) throw std::runtime_error("no instance " + std::string(instance) + " in the log");
    at = text.find(what, text.find(": tcp ", at));
    const auto begin = at + what.size();
    const auto end = text.find_first_of(",;\n", begin);
    const auto ep = text.substr(begin, end - begin);
    const auto colon = ep.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("no " + std::string(what) + "endpoint for " + std::string(instance));
    return {boost::asio::ip::make_address(ep.substr(0, colon)),
            static_cast<unsigned short>(std::stoi(ep.substr(colon + 1)))};
}
}  // namespace

boost::asio::ip::tcp::endpoint ServerProcess::tcp(std::string_view instance) const {
    const auto [address, port] = announced(log(), instance, "tcp ");
    return {address, port};
}

boost::asio::ip::udp::endpoint ServerProcess::udp(std::string_view instance) const {
    const auto [address, port] = announced(log(), instance, "udp ");
    return {address, port};
}

namespace {
long status_kib(int pid, const char* key) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string word;
    while (status >> word)
        if (word == key) {
            long v = 0;
            status >> v;
            return v;
        }
    return -1;
}
}  // namespace

long ServerProcess::peak_rss_kib() const {
    return status_kib(pid_, "VmHWM:");
}

long ServerProcess::rss_kib() const {
    return status_kib(pid_, "VmRSS:");
}

std::string run(const std::string& command, int* status) {
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    if (!p) fail("popen " + command);
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    const int rc = ::pclose(p);
    if (status) *status = rc;
    return out;
}

std::string scrape_metrics(RunningServer& rs) {
    return run("curl -s http://127.0.0.1:" + std::to_string(rs.server().metrics_endpoints().at(0).port()) + "/metrics");
}

double metric_value(const std::string& text, const std::string& sample) {
    const auto at = text.find("\n" + sample + " ");
    return at == std::string::npos ? -1 : std::stod(text.substr(at + sample.size() + 2));
}

std::string scrape_until(RunningServer& rs, const std::string& sample, double want, std::chrono::milliseconds within) {
    const auto end = std::chrono::steady_clock::now() + within;
    for (;;) {
        std::string text = scrape_metrics(rs);
        if (metric_value(text, sample) == want || std::chrono::steady_clock::now() >= end) return text;
        std::this_thread::sleep_for(50ms);
    }
}

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
}

}  // namespace testing

namespace testing {

ChildProcess::ChildProcess(std::vector<std::string> argv) {
    char tmpl[] = "/tmp/coserve-child-XXXXXX";
    const int log_fd = mkstemp(tmpl);
    if (log_fd < 0) fail("mkstemp");
    log_ = tmpl;
    pid_ = fork();
    if (pid_ < 0) fail("fork");
    if (pid_ == 0) {
        dup2(log_fd, 1);
        dup2(log_fd, 2);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
    }
    ::close(log_fd);
}

ChildProcess::~ChildProcess() {
    stop();
    std::filesystem::remove(log_);
}

void ChildProcess::stop() {
    if (pid_ <= 0) return;
    terminate(pid_, 5s);
    pid_ = -1;
}

std::string ChildProcess::output() const {
    std::ifstream in(log_);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

namespace {
sockaddr_in loopback(unsigned short port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
}
}  // namespace

unsigned short free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        fail("free_port");
    ::close(fd);
    return ntohs(a.sin_port);
}

bool wait_for_port(unsigned short port, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        const sockaddr_in a = loopback(port);
        const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
        ::close(fd);
        if (ok) return true;
        std::this_thread::sleep_for(20ms);
    }
    return false;
}

RedisServer::RedisServer(std::vector<std::string> extra_args) : port_(free_port()), extra_(std::move(extra_args)) {
    restart();
}

void RedisServer::restart() {
    process_.reset();
    std::vector<std::string> argv{"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"};
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    process_ = std::make_unique<ChildProcess>(std::move(argv));
    if (!wait_for_port(port_)) throw std::runtime_error("redis-server did not start: " + process_->output());
}

BulkCount count_bulk(int n, int lines, const std::function<std::optional<std::pair<int, int>>(int)>& heard) {
    BulkCount count;
    for (int i = 0; i < n; ++i) {
        std::vector<int> next(static_cast<std::size_t>(n), 0);
        int said = 0;
        while (said < (n - 1) * lines) {
            const auto message = heard(i);
            if (!message) continue;
            const auto [from, k] = *message;
            if (from < 0 || from >= n) throw std::runtime_error("a line from no member: " + std::to_string(from));
            if (from == i) ++count.own;
            if (k != next[static_cast<std::size_t>(from)]) ++count.wrong;
            next[static_cast<std::size_t>(from)] = k + 1;
            ++said;
        }
        for (int k = 0; k < n; ++k)
            if (next[static_cast<std::size_t>(k)] != (k == i ? 0 : lines)) ++count.wrong;
    }
    return count;
}

}  // namespace testing
