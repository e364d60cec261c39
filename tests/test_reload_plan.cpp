// Unit: what a reload does, planned on plain data (no sockets).
#include <catch2/catch.hpp>

#include "../src/reload_plan.hpp"

using namespace coserve;
using coserve::detail::plan_reload;
using coserve::detail::ReloadPlan;
using coserve::detail::RunningInstance;

namespace {

InstanceConfig instance(std::string name, std::string tcp, std::string effective = "x") {
    InstanceConfig ic;
    ic.name = name;
    ic.service_type = "echo";
    if (!tcp.empty()) ic.options.tcp = parse_endpoint_list(tcp);
    ic.effective = {{"tcp", tcp}, {"other", effective}};
    return ic;
}

RunningInstance running(const InstanceConfig& ic, std::vector<unsigned short> ports) {
    RunningInstance r{&ic, {}, {}};
    for (std::size_t i = 0; i < ports.size(); ++i) r.tcp_bound.emplace_back(ic.options.tcp[i].address, ports[i]);
    return r;
}

}  // namespace

TEST_CASE("reload plan: unchanged instances run on, changed ones are rebuilt on their own sockets, removed ones go") {
    const auto echo = instance("echo", "127.0.0.1:7007");
    const auto hello = instance("hello", "127.0.0.1:9999");
    const auto gone = instance("gone", "127.0.0.1:7013");
    const auto hello2 = instance("hello", "127.0.0.1:9999", "changed");
    const auto fresh = instance("fresh", "127.0.0.1:12000");
    const std::vector<RunningInstance> now{running(echo, {7007}), running(hello, {9999}), running(gone, {7013})};
    const auto plan = plan_reload(now, {&fresh, &hello2, &echo});
    REQUIRE(plan.keep.size() == 3);
    CHECK_FALSE(plan.keep[0]);  // fresh: built
    CHECK_FALSE(plan.keep[1]);  // hello: rebuilt
    CHECK(plan.keep[2] == std::optional<std::size_t>(0));  // echo: the running one
    CHECK(plan.fate == std::vector{ReloadPlan::Fate::kept, ReloadPlan::Fate::changed, ReloadPlan::Fate::removed});
    // hello's socket is handed over, never closed and bound again; gone's closes; fresh's is bound.
    CHECK(plan.tcp_handover == std::map<std::pair<std::size_t, std::size_t>, std::string>{{{1, 0}, "127.0.0.1:9999"}});
    REQUIRE(plan.tcp_bind.size() == 1);
    CHECK(plan.tcp_bind[0].key == "127.0.0.1:12000");
    CHECK(plan.tcp_bind[0].instance == "fresh");
    CHECK(plan.udp_bind.empty());
    CHECK(plan.started == 1);
    CHECK(plan.changed == 1);
    CHECK(plan.stopped == 1);
    CHECK(plan.unchanged == 1);
}

TEST_CASE("reload plan: a port-0 socket goes to whoever wants it by the port it got") {
    const auto before = instance("echo", "127.0.0.1:0");
    const auto same_instance = instance("echo", "127.0.0.1:0", "changed");
    const auto by_port = instance("other", "127.0.0.1:41234");
    const std::vector<RunningInstance> now{running(before, {41234})};
    SECTION("the same instance, changed, keeps its port-0 socket") {
        const auto plan = plan_reload(now, {&same_instance});
        CHECK(plan.tcp_handover.at({0, 0}) == "echo 127.0.0.1:0");
        CHECK(plan.tcp_bind.empty());
    }
    SECTION("another instance that names the port it got takes it over") {
        const auto plan = plan_reload(now, {&by_port});
        CHECK(plan.tcp_handover.at({0, 0}) == "127.0.0.1:41234");
        CHECK(plan.tcp_bind.empty());
        CHECK(plan.stopped == 1);
        CHECK(plan.started == 1);
    }
    SECTION("another instance's port 0 is a new socket") {
        const auto other_zero = instance("other", "127.0.0.1:0");
        const auto plan = plan_reload(now, {&other_zero});
        CHECK(plan.tcp_handover.empty());
        REQUIRE(plan.tcp_bind.size() == 1);
        CHECK(plan.tcp_bind[0].key == "other 127.0.0.1:0");
    }
}

TEST_CASE("reload plan: the same file again changes nothing") {
    const auto echo = instance("echo", "127.0.0.1:7007,[::1]:7007");
    const std::vector<RunningInstance> now{running(echo, {7007, 7007})};
    const auto plan = plan_reload(now, {&echo});
    CHECK(plan.keep[0] == std::optional<std::size_t>(0));
    CHECK(plan.tcp_handover.empty());
    CHECK(plan.tcp_bind.empty());
    CHECK(plan.unchanged == 1);
    CHECK(plan.started + plan.changed + plan.stopped == 0);
}

TEST_CASE("reload plan: an instance's tcp and tls port 0 on one address are two sockets") {
    auto both = instance("echo", "127.0.0.1:0");
    both.options.tls = parse_endpoint_list("127.0.0.1:0");
    auto changed = both;
    changed.effective = {{"other", "changed"}};
    SECTION("started: both are bound, each under its own key") {
        const auto plan = plan_reload({}, {&both});
        REQUIRE(plan.tcp_bind.size() == 2);
        CHECK(plan.tcp_bind[0].key == "echo 127.0.0.1:0");
        CHECK(plan.tcp_bind[0].kind == "tcp");
        CHECK(plan.tcp_bind[1].key == "echo tls 127.0.0.1:0");
        CHECK(plan.tcp_bind[1].kind == "tls");
    }
    SECTION("changed: each socket goes to the listener of its own kind") {
        RunningInstance r{&both, {}, {}};
        r.tcp_bound = {{both.options.tcp[0].address, 41000}, {both.options.tls[0].address, 41001}};
        const auto plan = plan_reload({r}, {&changed});
        CHECK(plan.tcp_handover ==
              std::map<std::pair<std::size_t, std::size_t>, std::string>{{{0, 0}, "echo 127.0.0.1:0"}, {{0, 1}, "echo tls 127.0.0.1:0"}});
        CHECK(plan.tcp_bind.empty());
    }
}
