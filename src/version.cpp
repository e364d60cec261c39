#include <coserve/version.hpp>

namespace coserve {

const char* library_version() noexcept {
    return COSERVE_VERSION_STRING;
}

}  // namespace coserve
