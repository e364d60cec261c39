// chat: the pure part of the protocol (line -> command, name rules), testable without sockets.
#include "protocols.hpp"

#include <algorithm>
#include <cctype>

namespace coserve::services {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Splits "word rest" at the first run of blanks.
std::pair<std::string_view, std::string_view> split_word(std::string_view s) {
    s = trim(s);
    const auto blank = s.find_first_of(" \t");
    if (blank == std::string_view::npos) return {s, {}};
    return {s.substr(0, blank), trim(s.substr(blank))};
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

bool valid_chat_name(std::string_view name) {
    if (name.empty() || name.size() > 32) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

std::string chat_key(std::string_view name) {
    std::string key(name);
    for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return key;
}

ChatCommand parse_chat_line(std::string_view line) {
    using K = ChatCommand::Kind;
    if (line.starts_with("//")) return {K::text, {}, line.substr(1)};
    if (!line.starts_with('/')) return {trim(line).empty() ? K::empty : K::text, {}, line};
    auto [word, rest] = split_word(line.substr(1));
    struct Name {
        std::string_view name;
        K kind;
    };
    static constexpr Name names[] = {{"nick", K::nick}, {"who", K::who},     {"me", K::me},   {"join", K::join},
                                     {"rooms", K::rooms}, {"msg", K::msg},   {"topic", K::topic}, {"quit", K::quit},
                                     {"help", K::help}};
    for (const auto& n : names) {
        if (!iequals(word, n.name)) continue;
        switch (n.kind) {
        case K::nick:
        case K::join:
            return {n.kind, rest, {}};
        case K::msg: {
            auto [to, text] = split_word(rest);
            return {K::msg, to, text};
        }
        case K::me:
        case K::topic:
        case K::quit:
            return {n.kind, {}, rest};
        default:
            return {n.kind, {}, {}};
        }
    }
    return {K::unknown, word, {}};
}

std::string chat_event_record(std::string_view daemon, std::string_view kind, std::string_view room,
                              std::string_view nick, std::string_view text) {
    std::string r;
    r.reserve(8 + daemon.size() + kind.size() + room.size() + nick.size() + text.size());
    r.append("1 ").append(daemon).append(" ").append(kind).append(" ").append(room).append(" ").append(nick).append(" ").append(text);
    return r;
}

std::optional<ChatEvent> parse_chat_event(std::string_view record) {
    std::string_view field[5];
    for (auto& f : field) {
        const auto space = record.find(' ');
        if (space == std::string_view::npos) return std::nullopt;
        f = record.substr(0, space);
        record.remove_prefix(space + 1);
    }
    ChatEvent e{field[1], field[2], field[3], field[4], record};
    static constexpr std::string_view kinds[] = {"msg", "me", "notice", "join", "leave", "nick", "topic", "priv"};
    if (field[0] != "1" || e.daemon.empty() || e.daemon.size() > 64) return std::nullopt;
    if (std::find(std::begin(kinds), std::end(kinds), e.kind) == std::end(kinds)) return std::nullopt;
    if (!valid_chat_name(e.room) || !valid_chat_name(e.nick)) return std::nullopt;
    if (e.text.find_first_of("\r\n") != std::string_view::npos) return std::nullopt;
    if (e.kind == "nick" && !valid_chat_name(e.text)) return std::nullopt;
    return e;
}

}  // namespace coserve::services
