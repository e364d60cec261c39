// Integration: chat's IRC front-end over real loopback sockets, exact bytes:
// registration, every command and its error numerics, line limits, the
// crossing between line and IRC members, the ping timeout, and 1000 IRC
// clients in one room.
#include <catch2/catch.hpp>

#include "support.hpp"

#include <filesystem>
#include <fstream>
#include <map>

using namespace testing;

namespace {

const char* const irc_config = "[chat]\ntcp = 127.0.0.1:0\nirc = 127.0.0.1:0\n";

boost::asio::ip::tcp::endpoint irc_endpoint(RunningServer& rs) {
    return rs.server().endpoints("chat", "irc").at(0);
}

// The lines of the welcome after 001, through 422 (no MOTD).
void expect_welcome(LineClient& c, const std::string& nick) {
    CHECK(c.line() == ":coserve 001 " + nick + " :Welcome to the coserve IRC network, " + nick);
    CHECK(c.line().starts_with(":coserve 002 " + nick + " :Your host is coserve, running version coserve-"));
    CHECK(c.line().starts_with(":coserve 003 " + nick + " :This server was created "));
    CHECK(c.line().starts_with(":coserve 004 " + nick + " coserve coserve-"));
    const auto isupport = c.line();
    CHECK(isupport.starts_with(":coserve 005 " + nick + " CASEMAPPING=ascii CHANTYPES=# CHANNELLEN=33 NICKLEN=32 "));
    CHECK(isupport.find(" PREFIX= ") != std::string::npos);
    CHECK(isupport.find(" CHANLIMIT=#:") != std::string::npos);
    CHECK(isupport.find(" TARGMAX=PRIVMSG:4,") != std::string::npos);
    CHECK(isupport.ends_with(" :are supported by this server"));
    CHECK(c.line().starts_with(":coserve 251 " + nick + " :There are "));
    CHECK(c.line().starts_with(":coserve 254 " + nick + " "));
    CHECK(c.line().starts_with(":coserve 255 " + nick + " :I have "));
    CHECK(c.line() == ":coserve 422 " + nick + " :MOTD File is missing");
}

std::unique_ptr<LineClient> irc_client(const boost::asio::ip::tcp::endpoint& ep, const std::string& nick) {
    auto c = std::make_unique<LineClient>(ep);
    c->send("NICK " + nick + "\r\nUSER " + nick + " 0 * :" + nick + "\r\n");
    expect_welcome(*c, nick);
    return c;
}

// Joins and reads the burst through 366 (and any history notices after it, up to `extra` lines).
void irc_join(LineClient& c, const std::string& nick, const std::string& channel) {
    c.send_line("JOIN " + channel);
    CHECK(c.line() == ":" + nick + "!" + nick + "@coserve JOIN " + channel);
    for (;;) {
        const auto l = c.line();
        if (l.starts_with(":coserve 366 ")) break;
    }
}

std::pair<std::unique_ptr<LineClient>, std::string> line_client(RunningServer& rs, const std::string& nick) {
    auto c = std::make_unique<LineClient>(rs.tcp("chat"));
    REQUIRE(c->line().starts_with("* welcome to #lobby, you are "));
    c->send_line("/nick " + nick);
    while (c->line() != "* you are now known as " + nick) {  // the topic and history of #lobby first
    }
    return {std::move(c), nick};
}

}  // namespace

TEST_CASE("irc: registration with CAP LS 302 as irssi does it, byte for byte") {
    RunningServer rs(irc_config);
    LineClient c(irc_endpoint(rs));
    c.send("CAP LS 302\r\nJOIN :\r\n");
    CHECK(c.line() == ":coserve CAP * LS :");
    CHECK(c.line() == ":coserve 451 * :You have not registered");  // irssi's probe
    c.send("NICK ann\r\nUSER ann 0 * :Ann A\r\nCAP REQ :multi-prefix sasl\r\n");
    CHECK(c.line() == ":coserve CAP * NAK :multi-prefix sasl");
    CHECK(c.quiet_for(200ms));  // held until CAP END
    c.send("CAP END\r\n");
    expect_welcome(c, "ann");
    c.send("PING :abc\r\n");
    CHECK(c.line() == ":coserve PONG coserve :abc");
}

