// chat: an event written for each kind of member. See said.hpp.
#include "said.hpp"

#include "irc.hpp"

namespace coserve::services::chat {

namespace {

using K = Said::Kind;

void render_line(std::string& out, const Said& s) {
    switch (s.kind) {
    case K::msg: out.append("<").append(s.nick).append("> ").append(s.text); break;
    case K::me: out.append("* ").append(s.nick).append(" ").append(s.text); break;
    case K::notice: out.append("-").append(s.nick).append("- ").append(s.text); break;
    case K::join: out.append("* ").append(s.nick).append(" joined #").append(s.room); break;
    case K::part:
    case K::quit: out.append("* ").append(s.nick).append(" ").append(s.text); break;
    case K::nick: out.append("* ").append(s.text).append(" is now known as ").append(s.nick); break;
    case K::topic:
        out.append("* ").append(s.nick).append(" set the topic of #").append(s.room).append(": ").append(s.text);
        break;
    }
    out.append("\r\n");
}

void render_irc(std::string& out, const Said& s, std::string_view host) {
    const std::string from = irc::prefix(s.kind == K::nick ? s.text : s.nick, host);
    const std::string channel = irc::channel(s.room);
    const std::string_view reason = s.reason.empty() ? s.text : s.reason;
    switch (s.kind) {
    case K::msg: return irc::append_text(out, from, "PRIVMSG", channel, s.text);
    case K::me: return irc::append_text(out, from, "PRIVMSG", channel, s.text, true);
    case K::notice: return irc::append_text(out, from, "NOTICE", channel, s.text);
    case K::join: out.append(from).append(" JOIN ").append(channel).append("\r\n"); return;
    case K::part: return irc::append_text(out, from, "PART", channel, reason);
    case K::quit: return irc::append_text(out, from, "QUIT", "", reason);
    case K::nick: out.append(from).append(" NICK ").append(s.nick).append("\r\n"); return;
    case K::topic: return irc::append_text(out, from, "TOPIC", channel, s.text);
    }
}

}  // namespace

void render(std::string& out, const Said& s, Format format, std::string_view host) {
    if (format == Format::irc) render_irc(out, s, host);
    else render_line(out, s);
}

}  // namespace coserve::services::chat
