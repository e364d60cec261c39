// Service plugins in the stock coserved: the kv example loaded from a shared
// object and talked to over sockets; every kind of bad plugin refused with a
// message and exit status 2 at start, or a logged refusal at reload.
#include "support.hpp"

#include <coserve/plugin.hpp>

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>
#include <sys/wait.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

using namespace testing;
namespace fs = std::filesystem;

namespace {

const std::string plugins = PLUGIN_DIR;

// A scratch folder, removed at the end of the test.
struct Scratch {
    std::string dir;
    Scratch() {
        char tmpl[] = "/tmp/coserve-plugin-XXXXXX";
        if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
        dir = tmpl;
    }
    ~Scratch() { fs::remove_all(dir); }
    std::string write(const std::string& name, const std::string& text, mode_t mode = 0644) const {
        const auto path = dir + "/" + name;
        fs::create_directories(fs::path(path).parent_path());
        std::ofstream(path) << text;
        ::chmod(path.c_str(), mode);
        return path;
    }
    // A copy of a built plugin, replacing any file of that name (a new inode).
    std::string copy(const std::string& from, const std::string& name, mode_t mode = 0755) const {
        const auto path = dir + "/" + name;
        const auto tmp = path + ".new";
        fs::create_directories(fs::path(path).parent_path());
        fs::copy_file(from, tmp, fs::copy_options::overwrite_existing);
        ::chmod(tmp.c_str(), mode);
        fs::rename(tmp, path);
        return path;
    }
};

// coserved --check-config on `ini`; returns what it printed, `status` its exit status.
std::string check_config(const Scratch& scratch, const std::string& ini, int& status) {
    const auto path = scratch.write("check.ini", ini);
    int raw = 0;
    auto out = run(std::string(COSERVED_PATH) + " --check-config --config " + path + " 2>&1", &raw);
    status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    return out;
}

// Waits (up to 10 s) for `text` in the log after position `from`.
bool logged(const ServerProcess& server, const std::string& text, std::size_t from = 0) {
    for (int i = 0; i < 400; ++i) {
        const auto log = server.log();
        if (log.size() > from && log.find(text, from) != std::string::npos) return true;
        std::this_thread::sleep_for(25ms);
    }
    return false;
}

}  // namespace

TEST_CASE("plugins: the kv example as a plugin in coserved answers over TCP and UDP") {
    // Four event-loop threads: the plugin's coroutines run on the daemon's
    // Asio, from any of them.
    ServerProcess server("[server]\nthreads = 4\nshutdown_grace = 1s\n[kv]\nplugin = " + plugins +
                         "/kv.so\ntcp = 127.0.0.1:0\nudp = 127.0.0.1:0\nmax_keys = 2\n[echo]\ntcp = 127.0.0.1:0\n");
    CHECK(server.log().find("[kv] service kv: tcp 127.0.0.1:") != std::string::npos);
    LineClient a(server.tcp("kv")), b(server.tcp("kv"));
    a.send_line("SET colour green");
    CHECK(a.line() == "STORED");
    b.send_line("GET colour");
    CHECK(b.line() == "VALUE green");  // one store, shared by the instance's connections
    a.send_line("SET size 3");
    CHECK(a.line() == "STORED");
    a.send_line("SET third x");
    CHECK(a.line() == "ERR full (2 keys)");  // max_keys, read by the plugin's factory
    b.send_line("STATS");
    CHECK(b.line() == "STATS keys 2 connection_requests 2");
    UdpClient u(server.udp("kv"));
    u.send("GET size\n");
    CHECK(u.recv() == std::optional<std::string>("VALUE 3\n"));
    LineClient e(server.tcp("echo"));  // built-in services beside it, from the same file
    e.send_line("still here");
    CHECK(e.line() == "still here");

    // Eight clients at once, 100 requests each, on connections spread over the threads.
    std::atomic<int> right{0};
    std::vector<std::thread> clients;
    for (int i = 0; i < 8; ++i)
        clients.emplace_back([&] {
            try {
                LineClient c(server.tcp("kv"));
                for (int n = 0; n < 50; ++n) {
                    c.send_line("GET colour");
                    right += c.line() == "VALUE green";
                    c.send_line("STATS");
                    right += c.line() == "STATS keys 2 connection_requests " + std::to_string(2 * n + 2);
                }
            } catch (const std::exception&) {
                // counted as missing answers
            }
        });
    for (auto& t : clients) t.join();
    CHECK(right == 8 * 100);
    server.stop();  // exit status 0 and no ASan, UBSan or TSan report in its whole log, plugins unloaded
    CHECK(logged(server, "info stopped"));
}