TEST_CASE("irc: registration without CAP, PASS, MOTD, and the errors of registration") {
    char dir[] = "/tmp/coserve-irc-XXXXXX";
    REQUIRE(mkdtemp(dir));
    const std::string motd = std::string(dir) + "/motd";
    std::ofstream(motd) << "Be nice.\r\nSecond line\n";
    RunningServer rs(std::string(irc_config) + "irc_password = sekrit\nirc_motd = " + motd +
                     "\nirc_server_name = chat.example\n");
    const auto ep = irc_endpoint(rs);
    {
        LineClient c(ep);
        c.send("PRIVMSG #lobby :hi\r\nNICK\r\nNICK bad.name\r\nUSER x\r\n");
        CHECK(c.line() == ":chat.example 451 * :You have not registered");
        CHECK(c.line() == ":chat.example 431 * :No nickname given");
        CHECK(c.line() == ":chat.example 432 * bad.name :Erroneous nickname");
        CHECK(c.line() == ":chat.example 461 * USER :Not enough parameters");
        c.send("NICK ann\r\nUSER ann 0 * :Ann\r\n");  // no PASS
        CHECK(c.line() == ":chat.example 464 * :Password incorrect");
        CHECK(c.line() == "ERROR :Closing Link: (Bad password)");
        CHECK(c.closed_within(2s));
    }
    {
        LineClient c(ep);
        c.send("PASS wrong\r\nNICK ann\r\nUSER ann 0 * :Ann\r\n");
        CHECK(c.line() == ":chat.example 464 * :Password incorrect");
        CHECK(c.line() == "ERROR :Closing Link: (Bad password)");
        CHECK(c.closed_within(2s));
    }
    LineClient c(ep);
    c.send("PASS sekrit\nNICK ann\nUSER ann 0 * :Ann\n");  // bare LF is accepted
    CHECK(c.line() == ":chat.example 001 ann :Welcome to the chat.example IRC network, ann");
    for (int i = 0; i < 7; ++i) c.line();  // 002-005, 251, 254, 255
    CHECK(c.line() == ":chat.example 375 ann :- chat.example Message of the day - ");
    CHECK(c.line() == ":chat.example 372 ann :- Be nice.");
    CHECK(c.line() == ":chat.example 372 ann :- Second line");
    CHECK(c.line() == ":chat.example 376 ann :End of /MOTD command.");
    c.send("PASS sekrit\r\nUSER a b c d\r\n");
    CHECK(c.line() == ":chat.example 462 ann :You may not reregister");
    CHECK(c.line() == ":chat.example 462 ann :You may not reregister");
    std::filesystem::remove_all(dir);
}

TEST_CASE("irc: one namespace of names with line users, case-insensitive") {
    RunningServer rs(irc_config);
    auto [bob, bn] = line_client(rs, "Bob");
    LineClient c(irc_endpoint(rs));
    c.send("NICK BOB\r\nUSER x 0 * :x\r\n");
    CHECK(c.line() == ":coserve 433 * BOB :Nickname is already in use");
    c.send("NICK ann\r\n");
    expect_welcome(c, "ann");
    bob->send_line("/nick ANN");
    CHECK(bob->line() == "* error: nickname ANN is taken");
    c.send("NICK bob\r\nNICK " + std::string(33, 'x') + "\r\nNICK Ann\r\n");
    CHECK(c.line() == ":coserve 433 ann bob :Nickname is already in use");
    CHECK(c.line() == ":coserve 432 ann " + std::string(33, 'x') + " :Erroneous nickname");
    CHECK(c.line() == ":ann!ann@coserve NICK Ann");  // a change of case is a change
}

