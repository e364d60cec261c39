// files: the parts of the protocol that need no socket (request lines, upload
// paths, resolving a path beneath the root), for unit tests and fuzzing.
#include "protocols.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <string>
#include <vector>

namespace coserve::services {

namespace {

std::atomic<bool> force_fallback{false};

// The directories opened on the way down, closed when the walk ends.
class DirStack {
public:
    ~DirStack() {
        for (int fd : fds_) ::close(fd);
    }
    bool empty() const { return fds_.empty(); }
    int top() const { return fds_.back(); }
    void push(int fd) { fds_.push_back(fd); }
    void pop() {
        ::close(fds_.back());
        fds_.pop_back();
    }

private:
    std::vector<int> fds_;
};

// Component by component, for kernels without openat2: every component is
// opened with O_NOFOLLOW, so any symlink is refused, and ".." may not climb
// above the starting directory.
int open_fallback(int base, std::string_view path, int flags) {
    std::vector<std::string> parts;
    for (std::size_t i = 0; i <= path.size();) {
        auto slash = path.find('/', i);
        if (slash == std::string_view::npos) slash = path.size();
        auto part = path.substr(i, slash - i);
        if (!part.empty() && part != ".") parts.emplace_back(part);
        i = slash + 1;
    }
    if (parts.empty()) parts.emplace_back(".");
    DirStack stack;
    int current = base;
    for (std::size_t k = 0; k < parts.size(); ++k) {
        const bool last = k + 1 == parts.size();
        if (parts[k] == "..") {
            if (stack.empty()) {
                errno = EXDEV;
                return -1;
            }
            stack.pop();
            current = stack.empty() ? base : stack.top();
            if (last) return ::openat(current, ".", flags | O_CLOEXEC);
            continue;
        }
        const int f = last ? (flags | O_NOFOLLOW | O_CLOEXEC) : (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        const int fd = ::openat(current, parts[k].c_str(), f);
        if (fd < 0) {
            if (errno == ELOOP || (errno == ENOTDIR && !last)) {
                struct stat st{};
                if (::fstatat(current, parts[k].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                    errno = ELOOP;  // a symlink: refused here
            }
            return -1;
        }
        if (last) {
            struct stat st{};
            if ((flags & O_PATH) && ::fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
                ::close(fd);
                errno = ELOOP;
                return -1;
            }
            return fd;
        }
        stack.push(fd);
        current = fd;
    }
    errno = ENOENT;
    return -1;
}

}  // namespace

void files_force_fallback(bool on) {
    force_fallback = on;
}

int files_open_beneath(int base, std::string_view path, int flags) {
    if (path.empty()) path = ".";
    if (!force_fallback) {
        open_how how{};
        how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        const std::string p(path);
        const long fd = ::syscall(SYS_openat2, base, p.c_str(), &how, sizeof how);
        if (fd >= 0 || errno != ENOSYS) return static_cast<int>(fd);
    }
    return open_fallback(base, path, flags);
}

FilesRequest parse_files_request(std::string_view line) {
    std::vector<std::string_view> w;
    for (std::size_t i = 0; i < line.size() && w.size() < 4;) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        if (i > start) w.push_back(line.substr(start, i - start));
    }
    using K = FilesRequest::Kind;
    FilesRequest r;
    if (w.empty()) return r;
    const std::string_view cmd = w[0];
    if (cmd == "LIST" && w.size() <= 2) r = {K::list, w.size() == 2 ? w[1] : ".", {}};
    else if (cmd == "GET" && (w.size() == 2 || w.size() == 3)) r = {K::get, w[1], w.size() == 3 ? w[2] : "0"};
    else if (cmd == "SIZE" && w.size() == 2) r = {K::size, w[1], {}};
    else if (cmd == "SHA256" && w.size() == 2) r = {K::sha256, w[1], {}};
    else if (cmd == "PUT" && w.size() == 3) r = {K::put, w[1], w[2]};
    else if (cmd == "QUIT" && w.size() == 1) r = {K::quit, {}, {}};
    return r;
}

bool files_parse_u64(std::string_view s, std::uint64_t& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && ec == std::errc() && p == s.data() + s.size();
}

bool files_split_upload_path(std::string_view path, std::string_view& parent, std::string_view& name) {
    if (path.empty() || path.starts_with('/') || path.ends_with('/') || path.find('\0') != std::string_view::npos)
        return false;
    const auto slash = path.rfind('/');
    parent = slash == std::string_view::npos ? std::string_view(".") : path.substr(0, slash);
    name = slash == std::string_view::npos ? path : path.substr(slash + 1);
    return name != "." && name != "..";
}

}  // namespace coserve::services
