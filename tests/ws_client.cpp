#include "ws_client.hpp"

#include <catch2/catch.hpp>

#include <stdexcept>

namespace testing {

unsigned WsFrame::close_code() const {
    if (payload.size() < 2) return 0;
    return static_cast<unsigned>(static_cast<unsigned char>(payload[0])) << 8 | static_cast<unsigned char>(payload[1]);
}

std::string WsFrame::close_reason() const {
    return payload.size() > 2 ? payload.substr(2) : std::string();
}

std::string read_http_header(TcpClient& c, std::string& buffer) {
    while (buffer.find("\r\n\r\n") == std::string::npos) {
        const auto some = c.recv_some();
        if (some.empty()) throw std::runtime_error("closed before the end of the HTTP header: " + buffer);
        buffer += some;
    }
    const auto end = buffer.find("\r\n\r\n");
    std::string header = buffer.substr(0, end + 2);
    buffer.erase(0, end + 4);
    return header;
}

WsClient::WsClient(const boost::asio::ip::tcp::endpoint& to, std::string_view headers, std::string_view path)
    : tcp_(to) {
    std::string request = "GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(to.port()) +
                          "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    request.append(headers).append("\r\n");
    tcp_.send(request);
    response_ = read_http_header(tcp_, buffer_);
    status_ = std::stoi(response_.substr(9, 3));
}

std::string WsClient::header(std::string_view name) const {
    std::string lower_response = response_, lower_name(name);
    for (auto& c : lower_response) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (auto& c : lower_name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto at = lower_response.find("\r\n" + lower_name + ": ");
    if (at == std::string::npos) return "";
    const auto start = at + 4 + name.size();
    return response_.substr(start, response_.find("\r\n", start) - start);
}

void WsClient::send_frame(unsigned opcode, std::string_view payload, bool fin) {
    std::string f;
    f.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    if (payload.size() < 126) {
        f.push_back(static_cast<char>(0x80 | payload.size()));
    } else if (payload.size() <= 0xffff) {
        f.push_back(static_cast<char>(0x80 | 126));
        f.push_back(static_cast<char>(payload.size() >> 8));
        f.push_back(static_cast<char>(payload.size() & 0xff));
    } else {
        f.push_back(static_cast<char>(0x80 | 127));
        for (int shift = 56; shift >= 0; shift -= 8) f.push_back(static_cast<char>((payload.size() >> shift) & 0xff));
    }
    f.append(reinterpret_cast<const char*>(mask), 4);
    for (std::size_t i = 0; i < payload.size(); ++i) f.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
    tcp_.send(f);
}

bool WsClient::parse(WsFrame& out) {
    // Frames are taken from buffer_ at head_ (consume(), support.hpp).
    const std::size_t have = buffer_.size() - head_;
    if (have < 2) return false;
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(buffer_[head_ + i]); };
    std::size_t at = 2;
    std::uint64_t size = byte(1) & 0x7f;
    if (size == 126) {
        if (have < 4) return false;
        size = static_cast<std::uint64_t>(byte(2)) << 8 | byte(3);
        at = 4;
    } else if (size == 127) {
        if (have < 10) return false;
        size = 0;
        for (std::size_t i = 2; i < 10; ++i) size = size << 8 | byte(i);
        at = 10;
    }
    const bool masked = byte(1) & 0x80;
    if (masked) at += 4;
    if (have < at + size) return false;
    out.fin = byte(0) & 0x80;
    out.opcode = byte(0) & 0x0f;
    out.masked = masked;
    out.payload = buffer_.substr(head_ + at, size);
    consume(buffer_, head_, at + size);
    return true;
}

WsFrame WsClient::frame(std::chrono::milliseconds timeout) {
    WsFrame f;
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!parse(f)) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
        if (left <= 0ms) throw std::runtime_error("no whole frame within the timeout");
        std::string some;
        try {
            some = tcp_.recv_some(left);
        } catch (const std::runtime_error& e) {
            if (std::string_view(e.what()) == "recv: timed out") throw std::runtime_error("no whole frame within the timeout");
            throw;
        }
        if (some.empty()) throw std::runtime_error("closed before a whole frame");
        buffer_ += some;
    }
    return f;
}

std::string WsClient::text(std::chrono::milliseconds timeout) {
    for (;;) {
        WsFrame f = frame(timeout);
        if (f.opcode == 9) {
            if (answer_pings) {
                send_frame(10, f.payload);
                ++pings_answered;
            }
            continue;
        }
        if (f.opcode != 1 || !f.fin || f.masked)
            throw std::runtime_error("not an unmasked, whole text frame: opcode " + std::to_string(f.opcode) +
                                     (f.opcode == 8 ? ", close " + std::to_string(f.close_code()) + " " + f.close_reason() : ""));
        return f.payload;
    }
}

WsFrame WsClient::close_frame(std::chrono::milliseconds timeout) {
    for (;;) {
        WsFrame f = frame(timeout);
        if (f.opcode == 8) return f;
    }
}

bool WsClient::quiet_for(std::chrono::milliseconds wait) {
    WsFrame f;
    if (parse(f)) return false;
    try {
        const auto some = tcp_.recv_some(wait);
        buffer_ += some;
        return false;  // data, or "" at EOF: not quiet
    } catch (const std::runtime_error& e) {
        if (std::string_view(e.what()) == "recv: timed out") return true;
        throw;
    }
}

}  // namespace testing
