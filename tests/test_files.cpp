// Integration: the files service: protocol, confinement beneath root, sendfile
// downloads under load, uploads, serve_file.
#include <catch2/catch.hpp>

#include "support.hpp"

#include "../services/protocols.hpp"

#include <openssl/evp.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace testing;
namespace fs = std::filesystem;

namespace {

std::string sha256_hex(std::string_view data) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), d, &len, EVP_sha256(), nullptr);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) out += {hex[d[i] >> 4], hex[d[i] & 15]};
    return out;
}

void write_file(const fs::path& p, std::string_view data) {
    std::ofstream out(p, std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// A scratch tree: root/ (served) and, beside it, a canary that must never be read.
struct Tree {
    fs::path dir;
    fs::path root;
    std::string canary = "CANARY never serve this";
    std::string binary = random_bytes(100000, 7);

    Tree() {
        char tmpl[] = "/tmp/coserve-files-XXXXXX";
        dir = mkdtemp(tmpl);
        root = dir / "root";
        fs::create_directories(root / "sub" / "deeper");
        write_file(root / "hello.txt", "hello world\n");
        write_file(root / "sub" / "inner.txt", "inner\n");
        write_file(root / "data.bin", binary);
        write_file(dir / "canary.txt", canary);
        fs::create_directory_symlink("/etc", root / "etc_link");
        fs::create_symlink("../canary.txt", root / "escape");
        fs::create_symlink("chain2", root / "chain1");
        fs::create_symlink("sub/../../canary.txt", root / "chain2");
        fs::create_symlink("hello.txt", root / "alias.txt");  // stays inside: allowed
        REQUIRE(mkfifo((root / "fifo").c_str(), 0644) == 0);
    }
    ~Tree() { fs::remove_all(dir); }

    std::string config(std::string_view extra = "") const {
        return "[files]\ntcp = 127.0.0.1:0\nroot = " + root.string() + "\n" + std::string(extra);
    }
};

}  // namespace

TEST_CASE("files: LIST shows only what can be fetched") {
    Tree t;
    RunningServer rs(t.config());
    LineClient c(rs.tcp("files"));
    c.send("LIST\n");
    CHECK(c.line() == "OK 4");
    CHECK(c.line() == "f 12 alias.txt");
    CHECK(c.line() == "f 100000 data.bin");
    CHECK(c.line() == "f 12 hello.txt");
    CHECK(c.line() == "d 0 sub");
    // Not listed: the symlinks that leave root (escape, etc_link, chain1, chain2) and the FIFO.
    CHECK(c.quiet_for(200ms));
}

TEST_CASE("files: the protocol, request by request") {
    Tree t;
    RunningServer rs(t.config());
    LineClient c(rs.tcp("files"));
    c.send("LIST sub\r\n");
    CHECK(c.line() == "OK 2");
    CHECK(c.line() == "d 0 deeper");
    CHECK(c.line() == "f 6 inner.txt");
    c.send("SIZE data.bin\n");
    CHECK(c.line() == "OK 100000");
    c.send("SHA256 data.bin\n");
    const auto expected = sha256_hex(t.binary);
    CHECK(c.line() == "OK " + expected);
    // Compared with the real sha256sum too.
    CHECK(run("sha256sum " + (t.root / "data.bin").string()).substr(0, 64) == expected);
    c.send("GET data.bin\n");
    CHECK(c.line() == "OK 100000");
    CHECK(c.bytes(100000) == t.binary);
    c.send("GET data.bin 0\n");
    CHECK(c.line() == "OK 100000");
    CHECK(c.bytes(100000) == t.binary);
    c.send("GET data.bin 40000\n");
    CHECK(c.line() == "OK 60000");
    CHECK(c.bytes(60000) == t.binary.substr(40000));
    c.send("GET data.bin 100000\n");
    CHECK(c.line() == "OK 0");
    c.send("GET data.bin 100001\n");
    CHECK(c.line() == "ERR bad offset");
    c.send("GET data.bin x\n");
    CHECK(c.line() == "ERR bad offset");
    c.send("GET sub/inner.txt\n");
    CHECK(c.line() == "OK 6");
    CHECK(c.bytes(6) == "inner\n");
    c.send("GET alias.txt\n");  // a symlink that stays beneath root
    CHECK(c.line() == "OK 12");
    CHECK(c.bytes(12) == "hello world\n");
    c.send("GET nothing.txt\n");
    CHECK(c.line() == "ERR not found");
    c.send("SIZE sub\n");
    CHECK(c.line() == "ERR is a directory");
    c.send("GET sub\n");
    CHECK(c.line() == "ERR is a directory");
    c.send("LIST hello.txt\n");
    CHECK(c.line() == "ERR not a directory");
    c.send("PUT x.txt 3\n");
    CHECK(c.line() == "ERR uploads are disabled");
    c.send("FETCH x\n");
    CHECK(c.line() == "ERR bad request");
    c.send("GET\n");
    CHECK(c.line() == "ERR bad request");
    c.send("QUIT\n");
    CHECK(c.line() == "OK bye");
    CHECK(c.closed_within(3s));
}

TEST_CASE("files: each reply line ends as its request line did") {
    Tree t;
    RunningServer rs(t.config());
    TcpClient c(rs.tcp("files"));
    c.send("LIST sub\r\n");
    const std::string list = "OK 2\r\nd 0 deeper\r\nf 6 inner.txt\r\n";
    CHECK(c.recv_exact(list.size()) == list);
    c.send("SIZE sub/inner.txt\n");
    CHECK(c.recv_exact(4) == "OK 6");
    CHECK(c.recv_exact(1) == "\n");
    c.send("NOPE\r\n");
    CHECK(c.recv_exact(17) == "ERR bad request\r\n");
}

TEST_CASE("files: traversal, escaping symlinks and special files are forbidden") {
    Tree t;
    for (bool fallback : {false, true}) {
        coserve::services::files_force_fallback(fallback);
        RunningServer rs(t.config());
        LineClient c(rs.tcp("files"));
        INFO((fallback ? "component-by-component fallback" : "openat2"));
        const char* attempts[] = {
            "GET ../canary.txt",   "GET a/../../canary.txt", "GET sub/../../canary.txt", "GET /etc/passwd",
            "GET etc_link/passwd", "GET escape",             "GET chain1",               "GET fifo",
            "SIZE ../canary.txt",  "SHA256 escape",          "LIST ..",                  "LIST etc_link",
            "LIST /",              "GET ../../../../etc/passwd",
        };
        for (const char* a : attempts) {
            c.send(std::string(a) + "\n");
            const auto reply = c.line();
            INFO(a);
            // "a/../.." does not exist, so it may also be "not found"; never the file.
            if (std::string_view(a).starts_with("GET a/")) CHECK((reply == "ERR forbidden" || reply == "ERR not found"));
            else CHECK(reply == "ERR forbidden");
            CHECK(reply.find("CANARY") == std::string::npos);
        }
        c.send(std::string("GET hello") + '\0' + ".txt\n");
        CHECK(c.line() == "ERR forbidden");
        c.send("GET sub/../hello.txt\n");  // ".." that stays inside root is fine
        CHECK(c.line() == "OK 12");
        CHECK(c.bytes(12) == "hello world\n");
    }
    coserve::services::files_force_fallback(false);
}

TEST_CASE("files: 20 clients download 64 MiB at once while a 21st never reads", "[e2e]") {
    Tree t;
    const std::string big = random_bytes(64u << 20, 64);
    write_file(t.root / "big.bin", big);
    const auto want = sha256_hex(big);
    ServerProcess server(t.config() + "idle_timeout = 0\n", {"ASAN_OPTIONS=quarantine_size_mb=8"});
    const auto ep = server.tcp("files");

    LineClient stalled(ep);
    stalled.send("GET big.bin\n");
    CHECK(stalled.line() == "OK 67108864");
    std::this_thread::sleep_for(300ms);
    const long rss_before = server.rss_kib();

    std::vector<std::thread> threads;
    std::vector<std::string> got(20);
    for (int i = 0; i < 20; ++i) {
        threads.emplace_back([&, i] {
            try {
                LineClient c(ep);
                c.send("GET big.bin\n");
                if (c.line() != "OK 67108864") return;
                std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
                EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
                std::size_t left = 64u << 20;
                const auto first = c.take_buffered();
                EVP_DigestUpdate(ctx.get(), first.data(), first.size());
                left -= first.size();
                while (left > 0) {
                    auto chunk = c.tcp().recv_some(30s, std::min<std::size_t>(left, 1 << 16));
                    if (chunk.empty()) return;
                    EVP_DigestUpdate(ctx.get(), chunk.data(), chunk.size());
                    left -= chunk.size();
                }
                unsigned char d[EVP_MAX_MD_SIZE];
                unsigned int len = 0;
                EVP_DigestFinal_ex(ctx.get(), d, &len);
                static constexpr char hex[] = "0123456789abcdef";
                for (unsigned k = 0; k < len; ++k) got[i] += {hex[d[k] >> 4], hex[d[k] & 15]};
            } catch (const std::exception& e) {
                got[i] = e.what();
            }
        });
    }
    for (auto& th : threads) th.join();
    const long rss_after = server.rss_kib();
    std::printf("files: 20 x 64 MiB downloads with a stalled reader: server RSS %ld KiB before, %ld KiB after\n",
                rss_before, rss_after);
    for (int i = 0; i < 20; ++i) {
        INFO("client " << i);
        CHECK(got[i] == want);
    }
    CHECK(rss_after - rss_before < 8 * 1024);  // sendfile: no user-space copy of the 1.3 GiB sent
    // The stalled client's GET is intact: once it reads, its bytes come in order.
    CHECK(stalled.bytes(4u << 20, 60s) == big.substr(0, 4u << 20));
}

TEST_CASE("files: PUT stores complete uploads only") {
    Tree t;
    RunningServer rs(t.config("allow_upload = true\nmax_upload = 1000000\n"));
    const auto upload = random_bytes(300000, 11);
    {
        LineClient c(rs.tcp("files"));
        c.send("PUT sub/new.bin 300000\n");
        CHECK(c.line() == "OK send");
        c.send(upload);
        CHECK(c.line() == "OK stored");
        CHECK(read_file(t.root / "sub" / "new.bin") == upload);
        // The request line and the data may come in one packet.
        c.send("PUT small.txt 5\nhello");
        CHECK(c.line() == "OK send");
        CHECK(c.line() == "OK stored");
        CHECK(read_file(t.root / "small.txt") == "hello");
        c.send("PUT big.bin 1000001\n");
        CHECK(c.line() == "ERR too large (max 1000000 bytes)");
        c.send("PUT ../outside.txt 1\n");
        CHECK(c.line() == "ERR forbidden");
        c.send("PUT escape 1\n");  // a symlink out of root is not written through
        CHECK(c.line() == "ERR forbidden");
        c.send("PUT sub 1\n");
        CHECK(c.line() == "ERR is a directory");
        c.send("PUT nodir/x 1\n");
        CHECK(c.line() == "ERR not found");
        c.send("GET sub/new.bin 299990\n");
        CHECK(c.line() == "OK 10");
        CHECK(c.bytes(10) == upload.substr(299990));
    }
    {
        // Cut off halfway: no file and no temporary file remain.
        LineClient c(rs.tcp("files"));
        c.send("PUT cut.bin 300000\n");
        CHECK(c.line() == "OK send");
        c.send(upload.substr(0, 150000));
    }
    std::this_thread::sleep_for(300ms);
    CHECK_FALSE(fs::exists(t.root / "cut.bin"));
    for (const auto& e : fs::directory_iterator(t.root)) CHECK(e.path().filename().string().find("upload") == std::string::npos);
    CHECK_FALSE(fs::exists(t.dir / "outside.txt"));
    CHECK(read_file(t.dir / "canary.txt") == t.canary);
}

TEST_CASE("files: serve_file through real nc") {
    Tree t;
    RunningServer rs("[once]\nservice = files\ntcp = 127.0.0.1:0\nserve_file = " + (t.root / "data.bin").string() + "\n");
    const auto out = t.dir / "copy.bin";
    const auto cmd = "timeout 20 nc -d 127.0.0.1 " + std::to_string(rs.tcp("once").port()) + " > " + out.string();
    REQUIRE(std::system(cmd.c_str()) == 0);
    CHECK(read_file(out) == t.binary);
}

TEST_CASE("files: serve_file to a client that sends first still delivers every byte") {
    // Closing with unread input sends a reset, which would throw away what is
    // still in the server's send queue (up to megabytes); the framework
    // drains the client's bytes before it closes.
    Tree t;
    const std::string big = random_bytes(16u << 20, 16);
    write_file(t.root / "big.bin", big);
    RunningServer rs("[once]\nservice = files\ntcp = 127.0.0.1:0\nserve_file = " + (t.root / "big.bin").string() + "\n");
    TcpClient c(rs.tcp("once"));
    c.send("GET / HTTP/1.0\r\n\r\n");
    const auto got = c.recv_all(60s);
    CHECK(got.size() == big.size());
    CHECK(got == big);
}

TEST_CASE("files: configuration errors") {
    CHECK_THROWS_WITH(coserve::load_config_text("[files]\ntcp = 127.0.0.1:0\nroot = /nonexistent/dir\n", "f.ini"),
                      "f.ini: [files] root: cannot open directory \"/nonexistent/dir\": No such file or directory");
    CHECK_THROWS_WITH(coserve::load_config_text("[f]\nservice = files\ntcp = 127.0.0.1:0\nserve_file = /nonexistent\n", "f.ini"),
                      Catch::StartsWith("f.ini: [f] serve_file: cannot read \"/nonexistent\""));
    CHECK_THROWS_WITH(coserve::load_config_text("[files]\nudp = 127.0.0.1:0\nroot = /tmp\n", "f.ini"),
                      "f.ini: [files] udp: the files service has no UDP side");
}