TEST_CASE("plugins: a relative plugin path is taken from the config file's folder") {
    Scratch scratch;
    const auto copy = scratch.copy(plugins + "/kv.so", "plugins/kv.so");
    int status = -1;
    const auto out = check_config(scratch, "[store]\nplugin = plugins/kv.so\ntcp = 127.0.0.1:0\n", status);
    INFO(out);
    CHECK(status == 0);
    CHECK(out.find("[store] service kv") != std::string::npos);
    CHECK(out.find("plugin = \"" + copy + "\"") != std::string::npos);
    // Through a symbolic link, the file really loaded is what counts (and is shown).
    fs::create_symlink(copy, scratch.dir + "/current.so");
    const auto linked = check_config(scratch, "[store]\nplugin = current.so\ntcp = 127.0.0.1:0\n", status);
    CHECK(status == 0);
    CHECK(linked.find("plugin = \"" + copy + "\"") != std::string::npos);
}

TEST_CASE("plugins: a bad plugin is refused with a message and exit status 2") {
    Scratch scratch;
    const auto text = scratch.write("notes.so", "this is not a shared object\n");
    const auto writable = scratch.copy(plugins + "/good.so", "writable.so", 0775);
    const auto dir = scratch.dir + "/folder.so";
    fs::create_directories(dir);
    const auto boost_version = std::to_string(BOOST_VERSION / 100000) + "." + std::to_string(BOOST_VERSION / 100 % 1000) +
                               "." + std::to_string(BOOST_VERSION % 100);
    struct Case {
        std::string file, expected;
    };
    const std::vector<Case> cases{
        {text, "not a plugin: not a shared object (no ELF header)"},
        {COSERVED_PATH, "cannot load it: "},  // an executable, not a shared object
        {scratch.dir + "/missing.so", "cannot open: No such file or directory"},
        {dir, "not a regular file"},
        {writable, "the file is writable by its group or by others"},
        {plugins + "/undefined.so", "cannot load it: " + plugins + "/undefined.so: undefined symbol: coserve_test_no_such_function"},
        {plugins + "/no_entry.so", "not a coserve plugin: it has no coserve_plugin_entry symbol"},
        {plugins + "/null.so", "not a coserve plugin: its entry point returned no descriptor"},
        {plugins + "/magic.so", "not a coserve plugin: its descriptor has the wrong magic number"},
        {plugins + "/api.so", "built for plugin API version " + std::to_string(COSERVE_PLUGIN_API_VERSION + 1) +
                                  ", but this program (coserve " COSERVE_VERSION_STRING ") loads version " +
                                  std::to_string(COSERVE_PLUGIN_API_VERSION) +
                                  ": rebuild the plugin against coserve " COSERVE_VERSION_STRING},
        {plugins + "/boost.so", "built with Boost 1.74.0, but this program uses Boost " + boost_version +
                                    ": rebuild the plugin with the same Boost"},
        {plugins + "/flags.so", COSERVE_PLUGIN_ABI_FLAGS ? "built for epoll sockets, but this program uses io_uring"
                                                         : "built for io_uring sockets, but this program uses epoll"},
        {plugins + "/throws.so", "its entry point threw an exception"},
        {plugins + "/name.so", "its service type name pro be has characters other than A-Z a-z 0-9 _ -"},
        {plugins + "/malformed.so", "its descriptor is malformed"},
        {plugins + "/builtin.so", "it provides the service type echo, which this program has already"},
        {plugins + "/no_side.so", "its service type probe has neither a TCP nor a UDP side"},
    };
    for (const auto& c : cases) {
        int status = -1;
        const auto out = check_config(scratch, "[p]\nplugin = " + c.file + "\ntcp = 127.0.0.1:0\n", status);
        INFO(c.file << "\n" << out);
        CHECK(status == 2);
        CHECK(out.find("check.ini: [p] plugin: \"" + c.file + "\": " + c.expected) != std::string::npos);
        CHECK(out.find("Sanitizer") == std::string::npos);
    }
    int status = -1;
    auto out = check_config(scratch, "[p]\nplugin =\ntcp = 127.0.0.1:0\n", status);
    CHECK(status == 2);
    CHECK(out.find("check.ini: [p] plugin: expected the path of a plugin file (a .so)") != std::string::npos);
    out = check_config(scratch, "[echo]\ntcp = 127.0.0.1:0\n", status);
    CHECK(status == 0);
    CHECK(out.find("plugin =") == std::string::npos);  // not shown where it is not used
    out = check_config(scratch, "[p]\nplugin = " + plugins + "/good.so\nservice = echo\ntcp = 127.0.0.1:0\n", status);
    CHECK(status == 2);
    CHECK(out.find("[p] service: the plugin provides the service type probe, not \"echo\"") != std::string::npos);
    out = check_config(scratch, "[p]\nplugin = " + plugins + "/factory_throws.so\ntcp = 127.0.0.1:0\n", status);
    CHECK(status == 2);  // the plugin's factory let an exception out
    CHECK(out.find("check.ini: [p]: the service could not be set up: stoi") != std::string::npos);
    out = check_config(scratch, "[p]\nplugin = " + plugins + "/good.so\nservice = probe\ntcp = 127.0.0.1:0\n", status);
    INFO(out);
    CHECK(status == 0);  // the same plugin, nothing wrong with it
}

