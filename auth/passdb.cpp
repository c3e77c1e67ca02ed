// Password databases: see passdb.hpp.
#include "auth/passdb.hpp"

#include <pwd.h>
#include <shadow.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "lib/auth/password.hpp"
#include "lib/log/log.hpp"
#include "lib/maildir/maildir.hpp"
#include "lib/sys/files.hpp"
#include "lib/tables/passwords.hpp"

namespace tern::authd {
namespace {

long long now_seconds() { return static_cast<long long>(::time(nullptr)); }

auth::Answer fail(std::string reason, auth::Outcome o = auth::Outcome::fail) {
    auth::Answer a;
    a.outcome = o;
    a.reason = std::move(reason);
    return a;
}

CheckResult check_virtual(const tables::VirtualUser& u, const Settings& s, std::string_view password) {
    CheckResult r;
    r.user_known = true;
    auto v = auth::verify_password(u.password, password, s.allow_plain);
    if (v.verdict == auth::Verify::mismatch) {
        r.answer = fail("password mismatch");
        return r;
    }
    if (v.verdict == auth::Verify::unusable) {
        r.answer = fail("unusable password entry: " + v.why);
        return r;
    }
    auto mail = maildir::virtual_maildir(s.mail_directory, u.address, u.home);
    if (!mail) {
        r.answer = fail(mail.message(), auth::Outcome::tempfail);
        return r;
    }
    r.answer.outcome = auth::Outcome::ok;
    r.answer.user = u.address;
    r.answer.uid = u.uid;
    r.answer.gid = u.gid;
    r.answer.home = u.home;
    r.answer.mail = *mail;
    // The quota local-delivery enforces (local-delivery/resolve.cpp).
    r.answer.quota = u.quota ? u.quota : s.virtual_mailbox_limit;
    return r;
}

CheckResult check_system(const Settings& s, const std::string& login, std::string_view password,
                         const std::string& dummy_hash) {
    CheckResult r;
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* found = nullptr;
    int err = ::getpwnam_r(login.c_str(), &pw, buf.data(), buf.size(), &found);
    if (err != 0 && err != ENOENT && err != ESRCH) {
        r.answer = fail(std::string("system user lookup: ") + std::strerror(err), auth::Outcome::tempfail);
        return r;
    }
    if (found == nullptr) {
        (void)auth::verify_password(dummy_hash, password, false);
        r.answer = fail("unknown user");
        return r;
    }
    r.user_known = true;
    if (static_cast<long long>(pw.pw_uid) < s.first_valid_uid) {
        (void)auth::verify_password(dummy_hash, password, false);
        r.answer = fail("uid " + std::to_string(pw.pw_uid) + " below auth_first_valid_uid");
        return r;
    }
    std::string hash = pw.pw_passwd ? pw.pw_passwd : "";
    if (hash == "x") {
        std::vector<char> sbuf(16384);
        spwd sp{};
        spwd* sfound = nullptr;
        int serr = ::getspnam_r(login.c_str(), &sp, sbuf.data(), sbuf.size(), &sfound);
        if (sfound == nullptr) {
            // EACCES: the auth user lacks the shadow group (docs/auth.md).
            std::string why = serr == 0 || serr == ENOENT ? "no shadow entry" : std::strerror(serr);
            r.answer = fail("cannot read the shadow password: " + why, auth::Outcome::tempfail);
            return r;
        }
        hash = sp.sp_pwdp ? sp.sp_pwdp : "";
        long long today = now_seconds() / 86400;
        if (sp.sp_expire > 0 && today >= sp.sp_expire) {
            r.answer = fail("account expired");
            return r;
        }
    }
    auto v = auth::verify_crypt(hash, password);
    if (v.verdict != auth::Verify::match) {
        r.answer = fail(v.verdict == auth::Verify::mismatch ? "password mismatch" : "unusable password entry: " + v.why);
        return r;
    }
    std::string dir = s.home_mailbox;
    if (dir.empty() || dir.back() != '/') dir = "Maildir/";  // mbox is not served over IMAP/POP3
    r.answer.outcome = auth::Outcome::ok;
    r.answer.user = login;
    r.answer.system_user = true;
    r.answer.uid = pw.pw_uid;
    r.answer.gid = pw.pw_gid;
    r.answer.home = pw.pw_dir ? pw.pw_dir : "";
    r.answer.mail = r.answer.home + "/" + dir.substr(0, dir.size() - 1);
    return r;
}

}  // namespace

std::string canonical_login(std::string_view login) {
    if (login.find('@') == std::string_view::npos) return std::string(login);
    std::string s(login);
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

void PasswordDb::refresh(bool force) {
    // Two stat() calls per login: cheap, and a change is seen by the very next check.
    auto stamp = tables::stamp_of(path_);
    if (!stamp) {
        if (last_error_ != stamp.message()) log::warning("users file: %s", stamp.message().c_str());
        last_error_ = stamp.message();
        if (!users_->by_address.empty()) users_ = std::make_shared<Users>();  // removed file: no virtual users
        stamp_ = {};
        return;
    }
    auto passwd_stamp = tables::stamp_of(passwd_path_);
    tables::SourceStamp passwd_now = passwd_stamp ? *passwd_stamp : tables::SourceStamp{};
    if (!force && *stamp == stamp_ && passwd_now == passwd_stamp_) return;
    auto text = sys::read_file(path_);
    Result<std::string> passwd_text = std::string();
    if (passwd_stamp) passwd_text = sys::read_file(passwd_path_);
    for (const auto* r : {&text, &passwd_text}) {
        if (*r) continue;
        if (last_error_ != r->message()) log::warning("users file: %s", r->message().c_str());
        last_error_ = r->message();
        return;
    }
    auto merged = tables::merge_passwords(*text, path_, *passwd_text, passwd_path_);
    for (const auto& d : merged.diagnostics) log::warning("%s", d.c_str());
    if (merged.legacy > 0)
        log::warning("users file %s holds the password hashes of %zu users: move them into %s with `mailctl user convert`",
                     path_.c_str(), merged.legacy, passwd_path_.c_str());
    auto users = std::make_shared<Users>();
    for (auto& u : merged.users) users->by_address.emplace(u.address, std::move(u));
    log::info("users file %s: %zu users", path_.c_str(), users->by_address.size());
    users_ = std::move(users);
    stamp_ = *stamp;
    passwd_stamp_ = passwd_now;
    last_error_.clear();
}

CheckResult check_login(const Users& users, const Settings& s, std::string_view login, std::string_view password,
                        const std::string& dummy_hash) {
    std::string name = canonical_login(login);
    if (name.find('@') != std::string::npos) {
        auto it = users.by_address.find(name);
        if (it != users.by_address.end()) return check_virtual(it->second, s, password);
        CheckResult r;
        (void)auth::verify_password(dummy_hash, password, false);
        r.answer = fail("unknown user");
        return r;
    }
    if (s.system_users) return check_system(s, name, password, dummy_hash);
    CheckResult r;
    (void)auth::verify_password(dummy_hash, password, false);
    r.answer = fail("unknown user (system users are off: auth_system_users)");
    return r;
}

std::string make_dummy_hash() {
    unsigned char random[16];
    std::string pw;
    FILE* f = std::fopen("/dev/urandom", "rb");
    if (f != nullptr) {
        if (std::fread(random, 1, sizeof random, f) == sizeof random)
            for (unsigned char c : random) pw += static_cast<char>('a' + c % 26);
        std::fclose(f);
    }
    if (pw.empty()) pw = std::to_string(::time(nullptr)) + "-dummy";
    auto h = auth::hash_password(pw);
    return h ? *h : std::string();
}

}  // namespace tern::authd
