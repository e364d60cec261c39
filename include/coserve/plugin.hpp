// Service plugins: a service type in a shared object, loaded at run time by
// coserved (or any program using libcoserve) from a section's `plugin` key:
//
//     [kv]
//     plugin = /usr/lib/coserve/plugins/kv.so   ; relative: to the config file's folder
//     tcp = 127.0.0.1:7400
//
// A plugin is the service's source files plus one line naming its type:
//
//     COSERVE_PLUGIN(kv::service)
//
// built as a MODULE library linked to coserve::plugin (headers only), not to
// coserve::coserve: the framework's code comes from the program that loads the
// plugin, so the process holds one copy of it and of Asio's per-thread state.
// coserved exports its symbols for this; a program of your own that links
// libcoserve.so can load plugins as it is (docs/writing-a-service.md).
//
// Loading (src/plugin.cpp): the file is opened once per process with
// dlopen(RTLD_NOW | RTLD_LOCAL) and never closed, since its code may run until
// the process ends; a reload that names the same file reuses it, and refuses
// it if the file changed since (restart, or install the new build under a new
// name). Before anything of the plugin is used, the host checks the
// descriptor: magic, plugin API version, Boost version and ABI flags must be
// its own. Every refusal is a ConfigError naming the file and the reason:
// exit status 2 at start, a logged refusal (the running configuration stays)
// at reload.
#pragma once

#include <coserve/service.hpp>
#include <coserve/version.hpp>

#include <boost/version.hpp>

#include <cstdint>

// Bumped whenever the binary layout of anything in include/coserve/ changes
// (a class's members or virtual functions, ServiceType, this descriptor after
// `api_version`). A host loads only plugins built for its own number.
#define COSERVE_PLUGIN_API_VERSION 6u
#define COSERVE_PLUGIN_MAGIC 0x43535256u  // "CSRV"

// Build options that change the layout of Asio's or the standard library's
// objects: io_uring sockets (1), libstdc++'s debug mode (2), Asio's handler
// tracking (4).
#if defined(BOOST_ASIO_HAS_IO_URING)
#define COSERVE_PLUGIN_ABI_URING 1u
#else
#define COSERVE_PLUGIN_ABI_URING 0u
#endif
#if defined(_GLIBCXX_DEBUG)
#define COSERVE_PLUGIN_ABI_STL_DEBUG 2u
#else
#define COSERVE_PLUGIN_ABI_STL_DEBUG 0u
#endif
#if defined(BOOST_ASIO_ENABLE_HANDLER_TRACKING)
#define COSERVE_PLUGIN_ABI_TRACKING 4u
#else
#define COSERVE_PLUGIN_ABI_TRACKING 0u
#endif
#define COSERVE_PLUGIN_ABI_FLAGS (COSERVE_PLUGIN_ABI_URING | COSERVE_PLUGIN_ABI_STL_DEBUG | COSERVE_PLUGIN_ABI_TRACKING)

extern "C" {

// What the entry point returns. `magic` and `api_version` come first in every
// version, so that any host can tell a plugin it cannot load.
struct coserve_plugin_descriptor {
    std::uint32_t magic;            // COSERVE_PLUGIN_MAGIC
    std::uint32_t api_version;      // COSERVE_PLUGIN_API_VERSION the plugin was built with
    std::uint32_t boost_version;    // BOOST_VERSION it was built with
    std::uint32_t abi_flags;        // COSERVE_PLUGIN_ABI_FLAGS
    const char* coserve_version;    // COSERVE_VERSION_STRING of the headers it was built against
    const char* name;               // the service type's name, as in type->name
    const coserve::ServiceType* type;  // its factory; static storage in the plugin
};

// The one symbol a host looks up. Must not throw.
typedef const coserve_plugin_descriptor* (*coserve_plugin_entry_fn)();
}

#define COSERVE_PLUGIN_ENTRY_NAME "coserve_plugin_entry"

// Defines the entry point for `service_type` (a coserve::ServiceType with
// static storage duration). Use once per plugin, at namespace scope.
#define COSERVE_PLUGIN(service_type)                                                                            \
    extern "C" __attribute__((visibility("default"))) const coserve_plugin_descriptor* coserve_plugin_entry() { \
        static const coserve_plugin_descriptor descriptor{                                                     \
            COSERVE_PLUGIN_MAGIC,     COSERVE_PLUGIN_API_VERSION, BOOST_VERSION,                               \
            COSERVE_PLUGIN_ABI_FLAGS, COSERVE_VERSION_STRING,     (service_type).name.data(),                  \
            &(service_type)};                                                                                  \
        return &descriptor;                                                                                    \
    }
