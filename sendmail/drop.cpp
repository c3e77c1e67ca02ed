// Signal-safe maildrop writing (see drop.hpp).
#include "sendmail/drop.hpp"

#include <pwd.h>
#include <signal.h>
#include <sysexits.h>
#include <unistd.h>

#include <cstring>

namespace tern::sendmail {

namespace {

// The one piece of global state: what a signal handler must unlink.
char g_temp_path[4096];
volatile sig_atomic_t g_have_temp = 0;

void on_fatal_signal(int) {
    if (g_have_temp) ::unlink(g_temp_path);
    ::_exit(EX_TEMPFAIL);
}

class BlockSignals {
public:
    BlockSignals() {
        sigset_t set;
        sigemptyset(&set);
        for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGXFSZ}) sigaddset(&set, s);
        sigprocmask(SIG_BLOCK, &set, &old_);
    }
    ~BlockSignals() { sigprocmask(SIG_SETMASK, &old_, nullptr); }

private:
    sigset_t old_;
};

}  // namespace

void install_signal_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGXFSZ}) sigaction(s, &sa, nullptr);
}

Result<Drop> Drop::begin(const config::Config& config, const maildrop::Envelope& envelope) {
    BlockSignals blocked;  // no signal between creating the file and registering its name
    auto writer = maildrop::Writer::create(config.get("queue_directory") + "/maildrop", envelope);
    if (!writer) return writer.error();
    Drop d;
    d.writer_ = std::move(*writer);
    d.limit_ = config.get_size("message_size_limit");
    const std::string& path = d.writer_.temp_path();
    if (path.size() < sizeof g_temp_path) {
        std::memcpy(g_temp_path, path.c_str(), path.size() + 1);
        g_have_temp = 1;
        d.registered_ = true;
    }
    return d;
}

Drop::Drop(Drop&& o) noexcept
    : writer_(std::move(o.writer_)), limit_(o.limit_), size_(o.size_), too_large_(o.too_large_),
      registered_(o.registered_) {
    o.registered_ = false;
}

Drop::~Drop() {
    BlockSignals blocked;
    if (registered_) g_have_temp = 0;
    // writer_'s destructor removes an uncommitted file.
}

Status Drop::write(std::string_view bytes) {
    size_ += bytes.size();
    if (limit_ > 0 && size_ > limit_) {
        too_large_ = true;
        return make_error("message too large (message_size_limit is " + std::to_string(limit_) + " bytes)");
    }
    return writer_.write(bytes);
}

Result<std::string> Drop::commit() {
    BlockSignals blocked;
    auto name = writer_.commit();
    if (name && registered_) {
        g_have_temp = 0;
        registered_ = false;
    }
    return name;
}

Result<std::string> user_address(const config::Config& config, std::string* fullname) {
    uid_t uid = ::getuid();
    struct passwd pw {};
    struct passwd* found = nullptr;
    char buf[16384];
    if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) != 0 || !found)
        return make_error("cannot find a user name for uid " + std::to_string(uid));
    if (fullname && pw.pw_gecos) {
        std::string gecos = pw.pw_gecos;
        *fullname = gecos.substr(0, gecos.find(','));
    }
    return qualify(pw.pw_name, config);
}

std::string qualify(const std::string& address, const config::Config& config) {
    if (address.empty() || address.find('@') != std::string::npos) return address;
    return address + "@" + config.get("myorigin");
}

}  // namespace tern::sendmail
