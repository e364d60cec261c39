// Internal: what coserved does to become a daemon: detach (--daemon), the
// pid file, dropping privileges. Called from main() only, before or right
// after the Server binds; none of it is thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace coserve::daemon {

// Forks twice, detaches from the terminal, chdir("/"), stdio to /dev/null.
// Returns only in the daemon, with a descriptor to report start-up on; the
// original process waits for that report and exits with 0 (started) or 1
// (printing the daemon's error).
int detach();
void report_started(int fd);
void report_failed(int fd, std::string_view error);

// The pid file, written atomically and locked for the life of the process:
// a second coserved with the same pid file is refused. Removed on destruction.
class PidFile {
public:
    PidFile() = default;
    explicit PidFile(const std::string& path);  // throws std::runtime_error with a one-line reason
    ~PidFile();
    PidFile(const PidFile&) = delete;
    PidFile& operator=(const PidFile&) = delete;

private:
    std::string path_;
    int fd_ = -1;
};

// The pid recorded in a pid file (for --reload), or throws std::runtime_error.
int read_pid(const std::string& path);

// Switches to `user` (and `group`, else the user's primary group) and checks
// that root cannot be regained. Throws std::runtime_error.
void drop_privileges(const std::string& user, const std::string& group);

}  // namespace coserve::daemon
