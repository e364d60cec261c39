// Unit: chat's IRC front-end without sockets: the parser, the lines the
// server builds (each within 512 bytes), each event as each kind of member
// reads it, and the hub with IRC members in several rooms.
#include <catch2/catch.hpp>

#include "../services/chat/hub.hpp"
#include "../services/chat/irc.hpp"

#include <boost/asio/io_context.hpp>

using namespace coserve::services;
using namespace coserve::services::chat;

namespace {

using Lines = std::vector<std::string>;

// A text of several CRLF-terminated lines, split; each line must end in CRLF
// and hold no other CR or LF.
Lines split_lines(const std::string& text) {
    Lines lines;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto end = text.find("\r\n", start);
        REQUIRE(end != std::string::npos);
        const auto line = text.substr(start, end - start);
        REQUIRE(line.find_first_of("\r\n") == std::string::npos);
        lines.push_back(line);
        start = end + 2;
    }
    return lines;
}

std::string rendered(const Said& s, Format f) {
    std::string out;
    render(out, s, f, "coserve");
    return out;
}

struct Fixture {
    boost::asio::io_context ioc;
    Delivery out;
    Hub hub{HubOptions{.room = "lobby", .history = 3, .max_clients = 400, .host = "coserve", .max_channels = 2}, out};
    FlushList flush;

    std::shared_ptr<Member> line_member(const std::string& nick) {
        auto m = std::make_shared<Member>(ioc.get_executor(), 1000);
        REQUIRE(hub.admit(m, nick, nullptr, flush));
        REQUIRE(m->nick == nick);
        return m;
    }
    std::shared_ptr<Member> irc_member(const std::string& nick) {
        auto m = std::make_shared<Member>(ioc.get_executor(), 1000, Format::irc);
        REQUIRE(hub.admit_named(m, nick) == Hub::Admission::ok);
        return m;
    }
};

// Everything queued for `m`, taken out, one string per line.
Lines take(Member& m) {
    Lines lines;
    std::lock_guard lock(m.mutex);
    while (!m.queue.empty()) {
        const auto text = m.queue.pop()->text;
        for (auto& l : split_lines(text)) lines.push_back(l);
    }
    return lines;
}

}  // namespace

TEST_CASE("irc: messages parse as the Modern IRC documents describe") {
    auto m = irc::parse("@time=x :nick!u@h PRIVMSG #lobby :hello there ");
    REQUIRE(m);
    CHECK(m->is("PRIVMSG"));
    CHECK(m->count == 2);
    CHECK(m->param(0) == "#lobby");
    CHECK(m->param(1) == "hello there ");
    auto user = irc::parse("user  ann 0 *  :Ann A");
    REQUIRE(user);
    CHECK(user->is("USER"));
    CHECK(user->count == 4);
    CHECK(user->param(3) == "Ann A");
    auto join = irc::parse("JOIN :");  // irssi's probe: one empty parameter
    REQUIRE(join);
    CHECK(join->count == 1);
    CHECK(join->param(0).empty());
    CHECK_FALSE(irc::parse(""));
    CHECK_FALSE(irc::parse("   "));
    CHECK_FALSE(irc::parse(":only.a.source"));
    CHECK(irc::parse("PING")->count == 0);
    std::string many = "CMD";
    for (int i = 0; i < 20; ++i) many += " p" + std::to_string(i);
    auto fifteen = irc::parse(many);
    REQUIRE(fifteen);
    CHECK(fifteen->count == 15);
    CHECK(fifteen->param(14) == "p14 p15 p16 p17 p18 p19");  // the 15th takes the rest
    CHECK(irc::channel_room("#Lobby") == "Lobby");
    CHECK_FALSE(irc::channel_room("lobby"));
    CHECK_FALSE(irc::channel_room("#a b"));
    CHECK_FALSE(irc::channel_room("#"));
    CHECK_FALSE(irc::channel_room("#" + std::string(33, 'x')));
    CHECK(irc::split_list("#a,,#b,") == std::vector<std::string_view>{"#a", "#b"});
    CHECK(irc::ctcp_action("\1ACTION waves\1") == "waves");
    CHECK(irc::ctcp_action("\1ACTION waves") == "waves");
    CHECK(irc::ctcp_action("\1ACTION\1") == "");
    CHECK_FALSE(irc::ctcp_action("\1ACTIONS\1"));
    CHECK_FALSE(irc::ctcp_action("\1VERSION\1"));
}

