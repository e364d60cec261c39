#include "plugin.hpp"

#include <coserve/plugin.hpp>

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace coserve {
namespace {

struct Loaded {
    struct stat identity {};
    const ServiceType* type = nullptr;
};

std::mutex loaded_mutex;
std::map<std::string, Loaded> loaded;  // by real path; never unloaded

bool same_file(const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
           a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

[[noreturn]] void refuse(std::string_view why) {
    throw std::runtime_error(std::string(why));
}

// Refuses a file that cannot be read or does not begin like an ELF object.
// O_NONBLOCK: a FIFO swapped in after the stat() cannot block the loop.
void check_elf_header(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) refuse(std::string("cannot open: ") + std::strerror(errno));
    char magic[4] = {};
    const bool ok = ::read(fd, magic, 4) == 4 && std::memcmp(magic, "\x7f" "ELF", 4) == 0;
    ::close(fd);
    if (!ok) refuse("not a plugin: not a shared object (no ELF header)");
}

std::string boost_text(std::uint32_t v) {
    return std::to_string(v / 100000) + "." + std::to_string(v / 100 % 1000) + "." + std::to_string(v % 100);
}

// COSERVE_PLUGIN_ABI_FLAGS in words.
std::string abi_text(std::uint32_t flags) {
    std::string text = (flags & 1u) ? "io_uring sockets" : "epoll sockets";
    if (flags & 2u) text += " with libstdc++'s debug mode";
    if (flags & 4u) text += " with Asio's handler tracking";
    return text;
}

// Checks what the entry point returned; the message says what to rebuild.
const ServiceType& check(const coserve_plugin_descriptor* d) {
    if (!d) refuse("not a coserve plugin: its entry point returned no descriptor");
    if (d->magic != COSERVE_PLUGIN_MAGIC) refuse("not a coserve plugin: its descriptor has the wrong magic number");
    if (d->api_version != COSERVE_PLUGIN_API_VERSION)
        refuse("built for plugin API version " + std::to_string(d->api_version) + ", but this program (coserve " +
               COSERVE_VERSION_STRING + ") loads version " + std::to_string(COSERVE_PLUGIN_API_VERSION) +
               ": rebuild the plugin against coserve " + COSERVE_VERSION_STRING);
    if (d->boost_version != BOOST_VERSION)
        refuse("built with Boost " + boost_text(d->boost_version) + ", but this program uses Boost " +
               boost_text(BOOST_VERSION) + ": rebuild the plugin with the same Boost");
    if (d->abi_flags != COSERVE_PLUGIN_ABI_FLAGS)
        refuse("built for " + abi_text(d->abi_flags) + ", but this program uses " + abi_text(COSERVE_PLUGIN_ABI_FLAGS) +
               ": rebuild the plugin against the same coserve build");
    const ServiceType* t = d->type;
    if (!t || !d->name || !t->create || t->name.empty() || std::string_view(d->name) != t->name)
        refuse("its descriptor is malformed (no service type, no factory, or names that differ)");
    if (!t->tcp && !t->udp) refuse("its service type " + std::string(t->name) + " has neither a TCP nor a UDP side");
    for (char c : t->name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'))
            refuse("its service type name " + std::string(t->name) + " has characters other than A-Z a-z 0-9 _ -");
    if (find_service_type(t->name))
        refuse("it provides the service type " + std::string(t->name) +
               ", which this program has already (built in or registered)");
    return *t;
}

}  // namespace

Plugin load_plugin(const std::string& configured) {
    std::lock_guard lock(loaded_mutex);
    // Known by its real path, however the configuration spells it.
    std::unique_ptr<char, decltype(&std::free)> real(::realpath(configured.c_str(), nullptr), &std::free);
    if (!real) refuse(std::string("cannot open: ") + std::strerror(errno));
    const std::string path = real.get();
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) refuse(std::string("cannot open: ") + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) refuse("not a regular file");
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        refuse("the file is writable by its group or by others, so anyone could change the code this program runs "
               "(chmod go-w it)");
    if (st.st_uid != 0 && st.st_uid != ::geteuid())
        refuse("the file belongs to another user (uid " + std::to_string(st.st_uid) +
               "), who could change the code this program runs (it must belong to root or to this program's user)");
    if (auto it = loaded.find(path); it != loaded.end()) {
        if (!same_file(it->second.identity, st))
            refuse("the file changed since it was loaded, and a loaded plugin cannot be replaced: restart to load "
                   "the new build (or install it under a new file name)");
        return {it->second.type, path};
    }
    check_elf_header(path);
    ::dlerror();
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char* e = ::dlerror();
        refuse(std::string("cannot load it: ") + (e ? e : "dlopen failed"));
    }
    try {
        ::dlerror();
        void* entry = ::dlsym(handle, COSERVE_PLUGIN_ENTRY_NAME);
        if (!entry)
            refuse("not a coserve plugin: it has no " COSERVE_PLUGIN_ENTRY_NAME
                   " symbol (a plugin defines it with COSERVE_PLUGIN(type))");
        coserve_plugin_entry_fn fn;
        static_assert(sizeof fn == sizeof entry);
        std::memcpy(&fn, &entry, sizeof fn);
        const coserve_plugin_descriptor* descriptor = nullptr;
        try {
            descriptor = fn();
        } catch (...) {
            // Ended here, before the file is closed: its type may live in the plugin.
            refuse("its entry point threw an exception");
        }
        const ServiceType& type = check(descriptor);
        loaded.emplace(path, Loaded{st, &type});
        return {&type, path};
    } catch (...) {
        ::dlclose(handle);  // nothing of it was used
        throw;
    }
}

}  // namespace coserve