TEST_CASE("irc: line users and IRC users in one room see each other in the form each expects") {
    RunningServer rs(irc_config);
    auto [bob, bn] = line_client(rs, "bob");
    bob->send_line("before you came");
    auto ann = irc_client(irc_endpoint(rs), "ann");
    ann->send_line("JOIN #lobby");
    CHECK(ann->line() == ":ann!ann@coserve JOIN #lobby");
    CHECK(ann->line() == ":coserve 353 ann = #lobby :bob ann");
    CHECK(ann->line() == ":coserve 366 ann #lobby :End of /NAMES list");
    CHECK(ann->line() == ":coserve NOTICE #lobby :* history of #lobby, the last 1 line:");
    CHECK(ann->line() == ":coserve NOTICE #lobby :<bob> before you came");
    CHECK(ann->line() == ":coserve NOTICE #lobby :* end of history");
    CHECK(bob->line() == "* ann joined #lobby");

    ann->send_line("PRIVMSG #lobby :hello bob");
    CHECK(bob->line() == "<ann> hello bob");
    bob->send_line("hi ann");
    CHECK(ann->line() == ":bob!bob@coserve PRIVMSG #lobby :hi ann");
    ann->send_line("PRIVMSG #lobby :\1ACTION waves\1");
    CHECK(bob->line() == "* ann waves");
    bob->send_line("/me bows");
    CHECK(ann->line() == ":bob!bob@coserve PRIVMSG #lobby :\1ACTION bows\1");
    ann->send_line("PRIVMSG bob :psst");
    CHECK(bob->line() == "<ann> (private) psst");
    bob->send_line("/msg ann back");
    CHECK(ann->line() == ":bob!bob@coserve PRIVMSG ann :back");
    ann->send_line("NOTICE #lobby :a notice");
    CHECK(bob->line() == "-ann- a notice");
    ann->send_line("TOPIC #lobby :tea at five");
    CHECK(ann->line() == ":ann!ann@coserve TOPIC #lobby :tea at five");
    CHECK(bob->line() == "* ann set the topic of #lobby: tea at five");
    bob->send_line("/topic");
    CHECK(bob->line() == "* topic of #lobby: tea at five (set by ann)");
    bob->send_line("/topic tea at six");
    CHECK(bob->line() == "* bob set the topic of #lobby: tea at six");
    CHECK(ann->line() == ":bob!bob@coserve TOPIC #lobby :tea at six");
    ann->send_line("NICK anna");
    CHECK(ann->line() == ":ann!ann@coserve NICK anna");
    CHECK(bob->line() == "* ann is now known as anna");
    bob->send_line("/nick robert");
    CHECK(bob->line() == "* you are now known as robert");
    CHECK(ann->line() == ":bob!bob@coserve NICK robert");
    bob->send_line("/join dev");
    CHECK(bob->line() == "* you joined #dev");
    CHECK(ann->line() == ":robert!robert@coserve PART #lobby :left for #dev");
    ann->send_line("JOIN #dev");
    CHECK(ann->line() == ":anna!anna@coserve JOIN #dev");
    CHECK(ann->line() == ":coserve 353 anna = #dev :robert anna");
    CHECK(ann->line() == ":coserve 366 anna #dev :End of /NAMES list");
    CHECK(bob->line() == "* anna joined #dev");
    ann->send_line("PART #dev :see you");
    CHECK(ann->line() == ":anna!anna@coserve PART #dev :see you");
    CHECK(bob->line() == "* anna left (see you)");
    irc_join(*ann, "anna", "#dev");
    CHECK(bob->line() == "* anna joined #dev");
    bob->send_line("/quit gone fishing");
    CHECK(ann->line() == ":robert!robert@coserve QUIT :Quit: gone fishing");
    auto [cat, cn] = line_client(rs, "cat");
    CHECK(ann->line().ends_with("@coserve JOIN #lobby"));  // as a guest, then named
    CHECK(ann->line().ends_with("@coserve NICK cat"));
    ann->send_line("QUIT :bye all");
    CHECK(cat->line() == "* anna left (bye all)");
    CHECK(ann->line() == "ERROR :Closing Link: anna (Quit: bye all)");
    CHECK(ann->closed_within(2s));
}

