// Unit: the chat hub (rooms, names, history, the checks) without sockets.
// Members have no socket (fd -1): what the hub sends them stays in their
// queues, where these tests read it.
#include <catch2/catch.hpp>

#include "../services/chat/hub.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

using namespace coserve::services;
using namespace coserve::services::chat;

namespace {

struct Fixture {
    boost::asio::io_context ioc;
    Delivery out;
    Hub hub{HubOptions{.room = "lobby", .history = 2, .max_clients = 3}, out};
    FlushList flush;

    std::shared_ptr<Member> admit(const std::string& guest = "") {
        auto m = std::make_shared<Member>(ioc.get_executor(), 100);
        return hub.admit(m, guest, nullptr, flush) ? m : nullptr;
    }
};

// Everything queued for `m`, taken out, one string per line.
std::vector<std::string> take(Member& m) {
    std::vector<std::string> lines;
    std::lock_guard lock(m.mutex);
    while (!m.queue.empty()) {
        MessageRef line = m.queue.pop();
        m.lines -= line->lines;
        lines.push_back(line->text);
    }
    return lines;
}

using Lines = std::vector<std::string>;

// Records what the hub tells the cluster, in order.
struct Recorder final : HubMirror {
    std::vector<std::string> calls;
    void name_taken(std::string_view n) override { calls.push_back("taken " + std::string(n)); }
    void name_released(std::string_view n) override { calls.push_back("released " + std::string(n)); }
    void placed(std::string_view n, std::string_view r) override { calls.push_back("placed " + std::string(n) + " " + std::string(r)); }
    void event(std::string_view k, std::string_view r, std::string_view n, std::string_view t) override {
        calls.push_back("event " + std::string(k) + " " + std::string(r) + " " + std::string(n) + " " + std::string(t));
    }
    void remember(std::string_view r, const MessageRef& line) override { calls.push_back("remember " + std::string(r) + " " + line->text); }
};

}  // namespace

TEST_CASE("chat hub: admission, names, the room hears joins and lines") {
    Fixture f;
    auto a = f.admit();
    auto b = f.admit("alice");
    REQUIRE(a);
    REQUIRE(b);
    CHECK(b->nick == "alice");
    CHECK(a->nick.starts_with("guest"));
    CHECK(take(*a) == Lines{"* welcome to #lobby, you are " + a->nick + " (type /help for commands)\r\n",
                            "* alice joined #lobby\r\n"});
    CHECK(take(*b) == Lines{"* welcome to #lobby, you are alice (type /help for commands)\r\n"});
    auto c = f.admit("ALICE");  // the cluster's guest name, taken here (case-insensitively): a local one instead
    REQUIRE(c);
    CHECK(c->nick.starts_with("guest"));
    CHECK(f.admit() == nullptr);  // max_clients = 3
    take(*b);
    take(*c);
    f.hub.say(*b, false, "hi", f.flush);
    f.hub.say(*b, true, "waves", f.flush);
    take(*a);
    CHECK(take(*c) == Lines{"<alice> hi\r\n", "* alice waves\r\n"});
    CHECK(take(*b).empty());  // not to the sender
    CHECK(f.hub.messages() == 2);
}

