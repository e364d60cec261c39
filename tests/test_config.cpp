// Unit tests: endpoint, duration and configuration parsing, and every bad-config case.
#include <catch2/catch.hpp>

#include <coserve/config.hpp>
#include <coserve/server.hpp>
#include <coserve/service.hpp>

#include <stdexcept>

using namespace coserve;
using namespace std::chrono_literals;

namespace {

std::string config_error(std::string_view text) {
    try {
        load_config_text(text, "bad.ini");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("endpoints parse in all three forms") {
    auto v4 = parse_endpoint("127.0.0.1:7007");
    CHECK(v4.address.to_string() == "127.0.0.1");
    CHECK(v4.port == 7007);
    CHECK_FALSE(v4.any);

    auto v6 = parse_endpoint("[::1]:7007");
    CHECK(v6.address.is_v6());
    CHECK(v6.to_string() == "[::1]:7007");

    auto any = parse_endpoint("*:9");
    CHECK(any.any);
    CHECK(any.port == 9);
    CHECK(any.to_string() == "*:9");

    auto list = parse_endpoint_list("127.0.0.1:7007, [::1]:7007");
    REQUIRE(list.size() == 2);
    CHECK(list[1].to_string() == "[::1]:7007");
    CHECK(parse_endpoint_list("").empty());
}

TEST_CASE("malformed endpoints are rejected with a reason") {
    CHECK_THROWS_WITH(parse_endpoint("localhost:7"), Catch::Contains("numeric address"));
    CHECK_THROWS_WITH(parse_endpoint("127.0.0.1"), Catch::Contains("host:port"));
    CHECK_THROWS_WITH(parse_endpoint("127.0.0.1:65536"), Catch::Contains("bad port"));
    CHECK_THROWS_WITH(parse_endpoint("127.0.0.1:-1"), Catch::Contains("bad port"));
    CHECK_THROWS_WITH(parse_endpoint("127.0.0.1:"), Catch::Contains("bad port"));
    CHECK_THROWS_WITH(parse_endpoint("::1:7007"), Catch::Contains("brackets"));
    CHECK_THROWS_WITH(parse_endpoint("[::1]7007"), Catch::Contains("':port'"));
    CHECK_THROWS_WITH(parse_endpoint("[::g]:7007"), Catch::Contains("bad IPv6"));
    CHECK_THROWS_WITH(parse_endpoint("[::1:7007"), Catch::Contains("missing ']'"));
    CHECK_THROWS_WITH(parse_endpoint("300.1.1.1:7"), Catch::Contains("numeric address"));
    CHECK_THROWS_WITH(parse_endpoint_list("127.0.0.1:7,"), Catch::Contains("empty item"));
    CHECK_THROWS_WITH(parse_endpoint_list("127.0.0.1:7, *:7"), Catch::Contains("listed twice"));
}

TEST_CASE("durations") {
    CHECK(parse_duration("250ms") == 250ms);
    CHECK(parse_duration("30s") == 30s);
    CHECK(parse_duration("5m") == 5min);
    CHECK(parse_duration("1h") == 1h);
    CHECK(parse_duration("0") == 0ms);
    CHECK(format_duration(300s) == "5m");
    CHECK(format_duration(1500ms) == "1500ms");
    CHECK_THROWS_WITH(parse_duration("30"), Catch::Contains("units"));
    CHECK_THROWS_WITH(parse_duration("5x"), Catch::Contains("units"));
    CHECK_THROWS_WITH(parse_duration("-1s"), Catch::Contains("bad duration"));
    CHECK_THROWS_WITH(parse_duration("1.5s"), Catch::Contains("units"));
    CHECK_THROWS_WITH(parse_duration("99999999999999999999h"), Catch::Contains("bad duration"));
    CHECK_THROWS_WITH(parse_duration("9999999999999999h"), Catch::Contains("too large"));
}

TEST_CASE("a full configuration with comments and defaults") {
    auto c = load_config_text(R"(
; a comment
[server]
threads = 2                 ; io_context threads
log_level = debug           # hash comments too
shutdown_grace = 250ms
max_connections = 50

[echo]
tcp = 127.0.0.1:7007, [::1]:7007   ; two endpoints
udp = 127.0.0.1:7007
idle_timeout = 30s

[echo-lan]
service = echo
tcp = 127.0.0.1:17007
enabled = false
max_connections = 5
max_line = 100
)");
    CHECK(c.server.threads == 2);
    CHECK_FALSE(c.server.loop_per_thread);  // thread_model = shared by default
    CHECK(load_config_text("[server]\nthreads = 2\nthread_model = per-thread\n").server.loop_per_thread);
    CHECK(c.server.log_level == Severity::debug);
    CHECK(c.server.shutdown_grace == 250ms);
    CHECK(c.server.max_connections == 50);
    REQUIRE(c.instances.size() == 2);
    const auto& echo = c.instances[0];
    CHECK(echo.name == "echo");
    CHECK(echo.service_type == "echo");
    CHECK(echo.options.tcp.size() == 2);
    CHECK(echo.options.udp.size() == 1);
    CHECK(echo.options.idle_timeout == 30s);
    CHECK(echo.options.max_connections == 1000);  // default
    CHECK(echo.options.max_line == 8192);         // default
    CHECK(echo.options.enabled);
    const auto& lan = c.instances[1];
    CHECK(lan.service_type == "echo");
    CHECK_FALSE(lan.options.enabled);
    CHECK(lan.options.max_connections == 5);
    CHECK(lan.options.max_line == 100);
    auto text = describe(c);
    CHECK_THAT(text, Catch::Contains("[echo] service echo"));
    CHECK_THAT(text, Catch::Contains("tcp = 127.0.0.1:7007, [::1]:7007"));
    CHECK_THAT(text, Catch::Contains("[echo-lan] service echo (disabled)"));
}

TEST_CASE("server defaults") {
    auto c = load_config_text("[echo]\ntcp = 127.0.0.1:0\n");
    CHECK(c.server.threads == 1);
    CHECK(c.server.log_level == Severity::info);
    CHECK(c.server.shutdown_grace == 5s);
    CHECK(c.server.max_connections == 10000);
    CHECK(c.instances.at(0).options.idle_timeout == 300s);
}

TEST_CASE("each bad configuration gives one line naming file and section and key") {
    CHECK(config_error("[echo]\ntcp = 127.0.0.1:0\ncolour = blue\n") == "bad.ini: [echo] colour: unknown key");
    CHECK(config_error("[server]\nthreads = 1\nbogus = 1\n") == "bad.ini: [server] bogus: unknown key");
    CHECK(config_error("[echo]\nservice = nosuch\n") ==
          "bad.ini: [echo] service: unknown service type \"nosuch\" (known: echo, uppercase, daytime, time, adder, "
          "hello, discard, chargen, chat, files)");
    CHECK_THAT(config_error("[nosuch]\ntcp = 127.0.0.1:1\n"),
               Catch::StartsWith("bad.ini: [nosuch]: unknown service type \"nosuch\""));
    CHECK(config_error("[echo]\ntcp = 127.0.0.1:99999\n") ==
          "bad.ini: [echo] tcp: bad port \"99999\" (expected 0-65535)");
    CHECK(config_error("[echo]\ntcp = localhost:7\n") ==
          "bad.ini: [echo] tcp: host must be a numeric address (names are not resolved), got \"localhost\"");
    CHECK(config_error("[echo]\nidle_timeout = 10 seconds\n") ==
          "bad.ini: [echo] idle_timeout: bad duration \"10 seconds\" (units: ms, s, m, h)");
    CHECK(config_error("[echo]\nmax_connections = 0\n") ==
          "bad.ini: [echo] max_connections: expected an integer from 1 to 10000000, got \"0\"");
    CHECK(config_error("[echo]\nmax_connections = lots\n") ==
          "bad.ini: [echo] max_connections: expected an integer from 1 to 10000000, got \"lots\"");
    CHECK(config_error("[echo]\nudp = 127.0.0.1:0\nudp_batch = 0\n") ==
          "bad.ini: [echo] udp_batch: expected an integer from 1 to 256, got \"0\"");
    CHECK(config_error("[server]\nthreads = 1000\n") ==
          "bad.ini: [server] threads: expected an integer from 1 to 256, got \"1000\"");
    CHECK(config_error("[server]\nthread_model = fibres\n") ==
          "bad.ini: [server] thread_model: expected one of shared, per-thread, got \"fibres\"");
    CHECK(config_error("[server]\nlog_level = loud\n") ==
          "bad.ini: [server] log_level: expected one of trace, debug, info, warning, error, fatal, got \"loud\"");
    CHECK(config_error("[echo]\nenabled = maybe\n") == "bad.ini: [echo] enabled: expected true or false, got \"maybe\"");
    CHECK(config_error("[echo]\ntcp = 127.0.0.1:7\ntcp = 127.0.0.1:8\n") == "bad.ini: [echo] tcp: set more than once");
    CHECK(config_error("threads = 1\n") == "bad.ini: key \"threads\" is outside any [section]");
    CHECK(config_error("[echo]\njust words\n") ==
          "bad.ini: invalid line \"just words\" (expected key = value, or [section])");
    // Boost's own message for this loops forever on its placeholder (found by fuzzing).
    CHECK(config_error("[echo]\nx%invalid_line%\n") ==
          "bad.ini: invalid line \"x%invalid_line%\" (expected key = value, or [section])");
    CHECK(config_error("[echo]\n[echo]\n") == "bad.ini: [echo] appears more than once");
    CHECK_THAT(config_error("[echo]\nthis line has no equals sign\n"), Catch::StartsWith("bad.ini: "));
}

TEST_CASE("two instances on one endpoint are a configuration error") {
    CHECK(config_error("[echo]\ntcp = 127.0.0.1:7007\n[echo2]\nservice = echo\ntcp = 127.0.0.1:7007\n") ==
          "bad.ini: [echo2] tcp: 127.0.0.1:7007 is already used by [echo] (127.0.0.1:7007)");
    CHECK(config_error("[echo]\nudp = *:7007\n[echo2]\nservice = echo\nudp = [::1]:7007\n") ==
          "bad.ini: [echo2] udp: [::1]:7007 is already used by [echo] (*:7007)");
    // Different protocols, a disabled instance, or port 0 do not collide.
    CHECK_NOTHROW(load_config_text("[echo]\ntcp = 127.0.0.1:7007\n[echo2]\nservice = echo\nudp = 127.0.0.1:7007\n"));
    CHECK_NOTHROW(load_config_text(
        "[echo]\ntcp = 127.0.0.1:7007\n[echo2]\nservice = echo\nenabled = false\ntcp = 127.0.0.1:7007\n"));
    CHECK_NOTHROW(load_config_text("[echo]\ntcp = 127.0.0.1:0\n[echo2]\nservice = echo\ntcp = 127.0.0.1:0\n"));
}

TEST_CASE("a missing file is a configuration error") {
    CHECK_THROWS_WITH(load_config_file("/nonexistent/coserved.ini"),
                      Catch::StartsWith("cannot read config file /nonexistent/coserved.ini"));
}

TEST_CASE("daemon keys of the server section") {
    auto c = load_config_text(
        "[server]\nlog_file = /var/log/coserved.log\nlog_format = json\nlog_rotate_size = 10M\npid_file = /run/c.pid\n"
        "user = nobody\ngroup = nogroup\n",
        "/etc/coserve/coserved.ini");
    CHECK(c.server.log_file == "/var/log/coserved.log");
    CHECK(c.server.log_json);
    CHECK(c.server.log_rotate_size == 10u << 20);
    CHECK(c.server.pid_file == "/run/c.pid");
    CHECK(c.server.user == "nobody");
    CHECK(c.server.group == "nogroup");
    // Relative paths are relative to the config file's folder.
    auto rel = load_config_text("[server]\nlog_file = logs/c.log\n", "/etc/coserve/coserved.ini");
    CHECK(rel.server.log_file == "/etc/coserve/logs/c.log");
    CHECK(config_error("[server]\nlog_format = xml\n") ==
          "bad.ini: [server] log_format: expected one of text, json, got \"xml\"");
    CHECK(config_error("[server]\nlog_rotate_size = 10M\n") == "bad.ini: [server] log_rotate_size: needs log_file");
    CHECK_THAT(config_error("[server]\nlog_file = x\nlog_rotate_size = 10X\n"),
               Catch::StartsWith("bad.ini: [server] log_rotate_size: expected a size"));
    CHECK(config_error("[server]\nlog_file = x\nsyslog = true\n") ==
          "bad.ini: [server] syslog: choose log_file or syslog, not both");
    CHECK(config_error("[server]\ngroup = nogroup\n") == "bad.ini: [server] group: needs user");
    CHECK(config_error("[metrics]\nhttp = localhost:9187\n") ==
          "bad.ini: [metrics] http: host must be a numeric address (names are not resolved), got \"localhost\"");
    CHECK(config_error("[metrics]\nport = 9187\n") == "bad.ini: [metrics] port: unknown key");
}

namespace {
class Dummy final : public coserve::Service {};
const coserve::ServiceType dummy_type{
    "dummy", [](coserve::Section& s, const coserve::InstanceOptions&) -> std::unique_ptr<coserve::Service> {
        (void)s.integer("size", 1, 1, 10);
        return std::make_unique<Dummy>();
    }};
}  // namespace

TEST_CASE("register_service: a program's own service type is configured like a built-in one") {
    CHECK(config_error("[dummy]\ntcp = 127.0.0.1:0\n").find("unknown service type") != std::string::npos);
    coserve::register_service(dummy_type);
    CHECK(coserve::find_service_type("dummy") == &dummy_type);
    const auto config = load_config_text("[dummy]\ntcp = 127.0.0.1:0\nsize = 3\n[other]\nservice = dummy\ntcp = 127.0.0.1:0\n");
    CHECK(config.instances.size() == 2);
    CHECK(config_error("[dummy]\ntcp = 127.0.0.1:0\nsize = 11\n") ==
          "bad.ini: [dummy] size: expected an integer from 1 to 10, got \"11\"");
    CHECK(config_error("[dummy]\ntcp = 127.0.0.1:0\ncolour = red\n") == "bad.ini: [dummy] colour: unknown key");
    CHECK_THROWS_AS(coserve::register_service(dummy_type), std::invalid_argument);  // the name is taken
    const coserve::ServiceType echo_again{"echo", dummy_type.create};
    CHECK_THROWS_AS(coserve::register_service(echo_again), std::invalid_argument);  // so are the built-in ones
}

TEST_CASE("a program embedding the library refuses the daemon's keys instead of ignoring them") {
    for (const char* key : {"pid_file = /run/x.pid", "user = nobody", "group = nogroup"}) {
        std::string ini = std::string("[server]\n") + key + "\n[echo]\ntcp = 127.0.0.1:0\n";
        if (std::string_view(key).starts_with("group")) ini = "[server]\nuser = nobody\n" + ini.substr(9);
        auto config = coserve::load_config_text(ini, "embedded.ini");
        const std::string name = std::string(key).substr(0, std::string(key).find(' '));
        const std::string first = std::string_view(key).starts_with("group") ? "user" : name;
        CHECK_THROWS_WITH(coserve::Server(config),
                          "embedded.ini: [server] " + first +
                              ": only a daemon acts on this key (coserved does); this program does not, so it is refused");
        coserve::ServerHooks acts;
        acts.daemon_keys = true;
        acts.handle_signals = false;
        CHECK_NOTHROW(coserve::Server(std::move(config), acts));  // a program that acts on them says so
    }
}

TEST_CASE("TLS keys: each mistake that needs no certificate file is one line naming the key") {
    CHECK(config_error("[echo]\ntls = 127.0.0.1:0\n") ==
          "bad.ini: [echo] tls_cert: is needed by tls (a PEM file: the certificate, then its chain)");
    CHECK(config_error("[echo]\ntls = 127.0.0.1:0\ntls_cert = /nonexistent/c.pem\ntls_key = /nonexistent/k.pem\n") ==
          "bad.ini: [echo] tls_cert: /nonexistent/c.pem: cannot read: No such file or directory");
    CHECK(config_error("[echo]\ntls = 127.0.0.1:0\ntls_min_version = 1.1\n") ==
          "bad.ini: [echo] tls_min_version: expected one of 1.2, 1.3, got \"1.1\"");
    CHECK(config_error("[echo]\ntls = 127.0.0.1:0\ntls_client_auth = sometimes\n") ==
          "bad.ini: [echo] tls_client_auth: expected one of none, optional, require, got \"sometimes\"");
    CHECK(config_error("[echo]\ntls = 127.0.0.1:0\ntls_handshake_timeout = 1ms\n") ==
          "bad.ini: [echo] tls_handshake_timeout: expected a duration from 100ms to 10m, got \"1ms\"");
    CHECK(config_error("[metrics]\nhttps = 127.0.0.1:0\n") ==
          "bad.ini: [metrics] tls_cert: is needed by https (a PEM file: the certificate, then its chain)");
}

TEST_CASE("chat's IRC keys: each mistake one line naming the key") {
    CHECK(config_error("[chat]\ntcp = 127.0.0.1:0\nirc_ping = 30s\n") ==
          "bad.ini: [chat] irc_ping: is set, but there are no IRC listeners (irc = ENDPOINTS or irc_tls = ENDPOINTS) "
          "or WebSocket ones (websocket, websocket_tls)");
    CHECK(config_error("[chat]\nirc = 127.0.0.1:0\nirc_server_name = no spaces\n") ==
          "bad.ini: [chat] irc_server_name: expected 1-63 of A-Z a-z 0-9 . - _ (a name, not an address clients resolve)");
    CHECK_THAT(config_error("[chat]\nirc = 127.0.0.1:0\nirc_motd = /nonexistent/motd\n"),
               Catch::StartsWith("bad.ini: [chat] irc_motd: cannot read /nonexistent/motd"));
    CHECK(config_error("[chat]\nirc = 127.0.0.1:0\nirc_max_channels = 0\n") ==
          "bad.ini: [chat] irc_max_channels: expected an integer from 1 to 1000, got \"0\"");
    CHECK(config_error("[chat]\nirc = 127.0.0.1:0\nirc_password = two words\n") ==
          "bad.ini: [chat] irc_password: expected at most 100 characters without blanks (a PASS parameter)");
    CHECK(config_error("[chat]\nirc_tls = 127.0.0.1:0\n") ==
          "bad.ini: [chat] tls_cert: is needed by irc_tls (a PEM file: the certificate, then its chain)");
    CHECK(config_error("[echo]\nirc = 127.0.0.1:0\n") == "bad.ini: [echo] irc: unknown key");
    // An IRC port is a TCP port like any other.
    CHECK(config_error("[echo]\ntcp = 127.0.0.1:7007\n[chat]\nirc = 127.0.0.1:7007\n") ==
          "bad.ini: [chat] irc: 127.0.0.1:7007 is already used by [echo] (127.0.0.1:7007)");
    const auto config = load_config_text("[chat]\nirc = 127.0.0.1:0\nirc_password = sekrit\n");
    const auto shown = describe(config);
    CHECK(shown.find("sekrit") == std::string::npos);
    CHECK(shown.find("irc = 127.0.0.1:0") != std::string::npos);
}

TEST_CASE("chat's WebSocket keys: each mistake one line naming the key") {
    CHECK(config_error("[chat]\ntcp = 127.0.0.1:0\nwebsocket_ping = 30s\n") ==
          "bad.ini: [chat] websocket_ping: is set, but there are no WebSocket listeners (websocket = ENDPOINTS or "
          "websocket_tls = ENDPOINTS)");
    CHECK(config_error("[chat]\nwebsocket = 127.0.0.1:0\nwebsocket_origins = https://ok.example, chat.example.org\n") ==
          "bad.ini: [chat] websocket_origins: expected origins as browsers send them, http://HOST[:PORT] or "
          "https://HOST[:PORT] (no path), separated by commas; got chat.example.org");
    CHECK(config_error("[chat]\nwebsocket = 127.0.0.1:0\nwebsocket_origins = https://x.example/path\n") ==
          "bad.ini: [chat] websocket_origins: expected origins as browsers send them, http://HOST[:PORT] or "
          "https://HOST[:PORT] (no path), separated by commas; got https://x.example/path");
    CHECK(config_error("[chat]\nwebsocket = 127.0.0.1:0\nwebsocket_ping = 10ms\n") ==
          "bad.ini: [chat] websocket_ping: expected a duration from 100ms to 1h, got \"10ms\"");
    CHECK(config_error("[chat]\nwebsocket = 127.0.0.1:0\nwebsocket_request_timeout = 1h\n") ==
          "bad.ini: [chat] websocket_request_timeout: expected a duration from 100ms to 5m, got \"1h\"");
    CHECK(config_error("[chat]\nwebsocket_tls = 127.0.0.1:0\n") ==
          "bad.ini: [chat] tls_cert: is needed by websocket_tls (a PEM file: the certificate, then its chain)");
    CHECK(config_error("[echo]\nwebsocket = 127.0.0.1:0\n") == "bad.ini: [echo] websocket: unknown key");
    // WebSocket listeners alone take the irc_* keys (IRC over text.ircv3.net).
    const auto config = load_config_text("[chat]\nwebsocket = 127.0.0.1:0\nirc_server_name = web.example\n"
                                         "websocket_origins = HTTPS://Chat.Example.org:443\n");
    const auto shown = describe(config);
    CHECK(shown.find("websocket = 127.0.0.1:0") != std::string::npos);
    CHECK(shown.find("irc_server_name = \"web.example\"") != std::string::npos);
    CHECK(shown.find("websocket_origins = \"HTTPS://Chat.Example.org:443\"") != std::string::npos);
}
