// files: LIST, GET (resumable, zero-copy sendfile), SIZE, SHA256, PUT, QUIT
// over plain lines, confined beneath one root directory by openat2(2).
#include "protocols.hpp"

#include <coserve/connection.hpp>
#include <coserve/lines.hpp>
#include <coserve/service.hpp>

#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>

#include <openssl/evp.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

namespace coserve::services {

namespace {

namespace asio = boost::asio;

// An owned file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        reset();
        fd_ = std::exchange(o.fd_, -1);
        return *this;
    }
    ~Fd() { reset(); }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }

private:
    int fd_ = -1;
};

enum class Found { file, directory, other };

// Outcome of resolving a request path: an open fd or the error line to send.
struct Opened {
    Fd fd;
    struct stat st{};
    const char* error = nullptr;
    Found kind() const {
        return S_ISREG(st.st_mode) ? Found::file : S_ISDIR(st.st_mode) ? Found::directory : Found::other;
    }
};

const char* error_for(int err) {
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return "ERR not found";
    default:  // EXDEV, ELOOP, EACCES, EPERM, ...: it would leave root or may not be read
        return "ERR forbidden";
    }
}

// Resolves a client's path beneath root: O_PATH first (no side effects of
// opening a device or FIFO), then, for regular files and directories only,
// the real open. The size a client is told is fstat() of that real open.
Opened resolve(int root, std::string_view path, int open_flags) {
    Opened r;
    if (path.starts_with('/') || path.find('\0') != std::string_view::npos) {
        r.error = "ERR forbidden";
        return r;
    }
    Fd probe(files_open_beneath(root, path, O_PATH));
    if (!probe) {
        r.error = error_for(errno);
        return r;
    }
    if (::fstat(probe.get(), &r.st) != 0 || (!S_ISREG(r.st.st_mode) && !S_ISDIR(r.st.st_mode))) {
        r.error = "ERR forbidden";  // devices, FIFOs, sockets
        return r;
    }
    r.fd = Fd(files_open_beneath(root, path, open_flags | O_NONBLOCK | O_NOCTTY));
    if (!r.fd || ::fstat(r.fd.get(), &r.st) != 0) {
        r.error = error_for(errno);
        r.fd.reset();
        return r;
    }
    if (!S_ISREG(r.st.st_mode) && !S_ISDIR(r.st.st_mode)) {
        r.error = "ERR forbidden";  // swapped since the probe
        r.fd.reset();
    }
    return r;
}

struct FilesOptions {
    Fd root;
    std::string serve_file;
    bool allow_upload = false;
    std::uint64_t max_upload = 100u << 20;
};

class Files final : public Service {
public:
    explicit Files(FilesOptions o) : o_(std::move(o)) {}

    void metrics(MetricsWriter& w) const override {
        w.add("files_bytes_sent_total", "counter", "File bytes sent with sendfile.", static_cast<double>(sent_.load()));
        w.add("files_uploads_total", "counter", "Uploads stored.", static_cast<double>(stored_.load()));
    }

    asio::awaitable<void> serve(Connection& c) override {
        if (!o_.serve_file.empty()) {
            co_await send_whole_file(c);
            co_return;
        }
        LineReader lines(c, c.options().max_line, Duration::zero(), /*telnet=*/false);
        const std::string too_long = line_too_long_reply(c.options().max_line);
        for (;;) {
            Line line = co_await lines.next();
            if (line.kind == Line::Kind::end) co_return;
            if (line.kind == Line::Kind::too_long) {
                co_await c.write(asio::buffer(too_long));
                continue;
            }
            // A partial line (at the client's half-close) is answered with LF.
            const std::string eol = line.ending.empty() ? "\n" : std::string(line.ending);
            const FilesRequest r = parse_files_request(line.text);
            switch (r.kind) {
            case FilesRequest::Kind::list: co_await list(c, eol, r.path); break;
            case FilesRequest::Kind::get: co_await get(c, eol, r.path, r.number); break;
            case FilesRequest::Kind::size: co_await size(c, eol, r.path); break;
            case FilesRequest::Kind::sha256: co_await sha256(c, eol, r.path); break;
            case FilesRequest::Kind::put:
                if (!co_await put(c, eol, lines, r.path, r.number)) co_return;
                break;
            case FilesRequest::Kind::quit:
                co_await reply(c, eol, "OK bye");
                c.shutdown_send();
                co_return;
            case FilesRequest::Kind::bad: co_await reply(c, eol, "ERR bad request"); break;
            }
        }
    }

private:
    // A reply line ends as the request line did (LF or CRLF).
    static asio::awaitable<void> reply(Connection& c, std::string_view eol, std::string_view line) {
        const std::array<asio::const_buffer, 2> out{asio::buffer(line.data(), line.size()), asio::buffer(eol.data(), eol.size())};
        co_await c.write(out);
    }