// Needs root (to give a file to another user): reported as skipped otherwise
// (tests/CMakeLists.txt: tests tagged [root]).
TEST_CASE("plugins: a plugin file that belongs to another user is refused", "[root]") {
    if (::geteuid() != 0) {
        WARN("skipped: needs root");
        return;
    }
    Scratch scratch;
    int status = -1;
    const auto theirs = scratch.copy(plugins + "/good.so", "theirs.so");
    REQUIRE(::chown(theirs.c_str(), 65534, 65534) == 0);
    const auto out = check_config(scratch, "[p]\nplugin = " + theirs + "\ntcp = 127.0.0.1:0\n", status);
    CHECK(status == 2);
    CHECK(out.find("\": the file belongs to another user (uid 65534)") != std::string::npos);
}

TEST_CASE("plugins: a bad plugin at reload is refused and logged while the running ones keep serving") {
    Scratch scratch;
    const auto kv = scratch.copy(plugins + "/kv.so", "kv.so");
    ServerProcess server("[kv]\nplugin = " + kv + "\ntcp = 127.0.0.1:0\n");
    const auto port = std::to_string(server.tcp("kv").port());
    const std::string ini = "[kv]\nplugin = " + kv + "\ntcp = 127.0.0.1:" + port + "\n";
    LineClient client(server.tcp("kv"));
    client.send_line("SET k v1");
    CHECK(client.line() == "STORED");
    auto reload = [&](const std::string& text, const std::string& expect) {
        std::ofstream(server.config_path()) << text;
        const auto from = server.log().size();
        ::kill(server.pid(), SIGHUP);
        return logged(server, expect, from);
    };
    CHECK(reload(ini + "[other]\nplugin = " + plugins + "/api.so\ntcp = 127.0.0.1:0\n",
                 "[other] plugin: \"" + plugins + "/api.so\": built for plugin API version " + std::to_string(COSERVE_PLUGIN_API_VERSION + 1)));
    CHECK(server.log().find("the running configuration stays") != std::string::npos);
    CHECK(reload(ini + "[other]\nplugin = " + scratch.dir + "/nothing.so\ntcp = 127.0.0.1:0\n",
                 "nothing.so\": cannot open: No such file or directory"));
    client.send_line("GET k");
    CHECK(client.line() == "VALUE v1");

    // A loaded plugin cannot be swapped under the same name...
    scratch.copy(plugins + "/kv.so", "kv.so");
    CHECK(reload(ini + "[echo]\ntcp = 127.0.0.1:0\n", "the file changed since it was loaded"));
    LineClient again(server.tcp("kv"));
    again.send_line("GET k");
    CHECK(again.line() == "VALUE v1");
    // ... but a new build under a new name replaces the instance.
    const auto kv2 = scratch.copy(plugins + "/kv.so", "kv-2.so");
    CHECK(reload("[kv]\nplugin = " + kv2 + "\ntcp = 127.0.0.1:" + port + "\n", "reload: 0 started, 1 changed"));
    LineClient fresh(server.tcp("kv"));
    fresh.send_line("GET k");
    CHECK(fresh.line() == "NOT_FOUND");  // a new instance, with a new store
    fresh.send_line("SET k v2");
    CHECK(fresh.line() == "STORED");

    // A symbolic link: the file it points to is the plugin. Unchanged, the
    // instance stays; pointed at a new build, the instance is rebuilt.
    fs::create_symlink(kv2, scratch.dir + "/kv-current.so");
    const std::string linked = "[kv]\nplugin = " + scratch.dir + "/kv-current.so\ntcp = 127.0.0.1:" + port + "\n";
    CHECK(reload(linked, "reload: 0 started, 0 changed, 0 stopped, 1 unchanged"));
    const auto kv3 = scratch.copy(plugins + "/kv.so", "kv-3.so");
    fs::remove(scratch.dir + "/kv-current.so");
    fs::create_symlink(kv3, scratch.dir + "/kv-current.so");
    CHECK(reload(linked, "reload: 0 started, 1 changed"));
    LineClient newest(server.tcp("kv"));
    newest.send_line("GET k");
    CHECK(newest.line() == "NOT_FOUND");
    server.stop();
}

TEST_CASE("plugins: a program that does not export the framework refuses them with a message") {
    // This test binary links the static library without exporting its
    // symbols, so the plugin's references to coserve stay unresolved.
    try {
        coserve::load_config_text("[kv]\nplugin = " + plugins + "/kv.so\ntcp = 127.0.0.1:0\n", "host.ini");
        FAIL("loaded");
    } catch (const coserve::ConfigError& e) {
        const std::string what = e.what();
        INFO(what);
        CHECK(what.find("host.ini: [kv] plugin: \"" + plugins + "/kv.so\": cannot load it: ") == 0);
        CHECK(what.find("undefined symbol: _Z") != std::string::npos);  // a mangled name of coserve's
        CHECK(what.find("coserve", what.find("undefined symbol")) != std::string::npos);
    }
}