TEST_CASE("irc: the server's lines stay within 512 bytes, cut between UTF-8 characters") {
    CHECK(irc::numeric("coserve", "001", "ann", {"Welcome"}) == ":coserve 001 ann :Welcome\r\n");
    CHECK(irc::numeric("coserve", "333", "ann", {"#a", "bob", "12"}, false) == ":coserve 333 ann #a bob 12\r\n");
    std::string text;
    for (int i = 0; i < 400; ++i) text += "é";  // 800 bytes, two each
    std::string out;
    irc::append_text(out, ":ann!ann@coserve", "PRIVMSG", "#lobby", text);
    const auto lines = split_lines(out);
    REQUIRE(lines.size() == 2);
    std::string joined;
    for (const auto& l : lines) {
        CHECK(l.size() + 2 <= 512);
        REQUIRE(l.starts_with(":ann!ann@coserve PRIVMSG #lobby :"));
        const auto piece = l.substr(std::string(":ann!ann@coserve PRIVMSG #lobby :").size());
        CHECK(piece.size() % 2 == 0);  // no character cut in half
        joined += piece;
    }
    CHECK(joined == text);
    out.clear();
    irc::append_text(out, ":a!a@h", "PRIVMSG", "#x", "bare\rCR and NUL\0 here", true);
    CHECK(out == ":a!a@h PRIVMSG #x :\1ACTION bare CR and NUL\1\r\n");  // a string literal stops at NUL
    out.clear();
    irc::append_text(out, ":a!a@h", "PRIVMSG", "#x", std::string("a\0b", 3));
    CHECK(out == ":a!a@h PRIVMSG #x :a b\r\n");
    std::vector<std::string> names;
    for (int i = 0; i < 300; ++i) names.push_back("member" + std::to_string(i) + std::string(20, 'x'));
    out.clear();
    irc::append_list(out, ":coserve 353 ann = #big :", names);
    std::vector<std::string> seen;
    for (const auto& l : split_lines(out)) {
        CHECK(l.size() + 2 <= 512);
        REQUIRE(l.starts_with(":coserve 353 ann = #big :"));
        std::string_view rest = std::string_view(l).substr(std::string(":coserve 353 ann = #big :").size());
        while (!rest.empty()) {
            const auto sp = rest.find(' ');
            seen.emplace_back(rest.substr(0, sp));
            rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
        }
    }
    CHECK(seen == names);
    out.clear();
    irc::append_list(out, ":coserve 353 ann = #x :", {});
    CHECK(out.empty());
}

TEST_CASE("irc: each event as a line member and as an IRC member reads it") {
    using K = Said::Kind;
    struct Case {
        Said said;
        std::string line, irc;
    };
    const Case cases[] = {
        {{K::msg, "lobby", "ann", "hi"}, "<ann> hi\r\n", ":ann!ann@coserve PRIVMSG #lobby :hi\r\n"},
        {{K::me, "lobby", "ann", "waves"}, "* ann waves\r\n", ":ann!ann@coserve PRIVMSG #lobby :\1ACTION waves\1\r\n"},
        {{K::notice, "lobby", "ann", "fyi"}, "-ann- fyi\r\n", ":ann!ann@coserve NOTICE #lobby :fyi\r\n"},
        {{K::join, "lobby", "ann", {}}, "* ann joined #lobby\r\n", ":ann!ann@coserve JOIN #lobby\r\n"},
        {{K::part, "lobby", "ann", "left for #dev"}, "* ann left for #dev\r\n",
         ":ann!ann@coserve PART #lobby :left for #dev\r\n"},
        {{K::part, "lobby", "ann", "left (bye)", "bye"}, "* ann left (bye)\r\n", ":ann!ann@coserve PART #lobby :bye\r\n"},
        {{K::quit, {}, "ann", "left (zzz)", "Quit: zzz"}, "* ann left (zzz)\r\n", ":ann!ann@coserve QUIT :Quit: zzz\r\n"},
        {{K::nick, {}, "anna", "ann"}, "* ann is now known as anna\r\n", ":ann!ann@coserve NICK anna\r\n"},
        {{K::topic, "lobby", "ann", "news"}, "* ann set the topic of #lobby: news\r\n",
         ":ann!ann@coserve TOPIC #lobby :news\r\n"},
    };
    for (const auto& c : cases) {
        CHECK(rendered(c.said, Format::line) == c.line);
        CHECK(rendered(c.said, Format::irc) == c.irc);
    }
    // A line user's 4000-byte line reaches IRC members in pieces of at most 512 bytes.
    const std::string long_text(4000, 'a');
    const auto pieces = split_lines(rendered({K::msg, "lobby", "bob", long_text}, Format::irc));
    CHECK(pieces.size() == 9);
    std::string joined;
    for (const auto& p : pieces) {
        CHECK(p.size() + 2 <= 512);
        joined += p.substr(std::string(":bob!bob@coserve PRIVMSG #lobby :").size());
    }
    CHECK(joined == long_text);
}

