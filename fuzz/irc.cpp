// chat's IRC front-end: every line parses to a command and at most 15
// parameters, each a piece of the line (a middle one without blanks or a
// leading ':'); and whatever text a member sends, the lines written for IRC
// members are at most 512 bytes with their CRLF, hold no other CR, LF or
// NUL, and carry the whole text, in order.
#include "check.hpp"

#include "chat/irc.hpp"
#include "chat/said.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace irc = coserve::services::chat::irc;
using coserve::services::chat::Format;
using coserve::services::chat::Said;

namespace {

bool within(std::string_view part, std::string_view line) {
    return part.empty() || (part.data() >= line.data() && part.data() + part.size() <= line.data() + line.size());
}

// The lines of `out`, each checked; returns what follows `head` in each.
std::vector<std::string_view> lines_after(std::string_view out, std::string_view head) {
    std::vector<std::string_view> rest;
    while (!out.empty()) {
        const auto end = out.find("\r\n");
        FUZZ_CHECK(end != std::string_view::npos);
        const auto line = out.substr(0, end);
        FUZZ_CHECK(line.size() + 2 <= irc::max_line);
        FUZZ_CHECK(line.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos);
        FUZZ_CHECK(line.starts_with(head));
        rest.push_back(line.substr(head.size()));
        out.remove_prefix(end + 2);
    }
    return rest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view line(reinterpret_cast<const char*>(data), size);
    if (const auto m = irc::parse(line)) {
        FUZZ_CHECK(!m->command.empty() && within(m->command, line));
        FUZZ_CHECK(m->command.find(' ') == std::string_view::npos);
        FUZZ_CHECK(m->count <= irc::max_params);
        for (std::size_t i = 0; i < m->count; ++i) {
            FUZZ_CHECK(within(m->params[i], line));
            if (i + 1 < m->count) {
                FUZZ_CHECK(m->params[i].find(' ') == std::string_view::npos);
                FUZZ_CHECK(!m->params[i].empty() && m->params[i].front() != ':');
            }
        }
        if (const auto room = irc::channel_room(m->param(0))) FUZZ_CHECK(within(*room, line));
        for (auto item : irc::split_list(m->param(0))) FUZZ_CHECK(!item.empty() && item.find(',') == std::string_view::npos);
    }
    if (const auto action = irc::ctcp_action(line)) FUZZ_CHECK(within(*action, line));

    // The bytes as a member's text, to a channel and as an action.
    const std::string cleaned = irc::clean(line);
    for (const bool action : {false, true}) {
        std::string out;
        irc::append_text(out, ":ann!ann@coserve", "PRIVMSG", "#lobby", line, action);
        std::string joined;
        for (auto piece : lines_after(out, action ? ":ann!ann@coserve PRIVMSG #lobby :\1ACTION "
                                                  : ":ann!ann@coserve PRIVMSG #lobby :")) {
            if (action) {
                FUZZ_CHECK(piece.ends_with('\1'));
                piece.remove_suffix(1);
            }
            joined.append(piece);
        }
        FUZZ_CHECK(joined == cleaned);
    }
    // Every event, as IRC members read it.
    using K = Said::Kind;
    for (const K kind : {K::msg, K::me, K::notice, K::join, K::part, K::quit, K::nick, K::topic}) {
        std::string out;
        const std::string_view text = kind == K::nick ? std::string_view("old") : line;  // a nick change: two valid names
        render(out, Said{kind, "lobby", "ann", text, text}, Format::irc, "coserve");
        lines_after(out, "");
    }
    // The bytes as a list of names.
    std::vector<std::string> items;
    for (std::size_t start = 0; start < cleaned.size();) {
        auto end = cleaned.find(' ', start);
        if (end == std::string::npos) end = cleaned.size();
        if (end > start && end - start <= 64) items.push_back(cleaned.substr(start, end - start));
        start = end + 1;
    }
    std::string out;
    irc::append_list(out, ":coserve 353 ann = #lobby :", items);
    std::vector<std::string> seen;
    for (auto rest : lines_after(out, ":coserve 353 ann = #lobby :"))
        for (std::size_t start = 0; start <= rest.size();) {
            auto end = rest.find(' ', start);
            if (end == std::string_view::npos) end = rest.size();
            seen.emplace_back(rest.substr(start, end - start));
            start = end + 1;
        }
    FUZZ_CHECK(seen == items);
    return 0;
}
