// chat across daemons through a real redis-server (backend = redis://).
#include "support.hpp"
#include "ws_client.hpp"

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <random>
#include <set>

using namespace testing;

namespace {

std::string unique_prefix() {
    std::random_device rd;
    return "test" + std::to_string(rd());
}

std::string chat_ini(const RedisServer& redis, const std::string& prefix) {
    return "[metrics]\nhttp = 127.0.0.1:0\n"
           "[chat]\ntcp = 127.0.0.1:0\nmax_per_source = 0\nrate = 0\nbackend = " +
           redis.url() + "\nredis_prefix = " + prefix + "\n";
}

double cluster_up(RunningServer& rs) {
    return metric_value(scrape_metrics(rs), "coserve_chat_cluster_up{instance=\"chat\",service=\"chat\"}");
}

bool wait_cluster(RunningServer& rs, double want, std::chrono::milliseconds limit = 15s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (cluster_up(rs) == want) return true;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

// The next line that is not a join/nick notice about someone else.
std::string next_said(LineClient& c) {
    for (;;) {
        auto l = c.line();
        if (l.find(" joined #") != std::string::npos ||
            (l.find(" is now known as ") != std::string::npos && !l.starts_with("* you are")))
            continue;
        return l;
    }
}

// Joins, reads the welcome, takes `nick`. Notices about others that arrive
// meanwhile (joins, renames and leaves, from either daemon) are skipped.
std::unique_ptr<LineClient> member(RunningServer& rs, const std::string& nick) {
    auto c = std::make_unique<LineClient>(rs.tcp("chat"));
    REQUIRE(c->line().starts_with("* welcome to #lobby, you are "));
    c->send_line("/nick " + nick);
    std::string l;
    do l = c->line();  // other members' joins, renames and leaves may come first
    while (l.starts_with("* ") && !l.starts_with("* you ") && !l.starts_with("* error"));
    REQUIRE(l == "* you are now known as " + nick);
    return c;
}

// Reads and drops lines until none comes for 300 ms.
void drain(LineClient& c) {
    try {
        for (;;) c.line(300ms);
    } catch (const std::runtime_error&) {
    }
}

// One redis-server and two daemons in its cluster, both linked.
struct TwoDaemons {
    explicit TwoDaemons(std::vector<std::string> redis_args = {}, const std::string& extra_ini = "")
        : redis(std::move(redis_args)), prefix(unique_prefix()), a(chat_ini(redis, prefix) + extra_ini),
          b(chat_ini(redis, prefix) + extra_ini) {
        REQUIRE(wait_cluster(a, 1));
        REQUIRE(wait_cluster(b, 1));
    }
    RedisServer redis;
    std::string prefix;
    RunningServer a, b;
};

}  // namespace

TEST_CASE("cluster: two daemons and one redis: a room spans both in per-sender order") {
    TwoDaemons cluster;
    auto& [redis, prefix, a, b] = cluster;

    auto alice = member(a, "alice");
    auto bob = member(b, "bob");
    // bob's join and nick change reach alice from the other daemon.
    CHECK(alice->line().ends_with(" joined #lobby"));
    CHECK(alice->line().ends_with(" is now known as bob"));

    for (int i = 0; i < 200; ++i) alice->send_line("from a " + std::to_string(i));
    for (int i = 0; i < 200; ++i) REQUIRE(next_said(*bob) == "<alice> from a " + std::to_string(i));
    bob->send_line("/me waves");
    CHECK(next_said(*alice) == "* bob waves");
    bob->send_line("hello from b");
    CHECK(next_said(*alice) == "<bob> hello from b");
    // Nothing comes back twice: alice does not hear her own lines, and bob
    // heard each of alice's exactly once (the next thing he hears is new).
    alice->send_line("last");
    CHECK(next_said(*bob) == "<alice> last");
    CHECK(alice->quiet_for(300ms));
    CHECK(bob->quiet_for(300ms));

    // Rooms: only members of the same room hear each other across daemons.
    bob->send_line("/join side");
    CHECK(bob->line() == "* you joined #side");
    CHECK(alice->line() == "* bob left for #side");
    alice->send_line("not for bob");
    CHECK(bob->quiet_for(300ms));
    alice->send_line("/join side");
    CHECK(alice->line() == "* you joined #side");
    CHECK(bob->line() == "* alice joined #side");

    bob->send_line("/quit gone");
    CHECK(alice->line() == "* bob left (gone)");
}

TEST_CASE("cluster: names are unique across daemons and /who /rooms and history cover both") {
    TwoDaemons cluster;
    auto& [redis, prefix, a, b] = cluster;
    // Guests are numbered by the cluster: no two daemons give out the same.
    std::vector<std::unique_ptr<LineClient>> guests;
    std::set<std::string> names;
    for (int i = 0; i < 6; ++i) {
        auto c = std::make_unique<LineClient>((i % 2 ? b : a).tcp("chat"));
        const auto welcome = c->line();
        REQUIRE(welcome.starts_with("* welcome to #lobby, you are guest"));
        names.insert(welcome.substr(29, welcome.find(' ', 29) - 29));
        guests.push_back(std::move(c));
    }
    CHECK(names.size() == 6);
    guests.clear();

    auto alice = member(a, "alice");
    auto bob = member(b, "bob");
    drain(*alice);
    drain(*bob);
    // A name held on the other daemon, in any case, is refused.
    alice->send_line("/nick BOB");
    CHECK(next_said(*alice) == "* error: nickname BOB is taken");
    bob->send_line("/nick Alice");
    CHECK(next_said(*bob) == "* error: nickname Alice is taken");
    // Two clients racing for one free name on two daemons: exactly one gets it.
    auto x = member(a, "x1");
    auto y = member(b, "y1");
    drain(*alice);
    drain(*bob);
    x->send_line("/nick winner");
    y->send_line("/nick winner");
    const auto rx = next_said(*x), ry = next_said(*y);
    CHECK((rx == "* you are now known as winner") != (ry == "* you are now known as winner"));
    CHECK((rx == "* error: nickname winner is taken") != (ry == "* error: nickname winner is taken"));
    // A released name is free again at once.
    auto& loser = rx == "* you are now known as winner" ? y : x;
    auto& holder = rx == "* you are now known as winner" ? x : y;
    holder->send_line("/quit");
    CHECK(next_said(*holder) == "* bye");
    CHECK(next_said(*loser) == "* winner left");
    // The release may still be on its way to redis from the other daemon.
    std::string reply;
    for (int attempt = 0; attempt < 20 && reply != "* you are now known as winner"; ++attempt) {
        loser->send_line("/nick winner");
        reply = next_said(*loser);
        if (reply != "* you are now known as winner") std::this_thread::sleep_for(100ms);
    }
    CHECK(reply == "* you are now known as winner");
    drain(*alice);
    drain(*bob);

    alice->send_line("/who");
    CHECK(next_said(*alice) == "* 3 in #lobby: alice, bob, winner");
    bob->send_line("/join dev");
    CHECK(bob->line() == "* you joined #dev");
    CHECK(alice->line() == "* bob left for #dev");
    bob->send_line("for the record");
    alice->send_line("/rooms");
    CHECK(next_said(*alice) == "* 2 rooms: #dev (1), #lobby (2)");
    bob->send_line("/who");
    CHECK(next_said(*bob) == "* 1 in #dev: bob");
    // History lives in redis: alice, on the other daemon, gets #dev's on joining it.
    alice->send_line("/join dev");
    CHECK(alice->line() == "* you joined #dev");
    CHECK(alice->line() == "<bob> for the record");
    CHECK(bob->line() == "* alice joined #dev");
}

TEST_CASE("cluster: a private message crosses daemons and an unknown user is refused") {
    TwoDaemons cluster;
    auto& [redis, prefix, a, b] = cluster;
    auto alice = member(a, "alice");
    auto bob = member(b, "bob");
    auto carol = member(b, "carol");
    alice->send_line("/msg BOB psst");
    CHECK(next_said(*bob) == "<alice> (private) psst");
    CHECK(carol->quiet_for(300ms));
    alice->send_line("/msg nobody hello?");
    CHECK(next_said(*alice) == "* error: no such user nobody");
    // After bob renames himself, his old name is nobody's.
    bob->send_line("/nick robert");
    CHECK(bob->line() == "* you are now known as robert");
    // Daemon b gives up bob's channel as it renames him; a message that
    // crosses the rename on its way is lost, so ask until the rename has
    // reached redis (a few tries at most).
    bool refused = false;
    for (int attempt = 0; attempt < 20 && !refused; ++attempt) {
        alice->send_line("/msg bob still there?");
        try {
            refused = alice->line(300ms) == "* error: no such user bob";
        } catch (const std::runtime_error&) {
        }
    }
    CHECK(refused);
    CHECK(bob->quiet_for(300ms));  // robert did not get what was meant for bob
    alice->send_line("/msg robert there you are");
    CHECK(next_said(*bob) == "<alice> (private) there you are");
}

TEST_CASE("cluster: redis down mid-conversation: local chat goes on with notices and then resumes without duplicates") {
    TwoDaemons cluster;
    auto& [redis, prefix, a, b] = cluster;
    auto alice = member(a, "alice");
    auto anne = member(a, "anne");
    auto bob = member(b, "bob");
    drain(*anne);  // bob's join and nick notices
    alice->send_line("before");
    CHECK(next_said(*bob) == "<alice> before");
    CHECK(next_said(*anne) == "<alice> before");

    redis.stop();
    CHECK(next_said(*alice) == "* notice: cluster link down, messages reach this server only");
    CHECK(next_said(*anne) == "* notice: cluster link down, messages reach this server only");
    CHECK(next_said(*bob) == "* notice: cluster link down, messages reach this server only");
    REQUIRE(wait_cluster(a, 0));
    alice->send_line("during");
    CHECK(next_said(*anne) == "<alice> during");  // the same daemon still delivers
    CHECK(bob->quiet_for(500ms));                  // the other cannot hear it
    // The outage is logged once, not per retry: nobody hears a second notice.
    CHECK(alice->quiet_for(1500ms));

    redis.restart();
    CHECK(next_said(*alice) == "* notice: cluster link restored");
    CHECK(next_said(*anne) == "* notice: cluster link restored");
    CHECK(next_said(*bob) == "* notice: cluster link restored");
    REQUIRE(wait_cluster(a, 1));
    REQUIRE(wait_cluster(b, 1));
    alice->send_line("after");
    CHECK(next_said(*bob) == "<alice> after");
    CHECK(next_said(*anne) == "<alice> after");
    bob->send_line("back");
    CHECK(next_said(*alice) == "<bob> back");
    CHECK(next_said(*anne) == "<bob> back");
    CHECK(bob->quiet_for(300ms));
    CHECK(alice->quiet_for(300ms));
    const auto text = scrape_metrics(a);
    CHECK(metric_value(text, "coserve_chat_cluster_reconnects_total{instance=\"chat\",service=\"chat\"}") >= 1);
    CHECK(metric_value(text, "coserve_chat_cluster_unpublished_total{instance=\"chat\",service=\"chat\"}") >= 1);
}

TEST_CASE("cluster: a daemon started while redis is down serves locally and joins the cluster when it comes") {
    RedisServer redis;
    const auto prefix = unique_prefix();
    redis.stop();
    RunningServer a(chat_ini(redis, prefix));
    std::vector<std::unique_ptr<LineClient>> here;
    for (const char* nick : {"alice", "anne"}) {
        auto c = std::make_unique<LineClient>(a.tcp("chat"));
        REQUIRE(c->line().starts_with("* welcome to #lobby, you are "));
        // Told at once that the cluster is not reachable.
        CHECK(c->line() == "* notice: cluster link down, messages reach this server only");
        c->send_line(std::string("/nick ") + nick);
        REQUIRE(next_said(*c) == std::string("* you are now known as ") + nick);
        here.push_back(std::move(c));
    }
    auto& alice = here[0];
    auto& anne = here[1];
    alice->send_line("local only");
    CHECK(next_said(*anne) == "<alice> local only");
    redis.restart();
    REQUIRE(wait_cluster(a, 1));
    CHECK(next_said(*alice) == "* notice: cluster link restored");
    RunningServer b(chat_ini(redis, prefix));
    REQUIRE(wait_cluster(b, 1));
    auto bob = member(b, "bob");
    alice->send_line("now everywhere");
    CHECK(next_said(*bob) == "<alice> now everywhere");
}

TEST_CASE("cluster: a daemon that dies without a goodbye leaves /who and frees its names within cluster_ttl") {
    RedisServer redis;
    const auto prefix = unique_prefix();
    const std::string ini = chat_ini(redis, prefix) + "cluster_ttl = 3s\n";
    RunningServer a(ini);
    REQUIRE(wait_cluster(a, 1));
    ServerProcess b(ini);  // a process of its own, to be killed
    const std::string linked = "redis 127.0.0.1:" + std::to_string(redis.port()) + ": connected";
    for (int i = 0; i < 400 && b.log().find(linked) == std::string::npos; ++i) std::this_thread::sleep_for(25ms);
    REQUIRE(b.log().find(linked) != std::string::npos);
    auto alice = member(a, "alice");
    auto bob = std::make_unique<LineClient>(b.tcp("chat"));
    REQUIRE(bob->line().starts_with("* welcome to #lobby, you are "));
    bob->send_line("/nick bob");
    REQUIRE(next_said(*bob) == "* you are now known as bob");
    drain(*alice);
    alice->send_line("/who");
    CHECK(next_said(*alice) == "* 2 in #lobby: alice, bob");
    alice->send_line("/nick bob");
    CHECK(next_said(*alice) == "* error: nickname bob is taken");

    b.kill_hard();  // no leave, no release: only expiry cleans up
    std::this_thread::sleep_for(3500ms);
    alice->send_line("/who");
    CHECK(next_said(*alice) == "* 1 in #lobby: alice");
    alice->send_line("/nick bob");
    CHECK(next_said(*alice) == "* you are now known as bob");
}

TEST_CASE("cluster: redis_password: the right one joins the cluster and a wrong one is refused without harm") {
    TwoDaemons cluster({"--requirepass", "s3cret"}, "redis_password = s3cret\n");
    auto& [redis, prefix, a, b] = cluster;
    auto alice = member(a, "alice");
    auto bob = member(b, "bob");
    alice->send_line("with a password");
    CHECK(next_said(*bob) == "<alice> with a password");

    RunningServer wrong(chat_ini(redis, prefix) + "redis_password = guess\n");
    // Redis itself says it refused a password (not merely that the link is
    // slow to come up): its error statistics count a WRONGPASS.
    const std::string errorstats = "redis-cli -p " + std::to_string(redis.port()) + " --no-auth-warning -a s3cret INFO errorstats";
    bool refused = false;
    for (int i = 0; i < 50 && !refused; ++i) {
        refused = run(errorstats).find("errorstat_WRONGPASS:count=") != std::string::npos;
        if (!refused) std::this_thread::sleep_for(100ms);
    }
    CHECK(refused);
    CHECK(cluster_up(wrong) == 0);
    auto carol = std::make_unique<LineClient>(wrong.tcp("chat"));
    REQUIRE(carol->line().starts_with("* welcome to #lobby, you are "));
    CHECK(carol->line() == "* notice: cluster link down, messages reach this server only");
    CHECK(bob->quiet_for(300ms));  // carol's daemon is not in the cluster
}

TEST_CASE("cluster: --check-config does not show redis_password") {
    int status = 0;
    char path[] = "/tmp/coserve-pw-XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    const std::string ini = "[chat]\ntcp = 127.0.0.1:0\nbackend = redis://127.0.0.1:6390\nredis_password = s3cret\n";
    REQUIRE(::write(fd, ini.data(), ini.size()) == static_cast<ssize_t>(ini.size()));
    ::close(fd);
    const auto out = run(std::string(COSERVED_PATH) + " --check-config --config " + path + " 2>&1", &status);
    ::unlink(path);
    CHECK(status == 0);
    CHECK(out.find("redis_password = (set, not shown)") != std::string::npos);
    CHECK(out.find("s3cret") == std::string::npos);
}

TEST_CASE("cluster: backend config errors") {
    auto error = [](const std::string& text) {
        try {
            coserve::load_config_text(text, "bad.ini");
        } catch (const coserve::ConfigError& e) {
            return std::string(e.what());
        }
        return std::string("(accepted)");
    };
    CHECK(error("[chat]\nbackend = redis://localhost:6379\n") ==
          "bad.ini: [chat] backend: expected local or redis://HOST:PORT[/DB] with a numeric HOST (no name is resolved)");
    CHECK(error("[chat]\nbackend = memcached://127.0.0.1:1\n").starts_with("bad.ini: [chat] backend: expected local"));
    CHECK(error("[chat]\nbackend = redis://127.0.0.1:0\n").starts_with("bad.ini: [chat] backend: expected local"));
    CHECK(error("[chat]\nbackend = redis://127.0.0.1:6379/x\n").starts_with("bad.ini: [chat] backend: expected local"));
    CHECK(error("[chat]\nredis_prefix = a b\n") == "bad.ini: [chat] redis_prefix: expected 1-64 characters without blanks or * ? [ ]");
    CHECK(error("[chat]\nbackend = redis://[::1]:6380/2\n") == "(accepted)");
    CHECK(error("[chat]\nbackend = redis://127.0.0.1\n") == "(accepted)");
}

TEST_CASE("cluster: 1000 clients through haproxy over two daemons in one room get every line of every other member exactly once") {
    RedisServer redis;
    const auto prefix = unique_prefix();
    const std::string ini = "[chat]\ntcp = 127.0.0.1:0\nmax_per_source = 0\nrate = 0\nmax_clients = 2000\nbackend = " +
                            redis.url() + "\nredis_prefix = " + prefix + "\n[metrics]\nhttp = 127.0.0.1:0\n";
    RunningServer a(ini);
    RunningServer b(ini);
    REQUIRE(wait_cluster(a, 1));
    REQUIRE(wait_cluster(b, 1));
    const unsigned short front = free_port();
    char cfg_path[] = "/tmp/coserve-haproxy-XXXXXX";
    const int cfg_fd = mkstemp(cfg_path);
    REQUIRE(cfg_fd >= 0);
    const std::string cfg = "global\n    maxconn 2100\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 5m\n"
                            "    timeout server 5m\nfrontend chat\n    bind 127.0.0.1:" + std::to_string(front) +
                            "\n    default_backend chat\nbackend chat\n    balance leastconn\n    server a 127.0.0.1:" +
                            std::to_string(a.tcp("chat").port()) + "\n    server b 127.0.0.1:" +
                            std::to_string(b.tcp("chat").port()) + "\n";
    REQUIRE(::write(cfg_fd, cfg.data(), cfg.size()) == static_cast<ssize_t>(cfg.size()));
    ::close(cfg_fd);
    ChildProcess haproxy({"/usr/sbin/haproxy", "-db", "-f", cfg_path});
    REQUIRE(wait_for_port(front));
    const boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), front);

    constexpr int n = 1000;
    std::vector<std::unique_ptr<LineClient>> clients;
    for (int i = 0; i < n; ++i) {
        clients.push_back(std::make_unique<LineClient>(ep));
        REQUIRE(clients.back()->line(30s).starts_with("* welcome to #lobby"));
    }
    // Both daemons got about half (leastconn).
    const double on_a = metric_value(scrape_metrics(a), "coserve_chat_clients{instance=\"chat\",service=\"chat\"}");
    const double on_b = metric_value(scrape_metrics(b), "coserve_chat_clients{instance=\"chat\",service=\"chat\"}");
    CHECK(on_a + on_b == n);
    CHECK(on_a >= n / 4);
    CHECK(on_b >= n / 4);

    for (int i = 0; i < n; ++i) clients[static_cast<std::size_t>(i)]->send_line("line of client " + std::to_string(i));
    std::size_t wrong = 0;
    for (int i = 0; i < n; ++i) {
        std::vector<int> heard(n, 0);
        int said = 0;
        while (said < n - 1) {
            const auto l = clients[static_cast<std::size_t>(i)]->line(60s);
            if (l.starts_with("*")) continue;  // join notices
            const auto at = l.find("> line of client ");
            REQUIRE(at != std::string::npos);
            const int from = std::stoi(l.substr(at + 17));
            REQUIRE(from >= 0);
            REQUIRE(from < n);
            ++heard[static_cast<std::size_t>(from)];
            ++said;
        }
        for (int k = 0; k < n; ++k)
            if (heard[static_cast<std::size_t>(k)] != (k == i ? 0 : 1)) ++wrong;
    }
    CHECK(wrong == 0);
    // Nothing more arrives: no duplicate came late.
    std::this_thread::sleep_for(500ms);
    std::size_t extra = 0;
    for (auto& c : clients)
        if (!c->quiet_for(1ms)) ++extra;
    CHECK(extra == 0);
    ::unlink(cfg_path);
}

