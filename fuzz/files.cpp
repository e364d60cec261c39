// files: request lines parse without surprises, and no path a client can
// send opens anything outside the root, with openat2 or with the
// component-by-component fallback. The root holds files, a subdirectory and
// symlinks pointing inside, outside and to an absolute path.
#include "check.hpp"

#include "protocols.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

struct Tree {
    std::string root;
    int fd = -1;
    Tree() {
        char tmpl[] = "/tmp/coserve-fuzz-files-XXXXXX";
        const std::string top = ::mkdtemp(tmpl);
        char real[PATH_MAX];
        FUZZ_CHECK(::realpath(top.c_str(), real) != nullptr);  // /proc shows resolved paths
        root = std::string(real) + "/root";
        bool ok = ::mkdir(root.c_str(), 0755) == 0 && ::mkdir((root + "/sub").c_str(), 0755) == 0 &&
                  ::mkdir((std::string(real) + "/outside").c_str(), 0755) == 0;
        for (const auto& f : {root + "/a.txt", root + "/sub/b.txt", std::string(real) + "/outside/secret"}) {
            const int w = ::open(f.c_str(), O_WRONLY | O_CREAT, 0644);
            ok = ok && w >= 0;
            if (w >= 0) ::close(w);
        }
        ok = ok && ::symlink("../outside", (root + "/out").c_str()) == 0 &&
             ::symlink("sub", (root + "/in").c_str()) == 0 && ::symlink("/etc", (root + "/abs").c_str()) == 0 &&
             ::symlink("../../outside/secret", (root + "/sub/up").c_str()) == 0;
        FUZZ_CHECK(ok);
        fd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
    }
};

void check_beneath(const Tree& t, std::string_view path) {
    for (bool fallback : {false, true}) {
        coserve::services::files_force_fallback(fallback);
        const int fd = coserve::services::files_open_beneath(t.fd, path, O_PATH);
        if (fd < 0) continue;
        char where[PATH_MAX + 1];
        const std::string proc = "/proc/self/fd/" + std::to_string(fd);
        const ssize_t n = ::readlink(proc.c_str(), where, PATH_MAX);
        ::close(fd);
        FUZZ_CHECK(n > 0);
        const std::string_view got(where, static_cast<std::size_t>(n));
        FUZZ_CHECK(got == t.root || (got.starts_with(t.root) && got[t.root.size()] == '/'));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace coserve::services;
    static const Tree tree;
    const std::string_view line(reinterpret_cast<const char*>(data), size);
    const FilesRequest r = parse_files_request(line);
    if (r.kind == FilesRequest::Kind::bad || r.kind == FilesRequest::Kind::quit) {
        FUZZ_CHECK(r.path.empty() && r.number.empty());
        return 0;
    }
    FUZZ_CHECK(!r.path.empty() && r.path.find_first_of(" \t") == std::string_view::npos);
    if (r.path.find('\0') == std::string_view::npos) check_beneath(tree, r.path);
    std::uint64_t n = 0;
    if (files_parse_u64(r.number, n)) FUZZ_CHECK(r.number.find_first_not_of("0123456789") == std::string_view::npos);
    std::string_view parent, name;
    if (r.kind == FilesRequest::Kind::put && files_split_upload_path(r.path, parent, name)) {
        FUZZ_CHECK(!name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos);
        FUZZ_CHECK(std::string(parent) + "/" + std::string(name) == r.path || (parent == "." && name == r.path));
    }
    return 0;
}
