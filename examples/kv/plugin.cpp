// kv as a plugin for the stock coserved:  [kv]  plugin = kv.so
#include "kv.hpp"

#include <coserve/plugin.hpp>

COSERVE_PLUGIN(kv::service)