TEST_CASE("cluster: an IRC user on one daemon and a line user on the other share a room through redis") {
    TwoDaemons cluster({}, "irc = 127.0.0.1:0\n");
    auto& [redis, prefix, a, b] = cluster;
    auto bob = member(b, "bob");
    bob->send_line("from before");
    CHECK(bob->quiet_for(200ms));
    LineClient ann(a.server().endpoints("chat", "irc").at(0));
    // The name is checked across daemons: bob is b's.
    ann.send("NICK BOB\r\nUSER ann 0 * :Ann\r\n");
    CHECK(ann.line() == ":coserve 433 * BOB :Nickname is already in use");
    ann.send("NICK ann\r\n");
    CHECK(ann.line() == ":coserve 001 ann :Welcome to the coserve IRC network, ann");
    while (ann.line() != ":coserve 422 ann :MOTD File is missing") {
    }
    ann.send("JOIN #lobby\r\n");
    CHECK(ann.line() == ":ann!ann@coserve JOIN #lobby");
    CHECK(ann.line() == ":coserve 353 ann = #lobby :ann bob");  // bob from redis
    CHECK(ann.line() == ":coserve 366 ann #lobby :End of /NAMES list");
    CHECK(ann.line() == ":coserve NOTICE #lobby :* history of #lobby, the last 1 line:");
    CHECK(ann.line() == ":coserve NOTICE #lobby :<bob> from before");  // history from redis
    CHECK(ann.line() == ":coserve NOTICE #lobby :* end of history");
    CHECK(bob->line() == "* ann joined #lobby");
    ann.send("PRIVMSG #lobby :hello across\r\nPRIVMSG #lobby :\1ACTION waves\1\r\nPRIVMSG bob :psst\r\n");
    CHECK(next_said(*bob) == "<ann> hello across");
    CHECK(next_said(*bob) == "* ann waves");
    CHECK(next_said(*bob) == "<ann> (private) psst");
    bob->send_line("hi ann");
    CHECK(ann.line() == ":bob!bob@coserve PRIVMSG #lobby :hi ann");
    bob->send_line("/me bows");
    CHECK(ann.line() == ":bob!bob@coserve PRIVMSG #lobby :\1ACTION bows\1");
    bob->send_line("/msg ann back");
    CHECK(ann.line() == ":bob!bob@coserve PRIVMSG ann :back");
    ann.send("TOPIC #lobby :shared\r\n");
    CHECK(ann.line() == ":ann!ann@coserve TOPIC #lobby :shared");
    CHECK(next_said(*bob) == "* ann set the topic of #lobby: shared");
    ann.send("WHOIS bob\r\n");
    CHECK(ann.line() == ":coserve 311 ann bob bob coserve * :bob");
    CHECK(ann.line() == ":coserve 319 ann bob :#lobby");
    bob->send_line("/who");
    CHECK(next_said(*bob) == "* 2 in #lobby: ann, bob");
    bob->send_line("/nick robert");
    CHECK(next_said(*bob) == "* you are now known as robert");
    std::string l;
    do l = ann.line();
    while (!l.ends_with("NICK robert"));
    CHECK(l == ":bob!bob@coserve NICK robert");
    ann.send("QUIT :bye\r\n");
    CHECK(next_said(*bob) == "* ann left (bye)");
}

