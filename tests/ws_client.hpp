// Test support: a blocking WebSocket client (RFC 6455) on a TcpClient, with
// every byte in view: the upgrade request as written, the response as sent,
// masked frames out, frames in exactly as the server framed them (pings
// too, when asked). Every wait has a timeout.
#pragma once

#include "support.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace testing {

struct WsFrame {
    bool fin = true;
    unsigned opcode = 0;  // 1 text, 2 binary, 8 close, 9 ping, 10 pong, 0 continuation
    std::string payload;
    bool masked = false;  // a server must never mask
    // A close frame's code and reason.
    unsigned close_code() const;
    std::string close_reason() const;
};

// Reads from `c` into `buffer` until a blank line; returns the header
// through its last CRLF and leaves what follows in `buffer`. Throws when the
// connection closes first.
std::string read_http_header(TcpClient& c, std::string& buffer);

class WsClient {
public:
    // Connects and sends an upgrade to /chat for Host 127.0.0.1:PORT with
    // `headers` (each "Name: value\r\n") added; reads the response header.
    explicit WsClient(const boost::asio::ip::tcp::endpoint& to, std::string_view headers = {},
                      std::string_view path = "/chat");
    int status() const { return status_; }
    const std::string& response() const { return response_; }  // status line and headers
    // The value of a response header ("" if absent).
    std::string header(std::string_view name) const;

    void send_frame(unsigned opcode, std::string_view payload, bool fin = true);
    void send_text(std::string_view text) { send_frame(1, text); }
    // The next frame as sent.
    WsFrame frame(std::chrono::milliseconds timeout = 5s);
    // The next text message's payload; pings are answered with pongs on the
    // way (unless answer_pings is false, then they are skipped). Throws on a
    // close frame or anything else.
    std::string text(std::chrono::milliseconds timeout = 5s);
    // The close frame, skipping data frames before it; then the TCP close.
    WsFrame close_frame(std::chrono::milliseconds timeout = 5s);
    // True if no frame arrives within `wait` and the connection stays open.
    bool quiet_for(std::chrono::milliseconds wait);
    bool answer_pings = true;
    int pings_answered = 0;
    // Bytes read past the response header (a refusal's body) or past the last frame.
    std::string buffered() const { return buffer_.substr(head_); }
    TcpClient& tcp() { return tcp_; }

private:
    bool parse(WsFrame& out);  // one whole frame from buffer_, if there is one

    TcpClient tcp_;
    std::string buffer_;
    std::size_t head_ = 0;  // parse(): where the next frame starts in buffer_
    std::string response_;
    int status_ = 0;
};

}  // namespace testing
