#include <coserve/lines.hpp>

#include <coserve/connection.hpp>

#include <boost/system/system_error.hpp>

#include <algorithm>
#include <array>
#include <cstring>

namespace coserve {

namespace {
constexpr unsigned char IAC = 255, SB = 250, SE = 240, WILL = 251, DONT = 254;
constexpr std::size_t initial_buffer = 4096;
}  // namespace

std::size_t TelnetFilter::filter(char* data, std::size_t n) noexcept {
    std::size_t out = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(data[i]);
        switch (state_) {
        case State::data:
            if (c == IAC) state_ = State::iac;
            else data[out++] = data[i];
            break;
        case State::iac:
            if (c == IAC) {
                data[out++] = data[i];  // IAC IAC: one data byte 255
                state_ = State::data;
            } else if (c >= WILL && c <= DONT) {
                state_ = State::option;
            } else if (c == SB) {
                state_ = State::sub;
            } else {
                state_ = State::data;  // a two-byte command (NOP, AYT, IP, ...)
            }
            break;
        case State::option:
            state_ = State::data;
            break;
        case State::sub:
            if (c == IAC) state_ = State::sub_iac;
            break;
        case State::sub_iac:
            state_ = c == SE ? State::data : State::sub;
            break;
        }
    }
    return out;
}

std::string line_too_long_reply(std::size_t max_line) {
    return "ERR line too long (max " + std::to_string(max_line) + " bytes)\n";
}

LineFramer::LineFramer(std::size_t max_line, bool telnet)
    : max_line_(max_line), telnet_(telnet), buffer_(initial_buffer) {}

std::span<char> LineFramer::prepare() {
    if (begin_ == end_) {
        begin_ = scan_ = end_ = 0;
    } else if (begin_ > 0 && (end_ == buffer_.size() || begin_ >= buffer_.size() / 2)) {
        std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
        scan_ -= begin_;
        end_ -= begin_;
        begin_ = 0;
    }
    if (end_ == buffer_.size()) {
        // Only a partial line of at most max_line + 1 bytes can fill it (next()
        // reports anything longer), so the cap below always leaves room.
        const std::size_t cap = std::max(initial_buffer, max_line_ + 2);
        buffer_.resize(std::min(cap, buffer_.size() * 2));
    }
    return {buffer_.data() + end_, buffer_.size() - end_};
}

void LineFramer::commit(std::size_t n) {
    char* p = buffer_.data() + end_;
    if (telnet_) n = filter_.filter(p, n);
    if (discarding_) {
        // The rest of an overlong line: dropped up to and including its LF.
        auto* lf = static_cast<char*>(std::memchr(p, '\n', n));
        if (!lf) return;
        discarding_ = false;
        const std::size_t rest = n - static_cast<std::size_t>(lf + 1 - p);
        std::memmove(p, lf + 1, rest);
        n = rest;
    }
    end_ += n;
}

std::optional<Line> LineFramer::next() {
    if (discarding_) return std::nullopt;
    auto* base = buffer_.data();
    if (auto* lf = static_cast<char*>(std::memchr(base + scan_, '\n', end_ - scan_))) {
        const std::size_t pos = static_cast<std::size_t>(lf - base);
        std::size_t len = pos - begin_;
        const bool cr = len > 0 && base[pos - 1] == '\r';
        if (cr) --len;
        Line line;
        if (len > max_line_) {
            line.kind = Line::Kind::too_long;
        } else {
            line.kind = Line::Kind::line;
            line.text = std::string_view(base + begin_, len);
            line.ending = cr ? "\r\n" : "\n";
        }
        begin_ = scan_ = pos + 1;
        return line;
    }
    scan_ = end_;
    const std::size_t n = end_ - begin_;
    if (n > max_line_ + 1 || (n == max_line_ + 1 && base[end_ - 1] != '\r')) {
        begin_ = scan_ = end_ = 0;
        discarding_ = true;
        return Line{Line::Kind::too_long, {}, {}};
    }
    return std::nullopt;
}

std::size_t LineFramer::take_raw(std::span<char> out) noexcept {
    if (discarding_) return 0;
    const std::size_t n = std::min(out.size(), end_ - begin_);
    if (n > 0) std::memcpy(out.data(), buffer_.data() + begin_, n);
    begin_ += n;
    scan_ = std::max(scan_, begin_);
    return n;
}

bool LineFramer::ready() const noexcept {
    if (discarding_) return false;
    return std::memchr(buffer_.data() + scan_, '\n', end_ - scan_) != nullptr || end_ - begin_ > max_line_ + 1;
}

std::optional<Line> LineFramer::take_partial() {
    if (!has_partial()) return std::nullopt;
    std::string_view text(buffer_.data() + begin_, end_ - begin_);
    if (text.ends_with('\r')) text.remove_suffix(1);
    begin_ = scan_ = end_ = 0;
    return Line{Line::Kind::line, text, {}};
}

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