TEST_CASE("irc hub: an IRC member joins rooms, is told once of a quit or a nick change, and line members hear it their way") {
    Fixture f;
    auto line = f.line_member("bob");
    auto ann = f.irc_member("ann");
    auto cat = f.irc_member("cat");
    take(*line);
    CHECK(f.hub.join(ann, "lobby", nullptr, nullptr, f.flush) == Hub::Joined::ok);
    CHECK(take(*ann) == Lines{":ann!ann@coserve JOIN #lobby", ":coserve 353 ann = #lobby :bob ann",
                              ":coserve 366 ann #lobby :End of /NAMES list"});
    CHECK(take(*line) == Lines{"* ann joined #lobby"});
    CHECK(f.hub.join(ann, "LOBBY", nullptr, nullptr, f.flush) == Hub::Joined::already);
    CHECK(f.hub.join(ann, "dev", nullptr, nullptr, f.flush) == Hub::Joined::ok);
    CHECK(f.hub.join(ann, "ops", nullptr, nullptr, f.flush) == Hub::Joined::too_many);  // max_channels = 2
    CHECK(f.hub.join(cat, "lobby", nullptr, nullptr, f.flush) == Hub::Joined::ok);
    CHECK(f.hub.join(cat, "dev", nullptr, nullptr, f.flush) == Hub::Joined::ok);
    take(*ann);
    take(*cat);
    take(*line);
    CHECK(f.hub.channels_of(*ann) == "#lobby #dev");

    // A line member's line, and an IRC member's PRIVMSG, ACTION and NOTICE.
    f.hub.say(*line, false, "hello", f.flush);
    CHECK(take(*ann) == Lines{":bob!bob@coserve PRIVMSG #lobby :hello"});
    CHECK(f.hub.say_in(*ann, "lobby", Said::Kind::me, "waves", f.flush) == Hub::Sent::ok);
    CHECK(f.hub.say_in(*ann, "dev", Said::Kind::notice, "psst", f.flush) == Hub::Sent::ok);
    CHECK(f.hub.say_in(*ann, "ops", Said::Kind::msg, "x", f.flush) == Hub::Sent::no_such_room);
    CHECK(f.hub.say_in(*line, "dev", Said::Kind::msg, "x", f.flush) == Hub::Sent::not_in_room);
    CHECK(take(*line) == Lines{"* ann waves"});
    CHECK(take(*cat) == Lines{":bob!bob@coserve PRIVMSG #lobby :hello", ":ann!ann@coserve PRIVMSG #lobby :\1ACTION waves\1",
                              ":ann!ann@coserve NOTICE #dev :psst"});
    CHECK(take(*ann).empty());  // never its own lines back

    // Private messages both ways, with AWAY.
    f.hub.set_away(*ann, "lunch");
    CHECK(f.hub.private_message(*line, "ANN", Said::Kind::msg, "hi", f.flush) == "lunch");
    CHECK(f.hub.private_message(*ann, "bob", Said::Kind::me, "nods", f.flush) == "");
    CHECK_FALSE(f.hub.private_message(*ann, "nobody", Said::Kind::msg, "x", f.flush));
    CHECK(take(*ann) == Lines{":bob!bob@coserve PRIVMSG ann :hi"});
    CHECK(take(*line) == Lines{"* ann (private) nods"});

    // cat shares two rooms with ann: one NICK, one QUIT.
    REQUIRE(f.hub.rename(*ann, "anna", f.flush));
    CHECK(take(*ann) == Lines{":ann!ann@coserve NICK anna"});
    CHECK(take(*cat) == Lines{":ann!ann@coserve NICK anna"});
    CHECK(take(*line) == Lines{"* ann is now known as anna"});
    f.hub.remove(*ann, "left (bye)", f.flush, "Quit: bye");
    CHECK(take(*cat) == Lines{":anna!anna@coserve QUIT :Quit: bye"});
    CHECK(take(*line) == Lines{"* anna left (bye)"});
    CHECK(take(*ann).empty());
    CHECK(f.hub.clients() == 2);
}