TEST_CASE("irc: every command and its error numerics") {
    RunningServer rs(std::string(irc_config) + "irc_max_channels = 2\n");
    auto [bob, bn] = line_client(rs, "bob");
    auto ann = irc_client(irc_endpoint(rs), "ann");
    auto& c = *ann;
    c.send("JOIN\r\nJOIN #bad.name\r\nJOIN lobby\r\n");
    CHECK(c.line() == ":coserve 461 ann JOIN :Not enough parameters");
    CHECK(c.line() == ":coserve 403 ann #bad.name :No such channel");
    CHECK(c.line() == ":coserve 403 ann lobby :No such channel");
    irc_join(c, "ann", "#lobby");
    CHECK(bob->line() == "* ann joined #lobby");
    c.send("JOIN #a,#b\r\n");  // irc_max_channels = 2
    CHECK(c.line() == ":ann!ann@coserve JOIN #a");
    CHECK(c.line() == ":coserve 353 ann = #a :ann");
    CHECK(c.line() == ":coserve 366 ann #a :End of /NAMES list");
    CHECK(c.line() == ":coserve 405 ann #b :You have joined too many channels");
    c.send("PART\r\nPART #nowhere\r\nPART #a,#a\r\n");
    CHECK(c.line() == ":coserve 461 ann PART :Not enough parameters");
    CHECK(c.line() == ":coserve 403 ann #nowhere :No such channel");
    CHECK(c.line() == ":ann!ann@coserve PART #a :left");
    CHECK(c.line() == ":coserve 403 ann #a :No such channel");  // the room went with its last member
    c.send("PRIVMSG\r\nPRIVMSG #lobby\r\nPRIVMSG nobody :x\r\nPRIVMSG #nowhere :x\r\nPRIVMSG #lobby,bob :both\r\n");
    CHECK(c.line() == ":coserve 411 ann :No recipient given (PRIVMSG)");
    CHECK(c.line() == ":coserve 412 ann :No text to send");
    CHECK(c.line() == ":coserve 401 ann nobody :No such nick/channel");
    CHECK(c.line() == ":coserve 403 ann #nowhere :No such channel");
    CHECK(bob->line() == "<ann> both");
    CHECK(bob->line() == "<ann> (private) both");
    c.send("PRIVMSG a,b,c,d,e :x\r\nNOTICE nobody :x\r\nNOTICE\r\n");
    CHECK(c.line() == ":coserve 407 ann a,b,c,d,e :Too many recipients. Only 4 processed");
    for (const char* n : {"a", "b", "c", "d"}) CHECK(c.line() == ":coserve 401 ann " + std::string(n) + " :No such nick/channel");
    CHECK(c.quiet_for(200ms));  // NOTICE is never answered with an error
    bob->send_line("/join dev");
    CHECK(bob->line() == "* you joined #dev");
    CHECK(c.line() == ":bob!bob@coserve PART #lobby :left for #dev");
    c.send("PRIVMSG #dev :not a member\r\n");
    CHECK(c.line() == ":coserve 404 ann #dev :Cannot send to channel");
    c.send("TOPIC\r\nTOPIC #nowhere\r\nTOPIC #lobby\r\nTOPIC #dev :mine\r\nTOPIC #lobby :hello\r\nTOPIC #lobby\r\n");
    CHECK(c.line() == ":coserve 461 ann TOPIC :Not enough parameters");
    CHECK(c.line() == ":coserve 403 ann #nowhere :No such channel");
    CHECK(c.line() == ":coserve 331 ann #lobby :No topic is set");
    CHECK(c.line() == ":coserve 442 ann #dev :You're not on that channel");
    CHECK(c.line() == ":ann!ann@coserve TOPIC #lobby :hello");
    CHECK(c.line() == ":coserve 332 ann #lobby :hello");
    CHECK(c.line().starts_with(":coserve 333 ann #lobby ann "));
    c.send("NAMES\r\nNAMES #dev\r\nNAMES #nowhere\r\n");
    CHECK(c.line() == ":coserve 366 ann * :End of /NAMES list");
    CHECK(c.line() == ":coserve 353 ann = #dev :bob");
    CHECK(c.line() == ":coserve 366 ann #dev :End of /NAMES list");
    CHECK(c.line() == ":coserve 366 ann #nowhere :End of /NAMES list");
    c.send("LIST\r\n");
    CHECK(c.line() == ":coserve 321 ann Channel :Users  Name");
    CHECK(c.line() == ":coserve 322 ann #dev 1 :");
    CHECK(c.line() == ":coserve 322 ann #lobby 1 :hello");
    CHECK(c.line() == ":coserve 323 ann :End of /LIST");
    c.send("WHO #dev\r\nWHO bob\r\nWHO nobody\r\n");
    CHECK(c.line() == ":coserve 352 ann #dev bob coserve coserve bob H :0 bob");
    CHECK(c.line() == ":coserve 315 ann #dev :End of WHO list");
    CHECK(c.line() == ":coserve 352 ann #dev bob coserve coserve bob H :0 bob");
    CHECK(c.line() == ":coserve 315 ann bob :End of WHO list");
    CHECK(c.line() == ":coserve 315 ann nobody :End of WHO list");
    c.send("WHOIS bob\r\nWHOIS nobody\r\nWHOIS\r\n");
    CHECK(c.line() == ":coserve 311 ann bob bob coserve * :bob");
    CHECK(c.line() == ":coserve 319 ann bob :#dev");
    CHECK(c.line() == ":coserve 312 ann bob coserve :coserve chat (line)");
    CHECK(c.line() == ":coserve 318 ann bob :End of /WHOIS list");
    CHECK(c.line() == ":coserve 401 ann nobody :No such nick/channel");
    CHECK(c.line() == ":coserve 318 ann nobody :End of /WHOIS list");
    CHECK(c.line() == ":coserve 431 ann :No nickname given");
    c.send("MODE\r\nMODE #lobby\r\nMODE #lobby b\r\nMODE #lobby +b x!*@*\r\nMODE #lobby -n\r\nMODE #lobby +z\r\n"
           "MODE #nowhere\r\n");
    CHECK(c.line() == ":coserve 461 ann MODE :Not enough parameters");
    CHECK(c.line() == ":coserve 324 ann #lobby +n");
    CHECK(c.line() == ":coserve 368 ann #lobby :End of channel ban list");
    CHECK(c.line() == ":coserve 482 ann #lobby :You're not channel operator");
    CHECK(c.line() == ":coserve 482 ann #lobby :You're not channel operator");
    CHECK(c.line() == ":coserve 472 ann z :is unknown mode char to me");
    CHECK(c.line() == ":coserve 403 ann #nowhere :No such channel");
    c.send("MODE ann\r\nMODE ann +i\r\nMODE ann\r\nMODE ann +x\r\nMODE bob +i\r\nMODE nobody\r\n");
    CHECK(c.line() == ":coserve 221 ann +");
    CHECK(c.line() == ":ann MODE ann :+i");
    CHECK(c.line() == ":coserve 221 ann +i");
    CHECK(c.line() == ":coserve 501 ann :Unknown MODE flag");
    CHECK(c.line() == ":coserve 502 ann :Cant change mode for other users");
    CHECK(c.line() == ":coserve 401 ann nobody :No such nick/channel");
    c.send("AWAY :lunch\r\n");
    CHECK(c.line() == ":coserve 306 ann :You have been marked as being away");
    bob->send_line("/msg ann are you there");
    CHECK(c.line() == ":bob!bob@coserve PRIVMSG ann :are you there");
    auto cat = irc_client(irc_endpoint(rs), "cat");
    cat->send("PRIVMSG ann :hello\r\n");
    CHECK(cat->line() == ":coserve 301 cat ann :lunch");
    CHECK(c.line() == ":cat!cat@coserve PRIVMSG ann :hello");
    c.send("AWAY\r\nPING\r\nPONG :x\r\nFROBNICATE now\r\nprivmsg bob :lower case\r\nCAP LS\r\nCAP REQ :x\r\nCAP END\r\nCAP FOO\r\n");
    CHECK(c.line() == ":coserve 305 ann :You are no longer marked as being away");
    CHECK(c.line() == ":coserve 409 ann :No origin specified");
    CHECK(c.line() == ":coserve 421 ann FROBNICATE :Unknown command");
    CHECK(bob->line() == "<ann> (private) lower case");
    CHECK(c.line() == ":coserve CAP ann LS :");
    CHECK(c.line() == ":coserve CAP ann NAK :x");
    CHECK(c.line() == ":coserve 410 ann FOO :Invalid CAP command");
    c.send("JOIN 0\r\n");
    CHECK(c.line() == ":ann!ann@coserve PART #lobby :left");
    c.send("QUIT\r\n");
    CHECK(c.line() == "ERROR :Closing Link: ann (Quit: )");
    CHECK(c.closed_within(2s));
}