    // sendfile(2), paced by the client's reading (Connection::send_file).
    asio::awaitable<void> send_file(Connection& c, int file, std::uint64_t offset, std::uint64_t count) {
        const std::uint64_t before = c.bytes_out();
        try {
            co_await c.send_file(file, offset, count);
        } catch (...) {
            sent_.fetch_add(c.bytes_out() - before, std::memory_order_relaxed);
            throw;
        }
        sent_.fetch_add(c.bytes_out() - before, std::memory_order_relaxed);
    }

    asio::awaitable<void> send_whole_file(Connection& c) {
        Fd f(::open(o_.serve_file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
        struct stat st{};
        if (!f || ::fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
            c.log(Severity::error) << "serve_file " << o_.serve_file << ": cannot read: " << std::strerror(errno);
            co_return;
        }
        co_await send_file(c, f.get(), 0, static_cast<std::uint64_t>(st.st_size));
        c.shutdown_send();
    }

    asio::awaitable<void> list(Connection& c, std::string_view eol, std::string_view path) {
        Opened dir = resolve(o_.root.get(), path, O_RDONLY);
        if (dir.error) co_return co_await reply(c, eol, dir.error);
        if (dir.kind() != Found::directory) co_return co_await reply(c, eol, "ERR not a directory");
        struct Entry {
            std::string name;
            char kind;
            std::uint64_t size;
        };
        std::vector<Entry> entries;
        DIR* d = ::fdopendir(::dup(dir.fd.get()));
        if (!d) co_return co_await reply(c, eol, "ERR forbidden");
        while (dirent* e = ::readdir(d)) {
            std::string_view name = e->d_name;
            if (name == "." || name == ".." || name.find_first_of("\r\n") != std::string_view::npos) continue;
            // Symlinks count only when they resolve beneath this directory.
            Fd probe(files_open_beneath(dir.fd.get(), name, O_PATH));
            struct stat st{};
            if (!probe || ::fstat(probe.get(), &st) != 0) continue;
            if (S_ISREG(st.st_mode)) entries.push_back({std::string(name), 'f', static_cast<std::uint64_t>(st.st_size)});
            else if (S_ISDIR(st.st_mode)) entries.push_back({std::string(name), 'd', 0});
        }
        ::closedir(d);
        std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
        std::string out = "OK " + std::to_string(entries.size());
        out.append(eol);
        for (const auto& e : entries) out.append(1, e.kind).append(" ").append(std::to_string(e.size)).append(" ").append(e.name).append(eol);
        co_await c.write(asio::buffer(out));
    }

    // A regular file for GET, SIZE, SHA256, or the error to send.
    Opened regular(std::string_view path) {
        Opened f = resolve(o_.root.get(), path, O_RDONLY);
        if (!f.error && f.kind() == Found::directory) {
            f.error = "ERR is a directory";
            f.fd.reset();
        }
        return f;
    }

    asio::awaitable<void> get(Connection& c, std::string_view eol, std::string_view path, std::string_view offset_text) {
        Opened f = regular(path);
        if (f.error) co_return co_await reply(c, eol, f.error);
        const auto size = static_cast<std::uint64_t>(f.st.st_size);
        std::uint64_t offset = 0;
        if (!files_parse_u64(offset_text, offset) || offset > size) co_return co_await reply(c, eol, "ERR bad offset");
        co_await reply(c, eol, "OK " + std::to_string(size - offset));
        co_await send_file(c, f.fd.get(), offset, size - offset);
    }

    asio::awaitable<void> size(Connection& c, std::string_view eol, std::string_view path) {
        Opened f = regular(path);
        if (f.error) co_return co_await reply(c, eol, f.error);
        co_await reply(c, eol, "OK " + std::to_string(f.st.st_size));
    }

    asio::awaitable<void> sha256(Connection& c, std::string_view eol, std::string_view path) {
        Opened f = regular(path);
        if (f.error) co_return co_await reply(c, eol, f.error);
        std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
        if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) throw std::runtime_error("EVP_DigestInit_ex");
        std::vector<unsigned char> buf(1 << 18);
        off_t off = 0;
        for (;;) {
            const ssize_t n = ::pread(f.fd.get(), buf.data(), buf.size(), off);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw boost::system::system_error(errno, boost::system::system_category(), "pread");
            if (n == 0) break;
            EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(n));
            off += n;
            co_await c.busy_turn();  // one chunk per turn: others go on, and hashing a huge file is not idleness
        }
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        EVP_DigestFinal_ex(ctx.get(), digest, &len);
        static constexpr char hex[] = "0123456789abcdef";
        std::string text = "OK ";
        for (unsigned i = 0; i < len; ++i) text.append(1, hex[digest[i] >> 4]).append(1, hex[digest[i] & 15]);
        co_await reply(c, eol, text);
    }

