// chat for IRC clients: one client's session. Registration (CAP, PASS, NICK,
// USER), then the read loop; the member, its outbox, writer, rate limit and
// leave are the line protocol's (session.cpp). The commands: irc_commands.cpp.
#include "chat.hpp"

#include <coserve/lines.hpp>
#include <coserve/version.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/this_coro.hpp>

namespace coserve::services::chat {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

void Chat::irc_reply(Member& m, std::string text, FlushList& pending) {
    out_.enqueue(m, out_.compose([&](std::string& out) { out = std::move(text); }), pending);
}

void Chat::irc_numeric(Member& m, std::string_view code, std::initializer_list<std::string_view> params,
                       FlushList& pending, bool trailing) {
    const std::string_view nick = m.nick.empty() ? std::string_view("*") : std::string_view(m.nick);
    irc_reply(m, irc::numeric(o_.hub.host, code, nick, params, trailing), pending);
}

asio::awaitable<void> Chat::serve_irc(Connection& c) {
    const auto m = new_member(c, Format::irc);
    const auto asking = directory_.asking(m->executor);
    IrcClient client;
    FlushList pending;
    bool quitting = false;
    std::exception_ptr failure;
    start_writer(c, m);
    ++irc_clients_;
    m->pinged = m->heard.load();  // the registration deadline counts from here (ping_sweep)
    watch_pings(m);
    try {
        co_await irc_read(c, m, asking.get(), client, quitting, pending);
    } catch (...) {
        failure = std::current_exception();
    }
    co_await asio::this_coro::throw_if_cancelled(false);
    unwatch_pings(*m);
    --irc_clients_;
    if (m->ping_timeout) failure = nullptr;  // closed by us, as intended
    const bool slow = co_await leave(c, m, quitting, pending);
    if (!slow && failure && !quitting) std::rethrow_exception(failure);
    if (!slow) c.shutdown_send();
}

asio::awaitable<void> Chat::irc_read(Connection& c, const std::shared_ptr<Member>& m, Asking* asking,
                                     IrcClient& client, bool& quitting, FlushList& pending) {
    LineReader lines(c, irc::max_line - 2, Duration::zero(), false);
    asio::steady_timer pacer(m->executor);
    SaidLines unbatched(0);  // IRC messages go one by one (each names its own targets)
    Flushing flushing;
    while (!quitting && !m->dead) {
        co_await flush_when_dry(lines, flushing, *m, unbatched, pending);
        Line line = co_await lines.next();
        if (line.kind == Line::Kind::end || m->dead) break;
        m->heard.store(now_ns(), std::memory_order_relaxed);
        if (line.kind == Line::Kind::too_long) {
            irc_numeric(*m, "417", {"Input line was too long"}, pending);
            continue;
        }
        co_await irc_line(m, asking, client, line.text, quitting, pacer, pending);
        flushing.queued += pending.size();
    }
}

// One IRC line (from TCP or a WebSocket message), without its CRLF.
asio::awaitable<void> Chat::irc_line(const std::shared_ptr<Member>& m, Asking* asking, IrcClient& client,
                                     std::string_view text, bool& quitting, asio::steady_timer& pacer,
                                     FlushList& pending) {
    const auto msg = irc::parse(text);
    if (!msg) co_return;  // an empty line is ignored, as servers do
    if (client.registered && o_.rate.limited() && !m->bucket.take(o_.rate, clock::now()))
        co_await pace(*m, pacer, pending);
    if (client.registered) co_await irc_command(m, asking, client, *msg, quitting, pending);
    else co_await irc_register(m, asking, client, *msg, quitting, pending);
}

// Before registration only CAP, PASS, NICK, USER, PING, PONG and QUIT are
// taken; anything else gets 451 (irssi probes for CAP with "JOIN :" and
// waits for exactly that). Registration completes once NICK and USER are in
// and no CAP negotiation is open.
asio::awaitable<void> Chat::irc_register(const std::shared_ptr<Member>& m, Asking* asking, IrcClient& client,
                                         const irc::Message& msg, bool& quitting, FlushList& pending) {
    Member& self = *m;
    if (msg.is("CAP")) {
        irc_cap(self, client, msg, pending);
    } else if (msg.is("PASS")) {
        if (msg.count == 0) co_return irc_numeric(self, "461", {"PASS", "Not enough parameters"}, pending);
        client.pass = o_.irc->password.empty() || msg.param(0) == o_.irc->password;
    } else if (msg.is("NICK")) {
        if (msg.count == 0 || msg.param(0).empty()) co_return irc_numeric(self, "431", {"No nickname given"}, pending);
        if (!valid_chat_name(msg.param(0))) co_return irc_numeric(self, "432", {msg.param(0), "Erroneous nickname"}, pending);
        if (!hub_.name_free(self, msg.param(0)))
            co_return irc_numeric(self, "433", {msg.param(0), "Nickname is already in use"}, pending);
        client.nick = msg.param(0);
    } else if (msg.is("USER")) {
        if (msg.count < 4) co_return irc_numeric(self, "461", {"USER", "Not enough parameters"}, pending);
        client.user = msg.param(0);
    } else if (msg.is("PING")) {
        co_return irc_pong(self, msg, pending);
    } else if (msg.is("QUIT")) {
        irc_reply(self, "ERROR :Closing Link: (Quit: " + irc::clean(irc::fit(msg.param(0), 300)) + ")\r\n", pending);
        quitting = true;
        co_return;
    } else if (!msg.is("PONG")) {
        co_return irc_numeric(self, "451", {"You have not registered"}, pending);
    }
    if (client.nick.empty() || client.user.empty() || client.cap) co_return;
    if (!o_.irc->password.empty() && !client.pass) {
        irc_numeric(self, "464", {"Password incorrect"}, pending);
        irc_reply(self, "ERROR :Closing Link: (Bad password)\r\n", pending);
        quitting = true;
        co_return;
    }
    // The name, across daemons first (a cluster), then here.
    const std::string nick = client.nick;
    if (!co_await directory_.claim(asking, nick)) {
        client.nick.clear();
        co_return irc_numeric(self, "433", {nick, "Nickname is already in use"}, pending);
    }
    switch (hub_.admit_named(m, nick)) {
    case Hub::Admission::ok:
        break;
    case Hub::Admission::taken:
        directory_.release(nick);
        client.nick.clear();
        co_return irc_numeric(self, "433", {nick, "Nickname is already in use"}, pending);
    case Hub::Admission::full:
        directory_.release(nick);
        irc_reply(self, "ERROR :Closing Link: (chat is full, " + std::to_string(o_.hub.max_clients) + " clients)\r\n",
                  pending);
        quitting = true;
        co_return;
    }
    client.registered = true;
    m->registered = true;
    irc_welcome(self, pending);
}

// 001-005, the LUSERS numerics, then the MOTD or 422.
void Chat::irc_welcome(Member& m, FlushList& pending) {
    const std::string& host = o_.hub.host;
    const std::string version = std::string("coserve-") + COSERVE_VERSION_STRING;
    irc_numeric(m, "001", {"Welcome to the " + host + " IRC network, " + m.nick}, pending);
    irc_numeric(m, "002", {"Your host is " + host + ", running version " + version}, pending);
    irc_numeric(m, "003", {"This server was created " + irc_created_}, pending);
    irc_numeric(m, "004", {host, version, "i", "bn"}, pending, false);
    irc_numeric(m, "005",
                {"CASEMAPPING=ascii", "CHANTYPES=#", "CHANNELLEN=33", "NICKLEN=32", "TOPICLEN=300", "AWAYLEN=300",
                 "PREFIX=", "CHANMODES=b,,,n", "CHANLIMIT=#:" + std::to_string(o_.hub.max_channels),
                 "TARGMAX=PRIVMSG:4,NOTICE:4,JOIN:,PART:,NAMES:1,WHOIS:1", "NETWORK=" + host,
                 "are supported by this server"},
                pending);
    irc_lusers(m, pending);
    irc_motd(m, pending);
}

// The LUSERS numerics: at registration and on LUSERS.
void Chat::irc_lusers(Member& m, FlushList& pending) {
    const auto users = std::to_string(hub_.clients());
    irc_numeric(m, "251", {"There are " + users + " users and 0 invisible on 1 servers"}, pending);
    irc_numeric(m, "254", {std::to_string(hub_.room_list(nullptr).size()), "channels formed"}, pending);
    irc_numeric(m, "255", {"I have " + users + " clients and 0 servers"}, pending);
}

// PING, before and after registration.
void Chat::irc_pong(Member& m, const irc::Message& msg, FlushList& pending) {
    if (msg.count == 0) return irc_numeric(m, "409", {"No origin specified"}, pending);
    irc_reply(m, ":" + o_.hub.host + " PONG " + o_.hub.host + " :" + std::string(msg.param(0)) + "\r\n", pending);
}

// CAP, before and after registration: no capability is offered. LS and REQ
// open a negotiation that holds the registration until END (irc_register).
void Chat::irc_cap(Member& m, IrcClient& client, const irc::Message& msg, FlushList& pending) {
    const std::string head = ":" + o_.hub.host + " CAP " + (m.nick.empty() ? std::string("*") : m.nick) + " ";
    const auto sub = msg.param(0);
    if (sub == "LS" || sub == "REQ") client.cap = true;
    if (sub == "LS" || sub == "LIST") return irc_reply(m, head + std::string(sub) + " :\r\n", pending);
    if (sub == "REQ") return irc_reply(m, head + "NAK :" + std::string(msg.param(1)) + "\r\n", pending);
    if (sub == "END") {
        client.cap = false;
        return;
    }
    irc_numeric(m, "410", {sub.empty() ? std::string_view("*") : sub, "Invalid CAP command"}, pending);
}

void Chat::irc_motd(Member& m, FlushList& pending) {
    if (!o_.irc->motd) return irc_numeric(m, "422", {"MOTD File is missing"}, pending);
    irc_numeric(m, "375", {"- " + o_.hub.host + " Message of the day - "}, pending);
    for (const auto& line : *o_.irc->motd) irc_numeric(m, "372", {"- " + line}, pending);
    irc_numeric(m, "376", {"End of /MOTD command."}, pending);
}

}  // namespace coserve::services::chat
