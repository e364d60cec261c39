// Loading service plugins (include/coserve/plugin.hpp describes the contract).
#pragma once

#include <coserve/service.hpp>

#include <string>

namespace coserve {

// The service type the plugin at `path` provides. Loads it the first time;
// later calls for the same unchanged file (by its real path) return the same
// type; a file changed since is refused.
// Throws std::runtime_error with one line saying why the file was refused.
// Thread-safe.
struct Plugin {
    const ServiceType* type;
    std::string file;  // its real path (symbolic links resolved)
};
Plugin load_plugin(const std::string& path);

}  // namespace coserve
