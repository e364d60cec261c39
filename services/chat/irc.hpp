// chat for IRC clients: the pure part of the protocol (Modern IRC Client
// Protocol, ircdocs; RFC 2812 where it is silent). Messages parsed from a
// line, and every line the server writes built here, each at most 512 bytes
// with its CRLF: no I/O, unit-tested and fuzzed (fuzz/irc.cpp).
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coserve::services::chat::irc {

// A line's limit, its CRLF included (longer input: 417 ERR_INPUTTOOLONG).
constexpr std::size_t max_line = 512;
constexpr std::size_t max_params = 15;

// One client message: tags and source are skipped (a client's source is
// ignored, as servers do); `command` as sent (compare with is()).
struct Message {
    std::string_view command;
    std::array<std::string_view, max_params> params{};
    std::size_t count = 0;

    std::string_view param(std::size_t i) const noexcept { return i < count ? params[i] : std::string_view(); }
    bool is(std::string_view upper) const noexcept;  // case-insensitive
};

// nullopt for a line with no command (empty, or only tags and a source).
std::optional<Message> parse(std::string_view line);

// "#room" -> "room" when the rest is a valid room name; nullopt otherwise.
std::optional<std::string_view> channel_room(std::string_view target);
// Splits a comma-separated list ("#a,#b"); empty items dropped.
std::vector<std::string_view> split_list(std::string_view list);

// CTCP ACTION ("\1ACTION waves\1", the closing \1 optional): the action's text.
std::optional<std::string_view> ctcp_action(std::string_view text);

// The longest start of `text` within `bytes` that does not cut a UTF-8
// character (invalid UTF-8 is cut anywhere).
std::string_view fit(std::string_view text, std::size_t bytes);

// Text as it may go on an IRC line: NUL, CR and LF (a line user may send a
// bare CR) become spaces.
std::string clean(std::string_view text);

// A numeric reply: ":SERVER CODE NICK PARAMS...\r\n", where the last
// parameter is written as trailing (":text") when `trailing` is set. Nick "*"
// before registration. The caller keeps it under 512 bytes (names, text and
// topics are bounded).
std::string numeric(std::string_view server, std::string_view code, std::string_view nick,
                    std::initializer_list<std::string_view> params, bool trailing = true);

// "PREFIX COMMAND TARGET :TEXT\r\n" (PRIVMSG, NOTICE, TOPIC, PART, QUIT...),
// split into as many lines as the text needs to keep each within 512 bytes,
// cut between UTF-8 characters. An empty target leaves it out (QUIT).
// `wrap_action` puts each piece in CTCP ACTION.
void append_text(std::string& out, std::string_view prefix, std::string_view command, std::string_view target,
                 std::string_view text, bool wrap_action = false);

// A parameter list split over as many lines as needed: `head` (":server 353
// nick = #room :"), then the items separated by spaces, each line within 512
// bytes. Nothing for an empty list.
void append_list(std::string& out, std::string_view head, const std::vector<std::string>& items);

// "#room". (Built by appending: GCC 12 at -O2 warns falsely about "#" + string.)
std::string channel(std::string_view room);

// ":nick!nick@host", what other users see: never the client's address.
std::string prefix(std::string_view nick, std::string_view host);

}  // namespace coserve::services::chat::irc