    // Returns false when the connection must end (the client vanished mid-upload).
    // PUT: checked, then received into a temporary file beside the target,
    // which is renamed into place only when complete. False when the client
    // left mid-upload (nothing is stored).
    asio::awaitable<bool> put(Connection& c, std::string_view eol, LineReader& lines, std::string_view path, std::string_view size_text) {
        std::uint64_t size = 0;
        Upload up;
        if (const auto error = check_upload(path, size_text, size, up); !error.empty()) {
            co_await reply(c, eol, error);
            co_return true;
        }
        if (const auto error = up.open(); !error.empty()) {
            co_await reply(c, eol, error);
            co_return true;
        }
        co_await reply(c, eol, "OK send");
        const auto received = co_await receive(c, lines, up.out.get(), size);
        if (!received) co_return false;  // the client left early: Upload removes the temporary file
        std::string error = *received;
        if (error.empty()) error = up.commit();
        if (!error.empty()) {
            co_await reply(c, eol, error);
            co_return true;
        }
        ++stored_;
        co_await reply(c, eol, "OK stored");
        co_return true;
    }

    // Where an upload goes: the target's directory and name, and its
    // temporary file (anonymous, O_TMPFILE: invisible and gone even if the
    // daemon dies mid-upload; or, where the file system lacks it, a named
    // one beside the target, removed unless committed).
    struct Upload {
        Fd dir;
        std::string name, temp;
        Fd out;
        bool named = false;  // `temp` exists in `dir` and must go unless renamed

        std::string open() {
            thread_local std::mt19937_64 rng{std::random_device{}()};
            const std::string head = name.substr(0, 200), random = std::to_string(rng());
            temp = "." + head + ".upload-" + random;
            out = Fd(::openat(dir.get(), ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644));
            if (out) return {};
            out = Fd(::openat(dir.get(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644));
            if (!out) return std::string("ERR cannot store: ") + std::strerror(errno);
            named = true;
            return {};
        }

        // fsync, a name for an anonymous file, the rename: "" or the error reply.
        std::string commit() {
            if (::fsync(out.get()) != 0) return std::string("ERR cannot store: ") + std::strerror(errno);
            if (!named) {  // give it a name: directly where possible, else through /proc
                const std::string proc = "/proc/self/fd/" + std::to_string(out.get());
                if (::linkat(out.get(), "", dir.get(), temp.c_str(), AT_EMPTY_PATH) != 0 &&
                    ::linkat(AT_FDCWD, proc.c_str(), dir.get(), temp.c_str(), AT_SYMLINK_FOLLOW) != 0)
                    return std::string("ERR cannot store: ") + std::strerror(errno);
                named = true;
            }
            out.reset();
            if (::renameat(dir.get(), temp.c_str(), dir.get(), name.c_str()) != 0)
                return std::string("ERR cannot store: ") + std::strerror(errno);
            named = false;
            ::fsync(dir.get());  // the rename itself is durable
            return {};
        }

        ~Upload() {
            if (named) ::unlinkat(dir.get(), temp.c_str(), 0);
        }
    };

