// The I/O half of line framing (see coserve/lines.hpp; the pure half is
// line_framer.cpp): LineReader on a connection, serve_lines, answer_datagram.
#include <coserve/lines.hpp>

#include <coserve/connection.hpp>

#include <boost/system/system_error.hpp>

#include <algorithm>
#include <array>
#include <cstring>

namespace coserve {

LineReader::LineReader(Connection& connection, std::size_t max_line, Duration line_idle, bool telnet)
    : connection_(connection),
      framer_(max_line, telnet),
      line_idle_(line_idle),
      line_timeout_(connection.options().line_timeout) {}

boost::asio::awaitable<Line> LineReader::next() {
    using clock = std::chrono::steady_clock;
    for (;;) {
        if (auto line = framer_.next()) {
            line_started_.reset();
            co_return *line;
        }
        if (eof_) {
            if (auto partial = framer_.take_partial()) co_return *partial;
            co_return Line{};
        }
        // How long this read may wait: until line_timeout runs out for an
        // unfinished line, and for line_idle when that rule applies.
        const bool unfinished = framer_.has_partial() || framer_.discarding();
        if (!unfinished) line_started_.reset();
        else if (!line_started_) line_started_ = clock::now();
        Duration wait = Duration::zero();
        bool deadline = false;
        if (unfinished && line_timeout_ > Duration::zero()) {
            wait = std::chrono::duration_cast<Duration>(*line_started_ + line_timeout_ - clock::now());
            if (wait <= Duration::zero())
                throw boost::system::system_error(boost::asio::error::timed_out, "line not complete within line_timeout");
            deadline = true;
        }
        const bool idle_rule = line_idle_ > Duration::zero() && framer_.has_partial();
        if (idle_rule && (!deadline || line_idle_ < wait)) {
            wait = line_idle_;
            deadline = false;
        }
        auto space = framer_.prepare();
        std::size_t n = 0;
        if (wait > Duration::zero()) {
            auto got = co_await connection_.read_some_for(boost::asio::buffer(space.data(), space.size()), wait);
            if (!got) {
                if (deadline)
                    throw boost::system::system_error(boost::asio::error::timed_out, "line not complete within line_timeout");
                if (auto partial = framer_.take_partial()) {
                    line_started_.reset();
                    co_return *partial;
                }
                continue;
            }
            n = *got;
        } else {
            n = co_await connection_.read_some(boost::asio::buffer(space.data(), space.size()));
        }
        if (n == 0) eof_ = true;
        else framer_.commit(n);
    }
}

Line datagram_line(std::span<const char> datagram) noexcept {
    std::string_view text(datagram.data(), datagram.size());
    std::string_view ending;
    if (text.ends_with("\r\n")) ending = "\r\n";
    else if (text.ends_with('\n')) ending = "\n";
    text.remove_suffix(ending.size());
    return Line{Line::Kind::line, text, ending};
}

boost::asio::awaitable<void> serve_lines(Connection& connection, Duration line_idle, const LineHandler& handler) {
    LineReader lines(connection, connection.options().max_line, line_idle);
    const std::string too_long = line_too_long_reply(connection.options().max_line);
    std::string reply;
    for (;;) {
        Line line = co_await lines.next();
        if (line.kind == Line::Kind::end) co_return;
        if (line.kind == Line::Kind::too_long) {
            co_await connection.write(boost::asio::buffer(too_long));
            continue;
        }
        reply.clear();
        handler(line.text, reply);
        const std::array<boost::asio::const_buffer, 2> out{boost::asio::buffer(reply), boost::asio::buffer(line.ending)};
        co_await connection.write(out);
    }
}

std::size_t answer_datagram(std::span<const char> in, std::span<char> out, std::size_t max_line,
                            const LineHandler& handler) {
    const Line line = datagram_line(in);
    std::string reply;
    std::string_view ending = line.ending;
    if (line.text.size() > max_line) {
        reply = line_too_long_reply(max_line);
        ending = {};
    } else {
        handler(line.text, reply);
    }
    if (reply.size() + ending.size() > out.size()) {
        reply = "ERR reply too large for a datagram\n";
        ending = {};
    }
    std::copy(reply.begin(), reply.end(), out.begin());
    std::copy(ending.begin(), ending.end(), out.begin() + static_cast<std::ptrdiff_t>(reply.size()));
    return reply.size() + ending.size();
}

}  // namespace coserve