TEST_CASE("chat hub: lines said in a row are one entry in each queue, kept one by one in history, and count as lines") {
    Fixture f;
    Recorder r;
    f.hub.set_mirror(&r);
    auto a = f.admit();
    auto b = f.admit("alice");
    take(*a);
    take(*b);
    SaidLines said(64);
    said.add(Said::Kind::msg, "one");
    said.add(Said::Kind::me, "waves");
    said.add(Said::Kind::msg, "three");
    r.calls.clear();
    const auto before = f.hub.deliveries();
    f.hub.say_lines(*b, said, f.flush);
    CHECK(a->lines == 3);
    CHECK(take(*a) == Lines{"<alice> one\r\n* alice waves\r\n<alice> three\r\n"});  // one entry
    CHECK(take(*b).empty());
    CHECK(f.hub.messages() == 3);
    CHECK(f.hub.deliveries() - before == 3);
    CHECK(r.calls == std::vector<std::string>{"remember lobby <alice> one\r\n", "event msg lobby alice one",
                                              "remember lobby * alice waves\r\n", "event me lobby alice waves",
                                              "remember lobby <alice> three\r\n", "event msg lobby alice three"});

    // A newcomer hears the last two lines (history = 2), each on its own;
    // with max_queue = 4 those and its welcome leave room for one line, and
    // a batch of two drops it as too slow (nobody else is held up).
    auto d = std::make_shared<Member>(f.ioc.get_executor(), 4);
    REQUIRE(f.hub.admit(d, "dan", nullptr, f.flush));
    {
        std::lock_guard lock(d->mutex);
        REQUIRE(d->queue.size() == 3);
        CHECK(d->queue.at(1)->text == "* alice waves\r\n");
        CHECK(d->queue.at(2)->text == "<alice> three\r\n");
        CHECK(d->lines == 3);
    }
    take(*a);
    said.clear();
    said.add(Said::Kind::msg, "four");
    said.add(Said::Kind::msg, "five");
    f.hub.say_lines(*b, said, f.flush);
    CHECK(d->too_slow);
    CHECK(f.out.slow_consumers() == 1);
    CHECK(d->lines == 3);
    CHECK(take(*a) == Lines{"<alice> four\r\n<alice> five\r\n"});
    f.ioc.poll();  // the drop's handler (it holds dan) runs while the pool is there
}

TEST_CASE("chat outbox: a sliced flush lets go of each member as it is flushed, not all at the end") {
    // Members whose sessions have ended may live on in a flush list only;
    // 10,000 of them freed in one turn of the loop held it for 11-12 ms.
    boost::asio::io_context ioc;
    Delivery out;
    FlushList list;
    std::vector<std::weak_ptr<Member>> gone;
    for (int i = 0; i < 200; ++i) {
        auto m = std::make_shared<Member>(ioc.get_executor(), 4);
        out.tell(*m, {"hi"}, list);
        gone.push_back(m);
    }  // the list holds the only references
    REQUIRE(list.size() == 200);
    boost::asio::co_spawn(ioc, out.flush_sliced(list), boost::asio::detached);
    ioc.run_one();  // the first slice, then a turn of the loop
    auto expired = [&] { return std::count_if(gone.begin(), gone.end(), [](auto& w) { return w.expired(); }); };
    CHECK(expired() == 64);
    ioc.run();
    CHECK(expired() == 200);
    CHECK(list.empty());
}

TEST_CASE("chat hub: each check once, then the change") {
    Fixture f;
    auto a = f.admit("alice");
    auto b = f.admit("bob");
    take(*a);
    take(*b);
    CHECK(f.hub.nick_error(*a, "bad name") == "* error: invalid nickname (1-32 of A-Z a-z 0-9 _ -)");
    CHECK(f.hub.nick_error(*a, "BOB") == "* error: nickname BOB is taken");
    CHECK(f.hub.nick_error(*a, "ALICE").empty());  // one's own name in other case
    CHECK_FALSE(f.hub.rename(*a, "Bob", f.flush));
    a->eol = "\n";  // a reply ends as the command did
    REQUIRE(f.hub.rename(*a, "carol", f.flush));
    CHECK(take(*a) == Lines{"* you are now known as carol\n"});
    CHECK(take(*b) == Lines{"* alice is now known as carol\r\n"});
    CHECK(f.hub.join_error(*a, "no way") == "* error: invalid room name (1-32 of A-Z a-z 0-9 _ -)");
    CHECK(f.hub.join_error(*a, "LOBBY") == "* error: you are already in #lobby");
    CHECK(room_argument("#dev") == "dev");
    CHECK(f.hub.join_error(*a, "dev").empty());
    REQUIRE(f.hub.move(a, "dev", nullptr, f.flush));
    CHECK_FALSE(f.hub.move(a, "DEV", nullptr, f.flush));
    CHECK(take(*a) == Lines{"* you joined #dev\n"});
    CHECK(take(*b) == Lines{"* carol left for #dev\r\n"});
    f.hub.tell_members(*b, ChatCommand::Kind::rooms, nullptr, f.flush);
    CHECK(take(*b) == Lines{"* 2 rooms: #dev (1), #lobby (1)\r\n"});
    const Others others{{"zed", "lobby"}, {"amy", "LOBBY"}, {"x", "ops"}};
    f.hub.tell_members(*b, ChatCommand::Kind::who, &others, f.flush);
    CHECK(take(*b) == Lines{"* 3 in #lobby: amy, bob, zed\r\n"});
    f.hub.tell_members(*b, ChatCommand::Kind::rooms, &others, f.flush);
    CHECK(take(*b) == Lines{"* 3 rooms: #dev (1), #lobby (3), #ops (1)\r\n"});
    CHECK(f.hub.private_message(*b, "CAROL", Said::Kind::msg, "psst", f.flush));
    CHECK_FALSE(f.hub.private_message(*b, "nobody", Said::Kind::msg, "psst", f.flush));
    CHECK(take(*a) == Lines{"<bob> (private) psst\r\n"});
}