    // "" and `up` filled in, or the error reply.
    std::string check_upload(std::string_view path, std::string_view size_text, std::uint64_t& size, Upload& up) const {
        if (!o_.allow_upload) return "ERR uploads are disabled";
        if (!files_parse_u64(size_text, size)) return "ERR bad request";
        if (size > o_.max_upload) return "ERR too large (max " + std::to_string(o_.max_upload) + " bytes)";
        std::string_view parent, leaf;
        if (!files_split_upload_path(path, parent, leaf)) return "ERR forbidden";
        Opened dir = resolve(o_.root.get(), parent, O_RDONLY | O_DIRECTORY);
        if (dir.error) return dir.error;
        if (dir.kind() != Found::directory) return "ERR not found";
        up.name = std::string(leaf);
        struct stat st{};
        if (::fstatat(dir.fd.get(), up.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISDIR(st.st_mode)) return "ERR is a directory";
            if (!S_ISREG(st.st_mode)) return "ERR forbidden";  // symlinks included
        }
        up.dir = std::move(dir.fd);
        return {};
    }

    // Exactly `size` bytes of the upload (those the line reader holds first)
    // into `out`: "" or the error reply after reading them all; nullopt when
    // the client left first.
    static asio::awaitable<std::optional<std::string>> receive(Connection& c, LineReader& lines, int out, std::uint64_t size) {
        std::vector<char> buf(1 << 16);
        int write_errno = 0;
        for (std::uint64_t left = size; left > 0;) {
            std::size_t n = lines.take_raw(std::span<char>(buf.data(), std::min<std::uint64_t>(left, buf.size())));
            if (n == 0) n = co_await c.read_some(asio::buffer(buf.data(), std::min<std::uint64_t>(left, buf.size())));
            if (n == 0) co_return std::nullopt;
            left -= n;
            for (std::size_t done = 0; done < n && write_errno == 0;) {
                const ssize_t w = ::write(out, buf.data() + done, n - done);
                if (w < 0 && errno == EINTR) continue;
                if (w < 0) write_errno = errno;
                else done += static_cast<std::size_t>(w);
            }
        }
        if (write_errno != 0) co_return std::string("ERR cannot store: ") + std::strerror(write_errno);
        co_return std::string();
    }

    FilesOptions o_;
    std::atomic<std::uint64_t> sent_{0};
    std::atomic<std::uint64_t> stored_{0};
};

std::unique_ptr<Service> create(Section& s, const InstanceOptions&) {
    FilesOptions o;
    const std::string root = s.path("root", "files");  // relative: to the config file's folder
    o.serve_file = s.path("serve_file", "");
    o.allow_upload = s.boolean("allow_upload", false);
    o.max_upload = static_cast<std::uint64_t>(s.integer("max_upload", 100ll << 20, 0, 1ll << 50));
    if (!o.serve_file.empty()) {
        struct stat st{};
        if (::stat(o.serve_file.c_str(), &st) != 0) s.fail("serve_file", "cannot read \"" + o.serve_file + "\": " + std::strerror(errno));
        if (!S_ISREG(st.st_mode)) s.fail("serve_file", "\"" + o.serve_file + "\" is not a regular file");
    } else {
        o.root = Fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!o.root) s.fail("root", "cannot open directory \"" + root + "\": " + std::strerror(errno));
    }
    return std::make_unique<Files>(std::move(o));
}

}  // namespace

extern const ServiceType files_service{.name = "files", .create = create, .tcp = true, .udp = false};

}  // namespace coserve::services
