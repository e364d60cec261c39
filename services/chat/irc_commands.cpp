// chat for IRC clients: the commands of a registered client, one dispatch.
// Each check is the hub's (written once for both kinds of members); the
// directory answers what lies beyond this daemon. Every error is the
// numeric the Modern IRC documents give, with their parameters.
#include "chat.hpp"

namespace coserve::services::chat {

namespace asio = boost::asio;

namespace {

constexpr std::size_t max_targets = 4;  // TARGMAX=PRIVMSG:4,NOTICE:4

}  // namespace

asio::awaitable<void> Chat::irc_command(const std::shared_ptr<Member>& self, Asking* asking, IrcClient& client,
                                        const irc::Message& msg, bool& quitting, FlushList& pending) {
    Member& m = *self;
    const std::string& host = o_.hub.host;
    if (msg.is("PRIVMSG") || msg.is("NOTICE")) co_return irc_message(self, msg, pending);
    if (msg.is("PING")) co_return irc_pong(m, msg, pending);
    if (msg.is("PONG")) co_return;
    if (msg.is("JOIN")) {
        if (msg.count == 0) co_return irc_numeric(m, "461", {"JOIN", "Not enough parameters"}, pending);
        if (msg.param(0) == "0") co_return hub_.part_all(m, pending);
        co_return co_await irc_join(self, asking, msg.param(0), pending);
    }
    if (msg.is("PART")) {
        if (msg.count == 0) co_return irc_numeric(m, "461", {"PART", "Not enough parameters"}, pending);
        const std::string reason = irc::clean(irc::fit(msg.param(1), 300));
        for (auto target : irc::split_list(msg.param(0))) {
            const auto room = irc::channel_room(target);
            const auto result = room ? hub_.part(m, *room, reason, pending) : Hub::Parted::no_such_room;
            if (result == Hub::Parted::no_such_room) irc_numeric(m, "403", {target, "No such channel"}, pending);
            else if (result == Hub::Parted::not_in_room) irc_numeric(m, "442", {target, "You're not on that channel"}, pending);
        }
        co_return;
    }
    if (msg.is("NICK")) {
        if (msg.count == 0 || msg.param(0).empty()) co_return irc_numeric(m, "431", {"No nickname given"}, pending);
        const std::string name(msg.param(0));
        if (!valid_chat_name(name)) co_return irc_numeric(m, "432", {name, "Erroneous nickname"}, pending);
        if (name == m.nick) co_return;
        if (!hub_.name_free(m, name)) co_return irc_numeric(m, "433", {name, "Nickname is already in use"}, pending);
        const bool new_key = chat_key(m.nick) != chat_key(name);  // m.nick changes only on this reader
        bool ok = !new_key || co_await directory_.claim(asking, name);
        if (ok && !hub_.rename(m, name, pending)) {
            if (new_key) directory_.release(name);
            ok = false;
        }
        if (!ok) irc_numeric(m, "433", {name, "Nickname is already in use"}, pending);
        co_return;
    }
    if (msg.is("TOPIC")) {
        if (msg.count == 0) co_return irc_numeric(m, "461", {"TOPIC", "Not enough parameters"}, pending);
        const auto room = irc::channel_room(msg.param(0));
        if (msg.count >= 2) {
            const auto result = room ? hub_.set_topic(m, *room, msg.param(1), pending) : Hub::Parted::no_such_room;
            if (result == Hub::Parted::no_such_room) irc_numeric(m, "403", {msg.param(0), "No such channel"}, pending);
            else if (result == Hub::Parted::not_in_room)
                irc_numeric(m, "442", {msg.param(0), "You're not on that channel"}, pending);
            co_return;
        }
        const auto view = room ? hub_.room_view(*room, nullptr) : std::nullopt;
        if (!view) co_return irc_numeric(m, "403", {msg.param(0), "No such channel"}, pending);
        const std::string channel = irc::channel(view->name);
        if (view->topic.empty()) co_return irc_numeric(m, "331", {channel, "No topic is set"}, pending);
        irc_numeric(m, "332", {channel, view->topic}, pending);
        co_return irc_numeric(m, "333", {channel, view->topic_by, std::to_string(view->topic_at)}, pending, false);
    }
    if (msg.is("NAMES")) {
        const auto targets = irc::split_list(msg.param(0));
        if (targets.empty()) co_return irc_numeric(m, "366", {"*", "End of /NAMES list"}, pending);
        const auto room = irc::channel_room(targets.front());
        std::optional<Others> others;
        if (room) others = co_await directory_.others(asking);
        if (const auto view = room ? hub_.room_view(*room, others ? &*others : nullptr) : std::nullopt) {
            std::string out;
            irc::append_list(out, ":" + host + " 353 " + m.nick + " = #" + view->name + " :", view->nicks);
            irc_reply(m, std::move(out), pending);
        }
        co_return irc_numeric(m, "366", {targets.front(), "End of /NAMES list"}, pending);
    }
    if (msg.is("LIST")) {
        const auto others = co_await directory_.others(asking);
        const auto wanted = irc::split_list(msg.param(0));
        irc_numeric(m, "321", {"Channel", "Users  Name"}, pending);
        for (const auto& view : hub_.room_list(others ? &*others : nullptr)) {
            const std::string channel = irc::channel(view.name);
            if (!wanted.empty() && std::none_of(wanted.begin(), wanted.end(), [&](std::string_view w) {
                    return chat_key(w) == chat_key(channel);
                }))
                continue;
            irc_numeric(m, "322", {channel, std::to_string(view.nicks.size()), view.topic}, pending);
        }
        co_return irc_numeric(m, "323", {"End of /LIST"}, pending);
    }
    if (msg.is("WHO")) co_return co_await irc_who(m, asking, msg.param(0), pending);
    if (msg.is("WHOIS")) {
        if (msg.count == 0) co_return irc_numeric(m, "431", {"No nickname given"}, pending);
        co_return co_await irc_whois(m, asking, msg.param(msg.count >= 2 ? 1 : 0), pending);
    }
    if (msg.is("MODE")) co_return irc_mode(m, client, msg, pending);
    if (msg.is("AWAY")) {
        const std::string away = irc::clean(irc::fit(msg.param(0), 300));
        const bool gone = !away.empty();
        hub_.set_away(m, away);
        co_return irc_numeric(m, gone ? "306" : "305",
                              {gone ? "You have been marked as being away" : "You are no longer marked as being away"},
                              pending);
    }
    if (msg.is("MOTD")) co_return irc_motd(m, pending);
    if (msg.is("LUSERS")) co_return irc_lusers(m, pending);
    if (msg.is("CAP")) co_return irc_cap(m, client, msg, pending);
    if (msg.is("USER") || msg.is("PASS")) co_return irc_numeric(m, "462", {"You may not reregister"}, pending);
    if (msg.is("QUIT")) {
        const std::string reason = irc::clean(irc::fit(msg.param(0), 300));
        hub_.remove(m, reason.empty() ? std::string("left") : "left (" + reason + ")", pending,
                    reason.empty() ? std::string("Quit") : "Quit: " + reason);
        irc_reply(m, "ERROR :Closing Link: " + m.nick + " (Quit: " + reason + ")\r\n", pending);
        quitting = true;
        co_return;
    }
    irc_numeric(m, "421", {msg.command, "Unknown command"}, pending);
}

asio::awaitable<void> Chat::irc_join(const std::shared_ptr<Member>& self, Asking* asking, std::string_view channels,
                                     FlushList& pending) {
    Member& m = *self;
    for (auto target : irc::split_list(channels)) {
        const auto room = irc::channel_room(target);
        if (!room) {
            irc_numeric(m, "403", {target, "No such channel"}, pending);
            continue;
        }
        const std::string name(*room);
        co_await out_.flush_sliced(pending);  // what was said before is not held up by the answers
        // The history first, then the room, as for line members: a line
        // said in between may be missed, none is shown twice.
        const auto history = co_await directory_.history(asking, name);
        const auto others = co_await directory_.others(asking);
        switch (hub_.join(self, name, history ? &*history : nullptr, others ? &*others : nullptr, pending)) {
        case Hub::Joined::ok:
        case Hub::Joined::already:
            break;
        case Hub::Joined::too_many:
            irc_numeric(m, "405", {target, "You have joined too many channels"}, pending);
            break;
        }
    }
}

void Chat::irc_message(const std::shared_ptr<Member>& self, const irc::Message& msg, FlushList& pending) {
    Member& m = *self;
    const bool notice = msg.is("NOTICE");  // never answered with an error (RFC 2812 3.3.2)
    const std::string command = notice ? "NOTICE" : "PRIVMSG";
    if (msg.count == 0) {
        if (!notice) irc_numeric(m, "411", {"No recipient given (" + command + ")"}, pending);
        return;
    }
    if (msg.count < 2 || msg.param(1).empty()) {
        if (!notice) irc_numeric(m, "412", {"No text to send"}, pending);
        return;
    }
    const auto targets = irc::split_list(msg.param(0));
    if (targets.size() > max_targets) {
        if (!notice) irc_numeric(m, "407", {msg.param(0), "Too many recipients. Only 4 processed"}, pending);
    }
    std::string_view text = msg.param(1);
    Said::Kind kind = notice ? Said::Kind::notice : Said::Kind::msg;
    if (const auto action = irc::ctcp_action(text); action && !notice) {
        kind = Said::Kind::me;
        text = *action;
    }
    for (std::size_t i = 0; i < targets.size() && i < max_targets; ++i) {
        const auto target = targets[i];
        if (target.starts_with('#')) {
            const auto room = irc::channel_room(target);
            const auto sent = room ? hub_.say_in(m, *room, kind, text, pending) : Hub::Sent::no_such_room;
            if (notice) continue;
            if (sent == Hub::Sent::no_such_room) irc_numeric(m, "403", {target, "No such channel"}, pending);
            else if (sent == Hub::Sent::not_in_room) irc_numeric(m, "404", {target, "Cannot send to channel"}, pending);
            continue;
        }
        if (const auto away = hub_.private_message(m, target, kind, text, pending)) {
            if (!away->empty() && !notice) irc_numeric(m, "301", {target, *away}, pending);
            continue;
        }
        // Beyond this daemon (an action travels as CTCP ACTION, as IRC sends it).
        const std::string wire = kind == Said::Kind::me ? "\1ACTION " + std::string(text) + "\1" : std::string(text);
        if (!valid_chat_name(target) || !directory_.send_private(self, std::string(target), wire)) {
            if (!notice) irc_numeric(m, "401", {target, "No such nick/channel"}, pending);
        }
    }
}

asio::awaitable<void> Chat::irc_who(Member& m, Asking* asking, std::string_view mask, FlushList& pending) {
    const std::string& host = o_.hub.host;
    const std::string end_mask = mask.empty() ? std::string("*") : std::string(mask);
    auto who_line = [&](std::string_view channel, std::string_view nick, bool away) {
        irc_numeric(m, "352", {channel, nick, host, host, nick, away ? "G" : "H", "0 " + std::string(nick)}, pending);
    };
    const auto others = co_await directory_.others(asking);
    if (const auto room = irc::channel_room(mask)) {
        if (const auto view = hub_.room_view(*room, others ? &*others : nullptr))
            for (std::size_t i = 0; i < view->nicks.size(); ++i)
                who_line(irc::channel(view->name), view->nicks[i], !view->away[i].empty());
    } else if (!mask.empty() && !mask.starts_with('#')) {
        if (const auto user = hub_.user_view(mask)) {
            who_line(user->rooms.empty() ? "*" : irc::channel(user->rooms.front()), user->nick, !user->away.empty());
        } else if (others) {
            for (const auto& [nick, room] : *others)
                if (chat_key(nick) == chat_key(mask)) {
                    who_line(irc::channel(room), nick, false);
                    break;
                }
        }
    }
    irc_numeric(m, "315", {end_mask, "End of WHO list"}, pending);
}

asio::awaitable<void> Chat::irc_whois(Member& m, Asking* asking, std::string_view nick, FlushList& pending) {
    const std::string& host = o_.hub.host;
    std::optional<UserView> user = hub_.user_view(nick);
    if (!user) {
        if (const auto others = co_await directory_.others(asking))
            for (const auto& [name, room] : *others)
                if (chat_key(name) == chat_key(nick)) {
                    if (!user) user = UserView{name, {}, Format::line, {}};
                    user->rooms.push_back(room);
                }
    }
    if (!user) {
        irc_numeric(m, "401", {nick, "No such nick/channel"}, pending);
        co_return irc_numeric(m, "318", {nick, "End of /WHOIS list"}, pending);
    }
    irc_numeric(m, "311", {user->nick, user->nick, host, "*", user->nick}, pending);
    if (!user->rooms.empty()) {
        std::vector<std::string> channels;
        for (const auto& room : user->rooms) channels.push_back(irc::channel(room));
        std::string out;
        irc::append_list(out, ":" + host + " 319 " + m.nick + " " + user->nick + " :", channels);
        irc_reply(m, std::move(out), pending);
    }
    irc_numeric(m, "312", {user->nick, host, user->format == Format::irc ? "coserve chat (IRC)" : "coserve chat (line)"},
                pending);
    if (!user->away.empty()) irc_numeric(m, "301", {user->nick, user->away}, pending);
    irc_numeric(m, "318", {user->nick, "End of /WHOIS list"}, pending);
}

// No one is a channel operator and channels have one fixed mode, +n (only
// members may send to them); the ban list is always empty. Queries are
// answered; a change gets 482 (a known mode: nobody may change it) or 472
// (an unknown one). User modes: +i, kept and shown, changes nothing else.
void Chat::irc_mode(Member& m, IrcClient& client, const irc::Message& msg, FlushList& pending) {
    if (msg.count == 0) return irc_numeric(m, "461", {"MODE", "Not enough parameters"}, pending);
    const std::string_view target = msg.param(0);
    const std::string_view modes = msg.param(1);
    if (target.starts_with('#')) {
        const auto room = irc::channel_room(target);
        const auto view = room ? hub_.room_view(*room, nullptr) : std::nullopt;
        if (!view) return irc_numeric(m, "403", {target, "No such channel"}, pending);
        const std::string channel = irc::channel(view->name);
        if (modes.empty()) return irc_numeric(m, "324", {channel, "+n"}, pending, false);
        bool adding = true, listed = false;
        for (char c : modes) {
            if (c == '+' || c == '-') {
                adding = c == '+';
            } else if (c == 'b') {
                if (msg.count <= 2 && !listed) {  // a query: the (empty) ban list
                    listed = true;
                    irc_numeric(m, "368", {channel, "End of channel ban list"}, pending);
                } else if (msg.count > 2) {
                    return irc_numeric(m, "482", {channel, "You're not channel operator"}, pending);
                }
            } else if (c == 'n') {
                return irc_numeric(m, "482", {channel, "You're not channel operator"}, pending);
            } else {
                irc_numeric(m, "472", {std::string(1, c), "is unknown mode char to me"}, pending);
            }
        }
        (void)adding;
        return;
    }
    if (chat_key(target) != chat_key(m.nick)) {
        if (!hub_.user_view(target)) return irc_numeric(m, "401", {target, "No such nick/channel"}, pending);
        return irc_numeric(m, "502", {"Cant change mode for other users"}, pending);
    }
    if (modes.empty()) return irc_numeric(m, "221", {client.invisible ? "+i" : "+"}, pending, false);
    bool adding = true;
    std::string applied;
    char applied_sign = 0;
    bool unknown = false;
    for (char c : modes) {
        if (c == '+' || c == '-') {
            adding = c == '+';
        } else if (c == 'i') {
            if (client.invisible == adding) continue;
            client.invisible = adding;
            const char sign = adding ? '+' : '-';
            if (sign != applied_sign) applied += sign;
            applied_sign = sign;
            applied += 'i';
        } else {
            unknown = true;
        }
    }
    if (!applied.empty()) irc_reply(m, ":" + m.nick + " MODE " + m.nick + " :" + applied + "\r\n", pending);
    if (unknown) irc_numeric(m, "501", {"Unknown MODE flag"}, pending);
}

}  // namespace coserve::services::chat