TEST_CASE("irc: lines of 512 bytes with CRLF, 417 beyond, long lines from line users split, UTF-8 passed through") {
    RunningServer rs(irc_config);
    auto [bob, bn] = line_client(rs, "bob");
    auto ann = irc_client(irc_endpoint(rs), "ann");
    irc_join(*ann, "ann", "#lobby");
    CHECK(bob->line() == "* ann joined #lobby");
    const std::string head = "PRIVMSG #lobby :";
    const std::string fits(510 - head.size(), 'a');  // 510 + CRLF = 512
    ann->send(head + fits + "\r\n");
    CHECK(bob->line() == "<ann> " + fits);
    ann->send(head + fits + "b\r\nPRIVMSG #lobby :after\r\n");  // 511 + CRLF: too long, discarded
    CHECK(ann->line() == ":coserve 417 ann :Input line was too long");
    CHECK(bob->line() == "<ann> after");
    std::string big(2000, 'x');
    bob->send_line(big);
    std::string joined;
    while (joined.size() < big.size()) {
        const auto l = ann->line();
        REQUIRE(l.size() + 2 <= 512);
        REQUIRE(l.starts_with(":bob!bob@coserve PRIVMSG #lobby :"));
        joined += l.substr(std::string(":bob!bob@coserve PRIVMSG #lobby :").size());
    }
    CHECK(joined == big);
    ann->send("PRIVMSG #lobby :caf\xc3\xa9 \xff\xfe not UTF-8\r\n");
    CHECK(bob->line() == "<ann> caf\xc3\xa9 \xff\xfe not UTF-8");
    bob->send("bare\rcarriage return\r\n");
    CHECK(ann->line() == ":bob!bob@coserve PRIVMSG #lobby :bare carriage return");
}