TEST_CASE("cluster: a WebSocket member on one daemon and a line user on the other share a room through redis") {
    TwoDaemons cluster({}, "websocket = 127.0.0.1:0\n");
    auto& [redis, prefix, a, b] = cluster;
    auto bob = member(b, "bob");
    bob->send_line("from before");
    CHECK(bob->quiet_for(200ms));
    WsClient ann(a.server().endpoints("chat", "websocket").at(0));
    REQUIRE(ann.status() == 101);
    CHECK(ann.text().starts_with("* welcome to #lobby, you are "));
    CHECK(ann.text() == "<bob> from before");  // history from redis
    ann.send_text("/nick BOB");
    CHECK(ann.text() == "* error: nickname BOB is taken");  // bob is b's
    ann.send_text("/nick ann");
    CHECK(ann.text() == "* you are now known as ann");
    ann.send_text("/who");
    CHECK(ann.text() == "* 2 in #lobby: ann, bob");
    ann.send_text("hello across");
    CHECK(next_said(*bob) == "<ann> hello across");
    bob->send_line("hello back");
    CHECK(ann.text() == "<bob> hello back");
    ann.send_text("/msg bob psst");
    CHECK(bob->line() == "<ann> (private) psst");
    ann.send_text("/quit");
    CHECK(ann.text() == "* bye");
    CHECK(ann.close_frame().close_reason() == "bye");
    CHECK(bob->line() == "* ann left");
}
