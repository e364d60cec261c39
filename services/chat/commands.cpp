// chat: the commands, one dispatch. Each check is the hub's (written once);
// the directory answers what lies beyond this daemon.
#include "chat.hpp"

namespace coserve::services::chat {

namespace asio = boost::asio;
using K = ChatCommand::Kind;

namespace {

const char* const help_lines[] = {
    "* commands:",
    "*   /nick NAME       change your name (1-32 of A-Z a-z 0-9 _ -)",
    "*   /who             who is in this room",
    "*   /me ACTION       say what you do",
    "*   /join ROOM       leave this room for ROOM (created on demand)",
    "*   /rooms           the rooms and how many are in each",
    "*   /msg NAME TEXT   a private message",
    "*   /topic [TEXT]    show or set this room's topic",
    "*   /quit [REASON]   leave",
    "*   //TEXT           send TEXT starting with one /",
    "*   /help            this list",
};

}  // namespace

bool uses_directory(K kind) {
    return kind == K::nick || kind == K::who || kind == K::rooms || kind == K::join;
}

void Chat::handle(const std::shared_ptr<Member>& self, const ChatCommand& cmd, bool& quitting, FlushList& flush) {
    Member& m = *self;
    switch (cmd.kind) {
    case K::text:
        hub_.say(m, false, cmd.text, flush);
        break;
    case K::me:
        if (cmd.text.empty()) return out_.reply(m, {"* error: usage: /me ACTION"}, flush);
        hub_.say(m, true, cmd.text, flush);
        break;
    case K::msg:
        if (cmd.arg.empty() || cmd.text.empty()) return out_.reply(m, {"* error: usage: /msg NAME TEXT"}, flush);
        if (hub_.private_message(m, cmd.arg, Said::Kind::msg, cmd.text, flush)) break;
        if (!directory_.send_private(self, std::string(cmd.arg), cmd.text))
            out_.reply(m, {"* error: no such user ", cmd.arg}, flush);
        break;
    case K::topic:
        hub_.line_topic(m, cmd.text, flush);
        break;
    case K::quit:
        hub_.remove(m, cmd.text.empty() ? std::string("left") : "left (" + std::string(cmd.text) + ")", flush,
                    cmd.text.empty() ? std::string("Quit") : "Quit: " + std::string(cmd.text));
        out_.reply(m, {"* bye"}, flush);
        quitting = true;
        break;
    case K::help:
        for (auto* h : help_lines) out_.reply(m, {h}, flush);
        break;
    case K::unknown:
        out_.reply(m, {"* error: unknown command /", cmd.arg, " (try /help)"}, flush);
        break;
    case K::empty:
    case K::nick:
    case K::who:
    case K::rooms:
    case K::join:
        break;
    }
}

// `cmd` points into the line reader's buffer, which stays as it is until the
// session reads again, after this returns.
asio::awaitable<void> Chat::look_up(const std::shared_ptr<Member>& self, Asking* asking, const ChatCommand& cmd,
                                    FlushList& flush) {
    Member& m = *self;
    switch (cmd.kind) {
    case K::nick: {
        if (auto error = hub_.nick_error(m, cmd.arg); !error.empty()) co_return out_.reply(m, {error}, flush);
        const std::string name(cmd.arg);
        const bool new_key = chat_key(m.nick) != chat_key(name);  // m.nick changes only on this reader
        bool ok = !new_key || co_await directory_.claim(asking, name);
        if (ok && !hub_.rename(m, name, flush)) {  // taken here meanwhile
            if (new_key) directory_.release(name);
            ok = false;
        }
        if (!ok) out_.reply(m, {"* error: nickname ", name, " is taken"}, flush);
        co_return;
    }
    case K::who:
    case K::rooms: {
        const auto others = co_await directory_.others(asking);
        hub_.tell_members(m, cmd.kind, others ? &*others : nullptr, flush);
        co_return;
    }
    case K::join: {
        const std::string room(room_argument(cmd.arg));
        if (auto error = hub_.join_error(m, room); !error.empty()) co_return out_.reply(m, {error}, flush);
        // The history first, then the room: a line said in between may be
        // missed by the newcomer, but none is shown twice.
        const auto history = co_await directory_.history(asking, room);
        hub_.move(self, room, history ? &*history : nullptr, flush);
        co_return;
    }
    default:
        co_return;
    }
}

}  // namespace coserve::services::chat