TEST_CASE("chat hub: history for newcomers, and rooms vanish with their last member") {
    Fixture f;
    auto a = f.admit("alice");
    for (const char* line : {"one", "two", "three"}) f.hub.say(*a, false, line, f.flush);
    auto b = f.admit("bob");
    CHECK(take(*b) == Lines{"* welcome to #lobby, you are bob (type /help for commands)\r\n", "<alice> two\r\n",
                            "<alice> three\r\n"});  // history = 2
    const std::vector<std::string> remote{"<x> from redis"};
    auto c = std::make_shared<Member>(f.ioc.get_executor(), 100);
    REQUIRE(f.hub.admit(c, "carol", &remote, f.flush));
    CHECK(take(*c) == Lines{"* welcome to #lobby, you are carol (type /help for commands)\r\n", "<x> from redis\r\n"});
    f.hub.remove(*a, "left (lunch)", f.flush);
    f.hub.remove(*c, "left", f.flush);
    CHECK(take(*b).back() == "* carol left\r\n");
    f.hub.remove(*b, "left", f.flush);
    CHECK(f.hub.clients() == 0);
    auto d = f.admit("dave");  // a new #lobby: no history
    CHECK(take(*d).size() == 1);
}

TEST_CASE("chat hub: the cluster hears membership before the event that announces it") {
    Fixture f;
    Recorder r;
    f.hub.set_mirror(&r);
    auto a = f.admit("alice");
    f.hub.say(*a, false, "hi", f.flush);
    REQUIRE(f.hub.rename(*a, "al", f.flush));
    REQUIRE(f.hub.move(a, "dev", nullptr, f.flush));
    f.hub.remove(*a, "left", f.flush);
    CHECK(r.calls == std::vector<std::string>{
                         "taken alice", "placed alice lobby", "event join lobby alice ",
                         "remember lobby <alice> hi\r\n", "event msg lobby alice hi",
                         "released alice", "taken al", "placed alice ", "placed al lobby", "event nick lobby al alice",
                         "placed al dev", "event leave lobby al left for #dev", "placed al dev", "event join dev al ",
                         "placed al ", "event leave dev al left", "released al"});
}

TEST_CASE("chat hub: a link outage is told once to everyone, and to each newcomer while it lasts") {
    Fixture f;
    auto a = f.admit("alice");
    take(*a);
    f.hub.link_state(false, f.flush);
    f.hub.link_state(false, f.flush);
    CHECK(take(*a) == Lines{std::string(Hub::link_down_notice) + "\r\n"});
    auto b = f.admit("bob");
    CHECK(take(*b).back() == std::string(Hub::link_down_notice) + "\r\n");
    f.hub.link_state(true, f.flush);
    CHECK(take(*a).back() == std::string(Hub::link_restored_notice) + "\r\n");
}

