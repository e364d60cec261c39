#include "daemon.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

namespace coserve::daemon {

namespace {

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

void write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

}  // namespace

int detach() {
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) fail("pipe");
    const pid_t first = ::fork();
    if (first < 0) fail("fork");
    if (first > 0) {
        // The original process: wait for the daemon's word.
        ::close(report[1]);
        std::string message;
        char buf[512];
        for (;;) {
            const ssize_t n = ::read(report[0], buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            message.append(buf, static_cast<std::size_t>(n));
        }
        int status = 0;
        ::waitpid(first, &status, 0);  // the intermediate child exits at once
        if (message == "started") std::_Exit(0);
        std::fprintf(stderr, "coserved: %s\n", message.empty() ? "the daemon exited during start-up" : message.c_str());
        std::_Exit(1);
    }
    ::close(report[0]);
    if (::setsid() < 0) std::_Exit(1);
    const pid_t second = ::fork();
    if (second < 0) std::_Exit(1);
    if (second > 0) std::_Exit(0);  // the daemon is no session leader: it can never get a terminal again
    if (::chdir("/") != 0) std::_Exit(1);
    ::umask(022);
    const int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(null, 2);
        if (null > 2) ::close(null);
    }
    return report[1];
}

void report_started(int fd) {
    if (fd < 0) return;
    write_all(fd, "started");
    ::close(fd);
}

void report_failed(int fd, std::string_view error) {
    if (fd < 0) return;
    write_all(fd, error);
    ::close(fd);
}

PidFile::PidFile(const std::string& path) : path_(path) {
    // Refuse if a live coserved holds the lock on the current pid file.
    const int existing = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (existing >= 0) {
        const bool locked = ::flock(existing, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
        char buf[32] = {};
        const ssize_t n = ::read(existing, buf, sizeof buf - 1);
        ::close(existing);
        std::string pid(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
        pid = pid.substr(0, pid.find('\n'));
        if (locked) throw std::runtime_error("another coserved is running (pid " + pid + ", pid file " + path + ")");
    }
    // Written in full to a temporary file, locked, then renamed into place.
    const std::string temp = path + ".tmp." + std::to_string(::getpid());
    fd_ = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot write pid file " + temp);
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) fail("cannot lock pid file " + temp);
    const std::string text = std::to_string(::getpid()) + "\n";
    write_all(fd_, text);
    if (::fsync(fd_) != 0 || ::rename(temp.c_str(), path.c_str()) != 0) {
        const int e = errno;
        ::unlink(temp.c_str());
        errno = e;
        fail("cannot write pid file " + path);
    }
}

PidFile::~PidFile() {
    if (fd_ < 0) return;
    // Remove it only if it is still ours (not replaced by another instance).
    struct stat mine{}, current{};
    if (::fstat(fd_, &mine) == 0 && ::stat(path_.c_str(), &current) == 0 && mine.st_ino == current.st_ino &&
        mine.st_dev == current.st_dev)
        ::unlink(path_.c_str());
    ::close(fd_);
}

int read_pid(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("cannot read pid file " + path);
    char buf[32] = {};
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    const int pid = n > 0 ? std::atoi(buf) : 0;
    if (pid <= 0) throw std::runtime_error("pid file " + path + " holds no pid");
    return pid;
}

void drop_privileges(const std::string& user, const std::string& group) {
    if (::geteuid() != 0) throw std::runtime_error("user = " + user + " needs coserved to start as root");
    errno = 0;
    const passwd* pw = ::getpwnam(user.c_str());
    if (!pw) throw std::runtime_error("unknown user " + user);
    gid_t gid = pw->pw_gid;
    const uid_t uid = pw->pw_uid;
    if (!group.empty()) {
        const struct group* gr = ::getgrnam(group.c_str());
        if (!gr) throw std::runtime_error("unknown group " + group);
        gid = gr->gr_gid;
    }
    if (::setgroups(1, &gid) != 0) fail("setgroups");
    if (::setgid(gid) != 0) fail("setgid");
    if (::setuid(uid) != 0) fail("setuid");
    if (uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0))
        throw std::runtime_error("dropped to " + user + " but could regain root: refusing to run");
}

}  // namespace coserve::daemon
