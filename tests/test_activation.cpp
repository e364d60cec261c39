// systemd socket activation, with the sockets passed by this test the way
// systemd passes them: descriptors from 3 on, LISTEN_FDS, LISTEN_PID and
// LISTEN_FDNAMES set in the child before exec.
#include <catch2/catch.hpp>

#include "support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace testing;

namespace {

int bound_socket(int type, unsigned short& port) {
    int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    if (type == SOCK_STREAM) REQUIRE(::listen(fd, 128) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

bool wait_for(const std::string& path, const std::string& text) {
    for (int i = 0; i < 200; ++i) {
        if (slurp(path).find(text) != std::string::npos) return true;
        std::this_thread::sleep_for(25ms);
    }
    return false;
}

// Starts coserved with `fds` as descriptors 3, 4, ... named by `names`.
pid_t activate(const std::string& config, const std::string& log, std::vector<int> fds, const std::string& names) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        for (std::size_t i = 0; i < fds.size(); ++i) {
            const int target = 3 + static_cast<int>(i);
            if (fds[i] == target) ::fcntl(target, F_SETFD, 0);  // keep it across exec
            else ::dup2(fds[i], target);                          // dup2 clears FD_CLOEXEC
        }
        const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(out, 1);
        ::dup2(out, 2);
        ::setenv("LISTEN_FDS", std::to_string(fds.size()).c_str(), 1);
        ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
        ::setenv("LISTEN_FDNAMES", names.c_str(), 1);
        ::execl(COSERVED_PATH, COSERVED_PATH, "--config", config.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    return pid;
}

// SIGTERM: exit status 0, and no error in the log.
void stop_clean(pid_t pid, const std::string& log) {
    ::kill(pid, SIGTERM);
    int status = -1;
    ::waitpid(pid, &status, 0);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    INFO(slurp(log));
    CHECK(slurp(log).find("error") == std::string::npos);
}

}  // namespace

TEST_CASE("socket activation: inherited sockets are used and survive reloads") {
    char tmpl[] = "/tmp/coserve-activation-XXXXXX";
    const std::string dir = ::mkdtemp(tmpl);
    unsigned short tport = 0, uport = 0;
    const int tfd = bound_socket(SOCK_STREAM, tport);
    const int ufd = bound_socket(SOCK_DGRAM, uport);
    const std::string config = dir + "/a.ini", log = dir + "/log";
    const std::string echo = "[echo]\ntcp = 127.0.0.1:" + std::to_string(tport) + "\nudp = 127.0.0.1:" + std::to_string(uport) + "\n";
    std::ofstream(config) << "[server]\nshutdown_grace = 1s\n" << echo << "[hello]\ntcp = 127.0.0.1:0\n";
    const pid_t pid = activate(config, log, {tfd, ufd}, "echo-tcp:echo-udp");
    ::close(tfd);  // from now on only coserved holds them, as with systemd
    ::close(ufd);
    REQUIRE(wait_for(log, "service hello: tcp"));
    CHECK(slurp(log).find("tcp 127.0.0.1:" + std::to_string(tport) + ": from the service manager (echo-tcp)") != std::string::npos);
    CHECK(slurp(log).find("udp 127.0.0.1:" + std::to_string(uport) + ": from the service manager (echo-udp)") != std::string::npos);
    const boost::asio::ip::tcp::endpoint tep(boost::asio::ip::make_address("127.0.0.1"), tport);
    const boost::asio::ip::udp::endpoint uep(boost::asio::ip::make_address("127.0.0.1"), uport);
    {
        TcpClient c(tep);
        c.send("over inherited tcp");
        CHECK(c.recv_exact(18) == "over inherited tcp");
        UdpClient u(uep);
        u.send("over inherited udp");
        CHECK(u.recv() == std::optional<std::string>("over inherited udp"));
    }

    // A reload without [echo]: its sockets stay open in coserved (descriptor 3 is still a socket).
    std::ofstream(config) << "[server]\nshutdown_grace = 1s\n[hello]\ntcp = 127.0.0.1:0\n";
    ::kill(pid, SIGHUP);
    REQUIRE(wait_for(log, "reload: 0 started, 0 changed, 1 stopped, 1 unchanged"));
    struct stat st{};
    CHECK(::stat(("/proc/" + std::to_string(pid) + "/fd/3").c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));

    // [echo] back: the inherited sockets serve again (no second bind, no "address in use").
    std::ofstream(config) << "[server]\nshutdown_grace = 1s\n" << echo << "[hello]\ntcp = 127.0.0.1:0\n";
    ::kill(pid, SIGHUP);
    REQUIRE(wait_for(log, "reload: 1 started, 0 changed, 0 stopped, 1 unchanged"));
    {
        TcpClient c(tep);
        c.send("again");
        CHECK(c.recv_exact(5) == "again");
    }
    stop_clean(pid, log);
    std::filesystem::remove_all(dir);
}

TEST_CASE("socket activation: a descriptor name that matches no instance is refused") {
    char tmpl[] = "/tmp/coserve-activation-XXXXXX";
    const std::string dir = ::mkdtemp(tmpl);
    unsigned short tport = 0;
    const int tfd = bound_socket(SOCK_STREAM, tport);
    const std::string config = dir + "/a.ini", log = dir + "/log";
    std::ofstream(config) << "[echo]\ntcp = 127.0.0.1:" << tport << "\n";
    const pid_t pid = activate(config, log, {tfd}, "nosuch-tcp");
    ::close(tfd);
    int status = -1;
    ::waitpid(pid, &status, 0);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 1));
    CHECK(slurp(log).find("socket activation: FileDescriptorName=nosuch-tcp names no enabled instance") != std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST_CASE("socket activation: a front-end's socket (chat-irc) is taken as the irc listener") {
    char tmpl[] = "/tmp/coserve-activation-XXXXXX";
    const std::string dir = ::mkdtemp(tmpl);
    unsigned short port = 0;
    const int fd = bound_socket(SOCK_STREAM, port);
    const std::string config = dir + "/a.ini", log = dir + "/log";
    std::ofstream(config) << "[server]\nshutdown_grace = 1s\n[chat]\ntcp = 127.0.0.1:0\nirc = 127.0.0.1:" << port << "\n";
    const pid_t pid = activate(config, log, {fd}, "chat-irc");
    ::close(fd);
    REQUIRE(wait_for(log, "service chat: tcp"));
    CHECK(slurp(log).find("irc 127.0.0.1:" + std::to_string(port) + ": from the service manager (chat-irc)") !=
          std::string::npos);
    {
        LineClient c(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
        c.send("NICK ann\r\nUSER ann 0 * :Ann\r\n");
        CHECK(c.line() == ":coserve 001 ann :Welcome to the coserve IRC network, ann");
    }
    stop_clean(pid, log);
    std::filesystem::remove_all(dir);
}
