// Loading service plugins (include/coserve/plugin.hpp describes the contract).
#pragma once

#include <coserve/service.hpp>

#include <string>

namespace coserve {

// The service type the plugin at `path` (absolute) provides. Loads it the
// first time; later calls for the same unchanged file return the same type.
// Throws std::runtime_error with one line saying why the file was refused.
// Thread-safe.
const ServiceType& load_plugin(const std::string& path);

}  // namespace coserve
