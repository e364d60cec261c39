// chat over WebSocket: frames and UTF-8. See websocket.hpp.
#include "websocket.hpp"

#include "irc.hpp"

namespace coserve::services::chat::ws {

namespace {

void append_header(std::string& out, unsigned char opcode, std::size_t size) {
    out.push_back(static_cast<char>(0x80 | opcode));  // FIN: never fragmented
    if (size < 126) {
        out.push_back(static_cast<char>(size));
    } else if (size <= 0xffff) {
        out.push_back(static_cast<char>(126));
        out.push_back(static_cast<char>(size >> 8));
        out.push_back(static_cast<char>(size & 0xff));
    } else {
        out.push_back(static_cast<char>(127));
        for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((std::uint64_t{size} >> shift) & 0xff));
    }
}

// The length of the valid UTF-8 sequence at the start of `s`, or 0.
std::size_t valid_sequence(std::string_view s) {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char b = byte(0);
    if (b < 0x80) return 1;
    std::size_t n = 0;
    unsigned char low = 0x80, high = 0xbf;  // the second byte's range
    if (b >= 0xc2 && b <= 0xdf) n = 2;
    else if (b == 0xe0) n = 3, low = 0xa0;
    else if (b == 0xed) n = 3, high = 0x9f;  // no surrogates
    else if (b >= 0xe1 && b <= 0xef) n = 3;
    else if (b == 0xf0) n = 4, low = 0x90;
    else if (b >= 0xf1 && b <= 0xf3) n = 4;
    else if (b == 0xf4) n = 4, high = 0x8f;  // up to U+10FFFF
    else return 0;
    if (s.size() < n || byte(1) < low || byte(1) > high) return 0;
    for (std::size_t i = 2; i < n; ++i)
        if ((byte(i) & 0xc0) != 0x80) return 0;
    return n;
}

}  // namespace

void append_valid_utf8(std::string& out, std::string_view text) {
    while (!text.empty()) {
        std::size_t run = 0;  // valid bytes, appended at once
        while (run < text.size()) {
            const std::size_t n = valid_sequence(text.substr(run));
            if (n == 0) break;
            run += n;
        }
        out.append(text.substr(0, run));
        text.remove_prefix(run);
        if (!text.empty()) {
            out.append("\xef\xbf\xbd");  // U+FFFD for the one byte
            text.remove_prefix(1);
        }
    }
}

void append_frames(std::string& out, std::string_view text, bool binary) {
    thread_local std::string payload;
    while (!text.empty()) {
        const std::size_t end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        if (end != std::string_view::npos && !line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) continue;
        if (binary) {
            append_header(out, 0x2, line.size());
            out.append(line);
            continue;
        }
        payload.clear();
        append_valid_utf8(payload, line);
        append_header(out, 0x1, payload.size());
        out.append(payload);
    }
}

void append_close(std::string& out, std::uint16_t code, std::string_view reason) {
    reason = irc::fit(reason, 123);  // between UTF-8 characters, as IRC's lines are cut
    append_header(out, 0x8, 2 + reason.size());
    out.push_back(static_cast<char>(code >> 8));
    out.push_back(static_cast<char>(code & 0xff));
    out.append(reason);
}

void append_ping(std::string& out, std::string_view payload) {
    payload = payload.substr(0, 125);
    append_header(out, 0x9, payload.size());
    out.append(payload);
}

}  // namespace coserve::services::chat::ws
