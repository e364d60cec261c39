// chat for IRC clients: parsing and the lines the server writes. See irc.hpp.
#include "irc.hpp"

#include "../protocols.hpp"

#include <algorithm>
#include <cctype>

namespace coserve::services::chat::irc {

namespace {

std::string_view skip_spaces(std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    return s;
}

// The longest prefix of `text` of at most `room` bytes that does not cut a
// UTF-8 character (invalid UTF-8 is cut anywhere: it is passed through).
std::size_t utf8_cut(std::string_view text, std::size_t room) {
    if (text.size() <= room) return text.size();
    std::size_t cut = room;
    // Back over continuation bytes (10xxxxxx), at most 3, to a lead byte.
    for (int i = 0; i < 3 && cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80; ++i) --cut;
    if (cut == 0 || (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) cut = room;  // not UTF-8: cut anyway
    return cut;
}

}  // namespace

bool Message::is(std::string_view upper) const noexcept {
    return command.size() == upper.size() &&
           std::equal(command.begin(), command.end(), upper.begin(),
                      [](char a, char b) { return std::toupper(static_cast<unsigned char>(a)) == b; });
}

std::optional<Message> parse(std::string_view line) {
    line = skip_spaces(line);
    if (line.starts_with('@')) {  // message tags: not negotiated, ignored
        const auto space = line.find(' ');
        line = space == std::string_view::npos ? std::string_view() : skip_spaces(line.substr(space));
    }
    if (line.starts_with(':')) {  // a client's source: ignored
        const auto space = line.find(' ');
        line = space == std::string_view::npos ? std::string_view() : skip_spaces(line.substr(space));
    }
    Message m;
    auto space = line.find(' ');
    m.command = line.substr(0, space);
    if (m.command.empty()) return std::nullopt;
    line = space == std::string_view::npos ? std::string_view() : line.substr(space);
    while (m.count < max_params) {
        line = skip_spaces(line);
        if (line.empty()) break;
        if (line.front() == ':' || m.count == max_params - 1) {
            m.params[m.count++] = line.front() == ':' ? line.substr(1) : line;
            break;
        }
        space = line.find(' ');
        m.params[m.count++] = line.substr(0, space);
        line = space == std::string_view::npos ? std::string_view() : line.substr(space);
    }
    return m;
}

std::optional<std::string_view> channel_room(std::string_view target) {
    if (!target.starts_with('#')) return std::nullopt;
    target.remove_prefix(1);
    if (!valid_chat_name(target)) return std::nullopt;
    return target;
}

std::vector<std::string_view> split_list(std::string_view list) {
    std::vector<std::string_view> items;
    while (!list.empty()) {
        const auto comma = list.find(',');
        if (auto item = list.substr(0, comma); !item.empty()) items.push_back(item);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return items;
}

std::optional<std::string_view> ctcp_action(std::string_view text) {
    constexpr std::string_view head = "\1ACTION";
    if (!text.starts_with(head)) return std::nullopt;
    text.remove_prefix(head.size());
    if (!text.empty() && text.front() != ' ' && text.front() != '\1') return std::nullopt;  // \1ACTIONS...
    if (text.ends_with('\1')) text.remove_suffix(1);
    if (text.starts_with(' ')) text.remove_prefix(1);
    return text;
}

std::string_view fit(std::string_view text, std::size_t bytes) {
    return text.substr(0, utf8_cut(text, bytes));
}

std::string clean(std::string_view text) {
    std::string out(text);
    std::replace_if(out.begin(), out.end(), [](char c) { return c == '\0' || c == '\r' || c == '\n'; }, ' ');
    return out;
}

std::string numeric(std::string_view server, std::string_view code, std::string_view nick,
                    std::initializer_list<std::string_view> params, bool trailing) {
    std::string out;
    out.reserve(64);
    out.append(":").append(server).append(" ").append(code).append(" ").append(nick);
    std::size_t i = 0;
    for (auto p : params) {
        const bool last = ++i == params.size();
        out.append(last && trailing ? " :" : " ").append(p);
    }
    out.append("\r\n");
    return out;
}

void append_text(std::string& out, std::string_view prefix, std::string_view command, std::string_view target,
                 std::string_view text, bool wrap_action) {
    std::string head;
    head.append(prefix).append(" ").append(command);
    if (!target.empty()) head.append(" ").append(target);
    head.append(" :");
    if (wrap_action) head.append("\1ACTION ");
    const std::size_t tail = 2 + (wrap_action ? 1 : 0);  // CRLF, and ACTION's closing \1
    const std::size_t room = max_line > head.size() + tail ? max_line - head.size() - tail : 1;
    const std::string cleaned = clean(text);
    std::string_view rest = cleaned;
    do {
        const std::size_t n = utf8_cut(rest, room);
        out.append(head).append(rest.substr(0, n));
        if (wrap_action) out.append("\1");
        out.append("\r\n");
        rest.remove_prefix(n);
    } while (!rest.empty());
}

void append_list(std::string& out, std::string_view head, const std::vector<std::string>& items) {
    std::size_t line_start = out.size();
    bool open = false;
    for (const auto& item : items) {
        if (open && out.size() - line_start + 1 + item.size() + 2 > max_line) {
            out.append("\r\n");
            open = false;
        }
        if (!open) {
            line_start = out.size();
            out.append(head);
            open = true;
        } else {
            out.append(" ");
        }
        out.append(item);
    }
    if (open) out.append("\r\n");
}

std::string channel(std::string_view room) {
    std::string c;
    c.reserve(1 + room.size());
    c.append("#").append(room);
    return c;
}

std::string prefix(std::string_view nick, std::string_view host) {
    std::string p;
    p.reserve(3 + 2 * nick.size() + host.size());
    p.append(":").append(nick).append("!").append(nick).append("@").append(host);
    return p;
}

}  // namespace coserve::services::chat::irc