TEST_CASE("irc hub: part, topics shared with line members, history as notices, views") {
    Fixture f;
    auto line = f.line_member("bob");
    f.hub.say(*line, false, "one", f.flush);
    f.hub.say(*line, true, "two", f.flush);
    auto ann = f.irc_member("ann");
    take(*line);
    REQUIRE(f.hub.set_topic(*line, "lobby", "welcome all", f.flush) == Hub::Parted::ok);
    CHECK(take(*line) == Lines{"* bob set the topic of #lobby: welcome all"});
    CHECK(f.hub.set_topic(*ann, "lobby", "mine", f.flush) == Hub::Parted::not_in_room);
    CHECK(f.hub.set_topic(*ann, "nowhere", "mine", f.flush) == Hub::Parted::no_such_room);
    REQUIRE(f.hub.join(ann, "lobby", nullptr, nullptr, f.flush) == Hub::Joined::ok);
    const auto burst = take(*ann);
    REQUIRE(burst.size() == 9);
    CHECK(burst[0] == ":ann!ann@coserve JOIN #lobby");
    CHECK(burst[1] == ":coserve 332 ann #lobby :welcome all");
    CHECK(burst[2].starts_with(":coserve 333 ann #lobby bob "));
    CHECK(burst[3] == ":coserve 353 ann = #lobby :bob ann");
    CHECK(burst[4] == ":coserve 366 ann #lobby :End of /NAMES list");
    CHECK(burst[5] == ":coserve NOTICE #lobby :* history of #lobby, the last 2 lines:");
    CHECK(burst[6] == ":coserve NOTICE #lobby :<bob> one");
    CHECK(burst[7] == ":coserve NOTICE #lobby :* bob two");
    CHECK(burst[8] == ":coserve NOTICE #lobby :* end of history");
    take(*line);
    REQUIRE(f.hub.set_topic(*ann, "lobby", "changed", f.flush) == Hub::Parted::ok);
    CHECK(take(*ann) == Lines{":ann!ann@coserve TOPIC #lobby :changed"});
    CHECK(take(*line) == Lines{"* ann set the topic of #lobby: changed"});
    f.hub.line_topic(*line, "", f.flush);
    CHECK(take(*line) == Lines{"* topic of #lobby: changed (set by ann)"});

    const Others others{{"zed", "lobby"}, {"yan", "far"}};
    const auto view = f.hub.room_view("LOBBY", &others);
    REQUIRE(view);
    CHECK(view->nicks == std::vector<std::string>{"bob", "ann", "zed"});
    CHECK(view->topic == "changed");
    CHECK(f.hub.room_view("far", &others)->nicks == std::vector<std::string>{"yan"});
    CHECK_FALSE(f.hub.room_view("far", nullptr));
    CHECK(f.hub.room_list(&others).size() == 2);
    CHECK(f.hub.user_view("ANN")->rooms == std::vector<std::string>{"lobby"});

    CHECK(f.hub.part(*ann, "dev", "", f.flush) == Hub::Parted::no_such_room);
    CHECK(f.hub.part(*ann, "lobby", "later", f.flush) == Hub::Parted::ok);
    CHECK(f.hub.part(*ann, "lobby", "", f.flush) == Hub::Parted::not_in_room);
    CHECK(take(*ann) == Lines{":ann!ann@coserve PART #lobby :later"});
    CHECK(take(*line) == Lines{"* ann left (later)"});
    CHECK(f.hub.channels_of(*ann).empty());
}

TEST_CASE("irc hub: NAMES of a 300-member room is split into lines of at most 512 bytes") {
    Fixture f;
    std::vector<std::shared_ptr<Member>> members;
    for (int i = 0; i < 300; ++i) members.push_back(f.line_member("member-number-" + std::to_string(i)));
    auto ann = f.irc_member("ann");
    REQUIRE(f.hub.join(ann, "lobby", nullptr, nullptr, f.flush) == Hub::Joined::ok);
    const auto burst = take(*ann);
    std::size_t names = 0, lines = 0;
    for (const auto& l : burst) {
        CHECK(l.size() + 2 <= 512);
        if (!l.starts_with(":coserve 353 ann = #lobby :")) continue;
        ++lines;
        const auto list = l.substr(std::string(":coserve 353 ann = #lobby :").size());
        names += static_cast<std::size_t>(std::count(list.begin(), list.end(), ' ')) + 1;
    }
    CHECK(names == 301);
    CHECK(lines > 1);
    CHECK(burst.back() == ":coserve 366 ann #lobby :End of /NAMES list");
}
