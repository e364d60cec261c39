// Integration: the metrics endpoint, scraped with the real curl and checked
// with the real promtool.
#include <catch2/catch.hpp>

#include "support.hpp"

#include <cstdio>
#include <fstream>
#include <regex>

using namespace testing;

namespace {

const char* const config = R"(
[metrics]
http = 127.0.0.1:0
[echo]
tcp = 127.0.0.1:0
udp = 127.0.0.1:0
[chat]
tcp = 127.0.0.1:0
rate = 0
)";

}  // namespace

TEST_CASE("metrics: /healthz, /instances, 404 and 405") {
    RunningServer rs(config);
    const auto base = "http://127.0.0.1:" + std::to_string(rs.server().metrics_endpoints().at(0).port());
    CHECK(run("curl -s " + base + "/healthz") == "ok\n");
    const auto json = run("curl -s " + base + "/instances | jq -c '[.[] | {name, service, tcp: (.tcp | length)}]'");
    CHECK(json == "[{\"name\":\"echo\",\"service\":\"echo\",\"tcp\":1},{\"name\":\"chat\",\"service\":\"chat\",\"tcp\":1}]\n");
    CHECK(run("curl -s -o /dev/null -w '%{http_code}' " + base + "/nope") == "404");
    CHECK(run("curl -s -o /dev/null -w '%{http_code}' -X POST " + base + "/metrics") == "405");
}

TEST_CASE("metrics: counters move with traffic and promtool accepts the exposition") {
    RunningServer rs(config);
    const std::string echo = "{instance=\"echo\",service=\"echo\"}";
    const std::string chat = "{instance=\"chat\",service=\"chat\"}";
    auto before = scrape_metrics(rs);
    CHECK(metric_value(before, "coserve_connections_total" + echo) == 0);
    CHECK(metric_value(before, "coserve_datagrams_received_total" + echo) == 0);

    for (int i = 0; i < 3; ++i) {
        TcpClient c(rs.tcp("echo"));
        c.send("0123456789");
        REQUIRE(c.recv_exact(10) == "0123456789");
    }
    UdpClient u(rs.udp("echo"));
    u.send("ping");
    REQUIRE(u.recv() == std::optional<std::string>("ping"));
    {
        LineClient a(rs.tcp("chat"));
        a.line();  // in before b connects (with a loop per thread they could join in either order)
        LineClient b(rs.tcp("chat"));
        b.line();
        a.line();  // b joined
        a.send_line("hello");
        REQUIRE(b.line().ends_with("> hello"));
        auto during = scrape_metrics(rs);
        CHECK(metric_value(during, "coserve_connections_active" + chat) == 2);
        CHECK(metric_value(during, "coserve_chat_clients" + chat) == 2);
    }
    std::this_thread::sleep_for(300ms);  // the closes are counted when the sessions end

    auto after = scrape_metrics(rs);
    CHECK(metric_value(after, "coserve_connections_total" + echo) == 3);
    CHECK(metric_value(after, "coserve_connections_closed_total" + echo) == 3);
    CHECK(metric_value(after, "coserve_received_bytes_total" + echo) == 30);
    CHECK(metric_value(after, "coserve_sent_bytes_total" + echo) == 30);
    CHECK(metric_value(after, "coserve_datagrams_received_total" + echo) == 1);
    CHECK(metric_value(after, "coserve_datagrams_sent_total" + echo) == 1);
    CHECK(metric_value(after, "coserve_chat_messages_total" + chat) == 1);
    CHECK(metric_value(after, "coserve_chat_deliveries_total" + chat) >= 1);
    CHECK(metric_value(after, "coserve_connections_active" + chat) == 0);
    CHECK(metric_value(after, "coserve_open_fds") > 0);
    CHECK(metric_value(after, "coserve_resident_memory_bytes") > 0);
    CHECK(metric_value(after, "coserve_uptime_seconds") > 0);

    const std::string file = "/tmp/coserve-metrics-" + std::to_string(::getpid()) + ".txt";
    std::ofstream(file) << after;
    int status = -1;
    const auto lint = run(std::string(PROMTOOL_PATH) + " check metrics < " + file + " 2>&1", &status);
    std::remove(file.c_str());
    INFO(lint);
    CHECK(status == 0);
    CHECK(lint.empty());
}

TEST_CASE("metrics: its listener has the framework's limits and counts in the process's max_connections") {
    RunningServer rs("[server]\nmax_connections = 6\n[metrics]\nhttp = 127.0.0.1:0\nmax_connections = 3\nmax_per_source = 0\n"
                     "[echo]\ntcp = 127.0.0.1:0\nmax_per_source = 0\n");
    const auto endpoint = rs.server().metrics_endpoints().at(0);
    const std::string healthz = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    const std::string ok = "HTTP/1.1 200 OK\r\n";
    std::vector<TcpClient> held;
    for (int i = 0; i < 3; ++i) {  // three keep-alive clients, each served (so each holds its permit)
        held.emplace_back(endpoint);
        held.back().send(healthz);
        CHECK(held.back().recv_some().starts_with(ok));
    }
    TcpClient fourth(endpoint);
    CHECK(fourth.closed_within(2s));  // beyond [metrics] max_connections: closed at accept
    std::vector<TcpClient> echoes;
    for (int i = 0; i < 3; ++i) {
        echoes.emplace_back(rs.tcp("echo"));
        echoes.back().send("e");
        CHECK(echoes.back().recv_exact(1) == "e");
    }
    TcpClient seventh(rs.tcp("echo"));
    CHECK(seventh.closed_within(2s));  // 3 metrics + 3 echo = the process's 6
    held.pop_back();
    echoes.pop_back();
    std::string text;
    for (int i = 0; i < 50 && text.empty(); ++i) {  // until the closed one's permit is back
        std::this_thread::sleep_for(50ms);
        text = scrape_metrics(rs);
    }
    CHECK(metric_value(text, "coserve_connections_rejected_total{instance=\"metrics\",service=\"metrics\",reason=\"limit\"}") == 1);
    CHECK(metric_value(text, "coserve_connections_active{instance=\"metrics\",service=\"metrics\"}") == 3);
    held.front().send(healthz);  // the kept-alive ones still work
    CHECK(held.front().recv_some().starts_with(ok));
}