TEST_CASE("chat hub: join notices go in batches and each member hears the joins after its own in order with the rest") {
    boost::asio::io_context ioc;
    Delivery out;
    Hub hub{HubOptions{.room = "lobby", .history = 0, .max_clients = 10}, out};
    int started = 0;
    hub.set_notice_flusher([&] { ++started; });
    FlushList flush;
    auto admit = [&](const std::string& nick) {
        auto m = std::make_shared<Member>(ioc.get_executor(), 100);
        REQUIRE(hub.admit(m, nick, nullptr, flush));
        return m;
    };
    auto a = admit("ann");
    CHECK(started == 1);
    CHECK(take(*a).size() == 1);  // the welcome
    CHECK(hub.settle_notices(flush));  // ann's own join: nobody else to tell
    CHECK_FALSE(hub.settle_notices(flush));  // nothing waits: the flusher ends
    auto b = admit("bob");
    auto c = admit("cy");
    auto d = admit("dee");
    CHECK(started == 2);  // one flusher for the batch
    take(*b);
    take(*c);
    take(*d);
    CHECK(take(*a).empty());  // not yet: the batch waits for the flusher
    CHECK(hub.settle_notices(flush));
    CHECK(take(*a) == Lines{"* bob joined #lobby\r\n* cy joined #lobby\r\n* dee joined #lobby\r\n"});
    CHECK(take(*b) == Lines{"* cy joined #lobby\r\n* dee joined #lobby\r\n"});
    CHECK(take(*c) == Lines{"* dee joined #lobby\r\n"});
    CHECK(take(*d).empty());
    CHECK(hub.deliveries() == 3 + 2 + 1);

    // A line in the room tells the waiting joins first.
    auto e = admit("eve");
    take(*e);
    hub.say(*b, false, "hi", flush);
    CHECK(take(*a) == Lines{"* eve joined #lobby\r\n", "<bob> hi\r\n"});
    CHECK(take(*e) == Lines{"<bob> hi\r\n"});
    CHECK(take(*b) == Lines{"* eve joined #lobby\r\n"});
    CHECK(take(*c) == Lines{"* eve joined #lobby\r\n", "<bob> hi\r\n"});
    take(*d);
    CHECK_FALSE(hub.settle_notices(flush));  // already told

    // A member that leaves is told what was waiting for it; its leave goes
    // in the batch, after the join it heard.
    auto g = admit("gus");
    take(*g);
    hub.remove(*c, "left", flush);
    CHECK(take(*c) == Lines{"* gus joined #lobby\r\n"});
    CHECK(take(*a).empty());
    CHECK(hub.settle_notices(flush));
    CHECK(take(*a) == Lines{"* gus joined #lobby\r\n* cy left\r\n"});
    CHECK(take(*g) == Lines{"* cy left\r\n"});

    // A whole room leaving: one batch, not a broadcast per leave.
    for (auto* m : {b.get(), d.get(), e.get()}) take(*m);
    const auto before = hub.deliveries();
    for (auto* m : {b.get(), d.get(), e.get()}) hub.remove(*m, "left", flush);
    CHECK(take(*b).empty());
    CHECK(take(*d) == Lines{"* bob left\r\n"});  // what was waiting for each as it left
    CHECK(take(*e) == Lines{"* bob left\r\n* dee left\r\n"});
    CHECK(hub.settle_notices(flush));
    CHECK(take(*a) == Lines{"* bob left\r\n* dee left\r\n* eve left\r\n"});
    CHECK(take(*g) == Lines{"* bob left\r\n* dee left\r\n* eve left\r\n"});
    CHECK(hub.deliveries() - before == 1 + 2 + 3 + 3);
    hub.remove(*a, "left", flush);
    hub.remove(*g, "left", flush);  // the last one: the room and its batch go
    CHECK_FALSE(hub.settle_notices(flush));
}
