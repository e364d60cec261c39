// chat: what happens in a room, and how each kind of member is told.
//
// One event (a line, a join, a nick change...) is written once per format
// that has a recipient, never once per recipient: the hub renders it into a
// Message for line members (`<ann> hi`) and, if an IRC member is listening,
// one for IRC members (`:ann!ann@coserve PRIVMSG #lobby :hi`). Pure.
#pragma once

#include <string>
#include <string_view>

namespace coserve::services::chat {

// How a member reads: the line protocol (nc, telnet) or IRC.
enum class Format : unsigned char { line, irc };

// How its lines travel: as they are (TCP, TLS), or each line a WebSocket
// frame, text (UTF-8, invalid bytes replaced) or binary (bytes as they are).
enum class Wire : unsigned char { raw, ws_text, ws_binary };

struct Said {
    enum class Kind : unsigned char { msg, me, notice, join, part, quit, nick, topic };
    Kind kind;
    std::string_view room;    // without '#'; unused for quit and nick (they span rooms)
    std::string_view nick;    // who; for nick, the new name
    std::string_view text;    // msg, me, notice: the text; part, quit: the line users' notice
                              // ("left", "left for #dev"); nick: the old name; topic: the topic
    std::string_view reason = {};  // part, quit: what IRC users see as the reason (empty: `text`)
};

// Appends the event as one member of `format` reads it, its CRLF included
// (IRC: as many lines as the text needs, each within 512 bytes). `host` is
// the host part of IRC prefixes (irc_server_name).
void render(std::string& out, const Said& s, Format format, std::string_view host);

}  // namespace coserve::services::chat
