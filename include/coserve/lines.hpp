// Line framing for line-based services, written once and shared:
//  - a line ends at LF; a CR just before the LF is dropped, and the line
//    remembers which ending it had so the reply can use the same one;
//  - telnet IAC sequences are removed before a line is looked at;
//  - `max_line` counts a line's bytes without its ending; a longer line is
//    reported (too_long) as soon as it passes the limit, and the rest of it is
//    discarded up to its LF without being buffered;
//  - over TCP, a partial line followed by `line_idle` of silence, or by the
//    client's half-close, is taken as a line with no ending (for clients
//    that send "50,40" without a newline and wait for the answer).
//
// LineFramer is the pure part (bytes in, lines out: unit-testable without
// sockets); LineReader drives it from a Connection. Neither is thread-safe;
// each belongs to one session.
#pragma once

#include <coserve/config.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace coserve {

class Connection;

// Removes telnet IAC sequences (RFC 854): IAC followed by a command byte,
// IAC WILL/WONT/DO/DONT and its option byte, and IAC SB ... IAC SE
// subnegotiations. IAC IAC stands for one data byte 255 and is kept as such.
// Sequences may be split across calls.
class TelnetFilter {
public:
    // Filters data[0, n) in place; returns the number of bytes kept.
    std::size_t filter(char* data, std::size_t n) noexcept;

private:
    enum class State : unsigned char { data, iac, option, sub, sub_iac };
    State state_ = State::data;
};

struct Line {
    enum class Kind { line, too_long, end };
    Kind kind = Kind::end;
    std::string_view text;    // without its ending; valid until the next call on the framer/reader
    std::string_view ending;  // "\r\n", "\n", or "" for a partial line

    bool is_line() const noexcept { return kind == Kind::line; }
};

// The reply to a too-long line: "ERR line too long (max N bytes)\n".
std::string line_too_long_reply(std::size_t max_line);

class LineFramer {
public:
    explicit LineFramer(std::size_t max_line, bool telnet = true);

    // Where to put the next bytes read; never empty.
    std::span<char> prepare();
    // `n` bytes were written at the start of prepare()'s span.
    void commit(std::size_t n);
    // The next complete line or too_long event in what is buffered, or nullopt
    // when more input is needed.
    std::optional<Line> next();
    // True if next() would return without more input (a conservative guess:
    // an LF is buffered, or the buffered part is already too long).
    bool ready() const noexcept;
    // True if part of a line is buffered (and it is not being discarded).
    bool has_partial() const noexcept { return !discarding_ && end_ > begin_; }
    // True while the rest of an overlong line is being dropped.
    bool discarding() const noexcept { return discarding_; }
    // Takes the buffered partial line as a line without ending (a CR at its end is dropped).
    std::optional<Line> take_partial();

    std::size_t max_line() const noexcept { return max_line_; }

    // Moves up to out.size() buffered bytes that follow the last line into
    // `out` (for protocols that switch from lines to raw bytes, e.g. an upload).
    std::size_t take_raw(std::span<char> out) noexcept;

private:
    std::size_t max_line_;
    bool telnet_;
    TelnetFilter filter_;
    std::vector<char> buffer_;
    std::size_t begin_ = 0;  // start of the current line
    std::size_t scan_ = 0;   // bytes before this hold no LF
    std::size_t end_ = 0;    // end of buffered data
    bool discarding_ = false;
};

// Reads lines from a TCP connection. `line_idle` 0 disables the partial-line
// rule. A line (or the rest of an overlong one) not complete within the
// instance's `line_timeout` of its first byte ends the session (slowloris).
class LineReader {
public:
    LineReader(Connection& connection, std::size_t max_line, Duration line_idle, bool telnet = true);

    // The next line, too_long event, or end (the client closed).
    boost::asio::awaitable<Line> next();
    // True if next() would not have to wait for input.
    bool ready() const noexcept { return eof_ || framer_.ready(); }
    // Raw bytes already read past the last line (see LineFramer::take_raw).
    std::size_t take_raw(std::span<char> out) noexcept { return framer_.take_raw(out); }

private:
    Connection& connection_;
    LineFramer framer_;
    Duration line_idle_;
    Duration line_timeout_;
    std::optional<std::chrono::steady_clock::time_point> line_started_;
    bool eof_ = false;
};

// A UDP datagram as one line: its trailing LF or CRLF (if any) split off.
Line datagram_line(std::span<const char> datagram) noexcept;

// Fills `reply` (without line ending) for one request line.
using LineHandler = std::function<void(std::string_view line, std::string& reply)>;

// A request/response line protocol over TCP: each line's reply is written
// with the request's own ending ("" for a partial line); a too-long line gets
// line_too_long_reply() and the connection stays open. Returns when the
// client closes.
boost::asio::awaitable<void> serve_lines(Connection& connection, Duration line_idle, const LineHandler& handler);

// The same over UDP: one datagram is one line; the reply datagram is written
// into `out`. Returns its size (Service::datagram's contract).
std::size_t answer_datagram(std::span<const char> in, std::span<char> out, std::size_t max_line,
                            const LineHandler& handler);

}  // namespace coserve