TEST_CASE("irc: one that does not register is closed, a silent client is pinged, then closed, and one that answers stays") {
    RunningServer rs(std::string(irc_config) + "irc_ping = 300ms\n");
    LineClient lurker(irc_endpoint(rs));
    lurker.send("NICK lurker\r\n");  // and never USER: closed irc_ping after it connected, with nothing sent
    const auto lurking = std::chrono::steady_clock::now();
    CHECK(lurker.tcp().recv_all(3s).empty());
    CHECK(std::chrono::steady_clock::now() - lurking >= 250ms);
    auto [bob, bn] = line_client(rs, "bob");
    auto silent = irc_client(irc_endpoint(rs), "silent");
    auto alive = irc_client(irc_endpoint(rs), "alive");
    irc_join(*silent, "silent", "#lobby");
    irc_join(*alive, "alive", "#lobby");
    CHECK(silent->line() == ":alive!alive@coserve JOIN #lobby");
    CHECK(bob->line() == "* silent joined #lobby");
    CHECK(bob->line() == "* alive joined #lobby");
    const auto start = std::chrono::steady_clock::now();
    // The one that answers: each PING answered as it comes; the silent one's
    // QUIT may come before, between or after them (the same sweep sends both).
    int pings = 0;
    bool quit_seen = false;
    while (pings < 3 || !quit_seen) {
        const auto l = alive->line(3s);
        if (l == "PING :coserve") {
            ++pings;
            alive->send("PONG :coserve\r\n");
        } else {
            CHECK(l == ":silent!silent@coserve QUIT :left (ping timeout)");
            quit_seen = true;
        }
    }
    CHECK(silent->line(3s) == "PING :coserve");
    CHECK(silent->closed_within(3s));
    CHECK(std::chrono::steady_clock::now() - start >= 300ms);
    CHECK(bob->line(3s) == "* silent left (ping timeout)");
    alive->send("PRIVMSG #lobby :still here\r\n");
    CHECK(bob->line() == "<alive> still here");
}

TEST_CASE("irc: 1000 IRC clients in one room get every line of every other member exactly once, in order", "[e2e]") {
    RunningServer rs(std::string(irc_config) + "max_per_source = 0\nmax_connections = 2000\nrate = 0\nhistory = 0\n"
                     "max_clients = 2000\nmax_queue = 10000\nirc_ping = 1h\n");
    const auto ep = irc_endpoint(rs);
    constexpr int n = 1000, lines = 2;
    std::vector<std::unique_ptr<LineClient>> clients;
    for (int i = 0; i < n; ++i) {
        auto c = std::make_unique<LineClient>(ep);
        const std::string nick = "u" + std::to_string(i);
        c->send("NICK " + nick + "\r\nUSER " + nick + " 0 * :x\r\nJOIN #lobby\r\n");
        while (!c->line(30s).starts_with(":coserve 366 ")) {
        }
        clients.push_back(std::move(c));
    }
    for (int i = 0; i < n; ++i) {
        std::string all;
        for (int k = 0; k < lines; ++k) all += "PRIVMSG #lobby :" + std::to_string(i) + " " + std::to_string(k) + "\r\n";
        clients[static_cast<std::size_t>(i)]->send(all);
    }
    const auto count = count_bulk(n, lines, [&](int i) -> std::optional<std::pair<int, int>> {
        const auto l = clients[static_cast<std::size_t>(i)]->line(60s);
        const auto at = l.find(" PRIVMSG #lobby :");
        if (at == std::string::npos) return std::nullopt;  // joins
        const auto text = l.substr(at + 17);
        return std::pair{std::stoi(text), std::stoi(text.substr(text.find(' ') + 1))};
    });
    CHECK(count.wrong == 0);
    CHECK(count.own == 0);
    CHECK(still_talking(clients) == 0);
}
