// The pure half of line framing (see coserve/lines.hpp): telnet filtering and
// LineFramer, bytes in and lines out, no sockets and no coroutines (so the
// fuzz targets can instrument it).
#include <coserve/lines.hpp>

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

}  // namespace coserve
