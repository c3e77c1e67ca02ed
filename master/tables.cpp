// Compiling stale lookup tables at start and reload.  See tables.hpp.
#include "master/tables.hpp"

#include <sys/stat.h>

#include "lib/log/log.hpp"
#include "lib/tables/aliases.hpp"
#include "lib/tables/compiled_table.hpp"
#include "lib/tables/domain_map.hpp"
#include "lib/tables/users.hpp"

namespace tern::master {
namespace {

// Missing or older than its source.  The exact check (mtime in ns, size,
// inode) is lib/tables' job when the table is read; this only decides
// whether compiling is worth doing now.
bool needs_compiling(const std::string& source) {
    struct stat src, out;
    if (stat(source.c_str(), &src) != 0) return false;  // no such table configured
    std::string compiled = tables::compiled_path_for(source);
    if (stat(compiled.c_str(), &out) != 0) return true;
    return out.st_mtim.tv_sec < src.st_mtim.tv_sec ||
           (out.st_mtim.tv_sec == src.st_mtim.tv_sec && out.st_mtim.tv_nsec < src.st_mtim.tv_nsec);
}

void compile_one(const char* key, const std::string& path, Status (*compile)(const std::string&)) {
    if (path.empty() || !needs_compiling(path)) return;
    if (auto st = compile(path); !st) {
        log::warning("%s %s: cannot compile: %s", key, path.c_str(), st.message().c_str());
        return;
    }
    log::info("%s %s: compiled", key, path.c_str());
}

}  // namespace

void compile_stale_tables(const config::Config& config) {
    compile_one("alias_maps", config.get("alias_maps"), tables::compile_aliases);
    compile_one("virtual_mailbox_maps", config.get("virtual_mailbox_maps"), tables::compile_users);
    // Read by smtp-client, qmgr and smtpd, none of which can write /etc/tern.
    compile_one("transport_maps", config.get("transport_maps"), tables::compile_domain_map);
    compile_one("smtp_tls_policy_maps", config.get("smtp_tls_policy_maps"), tables::compile_domain_map);
}

}  // namespace tern::master
