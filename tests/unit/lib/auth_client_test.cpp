// Tests for lib/auth/client: checks answered out of order by a stand-in
// daemon, cancel, timeout, and an unreachable daemon (tempfail, never from
// inside check()).
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "lib/auth/client.hpp"
#include "lib/event/loop.hpp"
#include "lib/ipc/channel.hpp"
#include "lib/ipc/message.hpp"
#include "tests/unit/lib/loop_until.hpp"

using namespace tern;
using namespace std::chrono_literals;

namespace {

struct FakeDaemon {
    std::string path;
    Fd listener;
    event::Watch accept_watch;
    std::unique_ptr<ipc::Channel> conn;
    std::vector<ipc::Message> requests;

    explicit FakeDaemon(event_base* base) {
        char dir[] = "/tmp/tern-auth-test-XXXXXX";
        REQUIRE(::mkdtemp(dir) != nullptr);
        path = std::string(dir) + "/auth.sock";
        listener.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, path.data(), path.size());
        REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listener.get(), 4) == 0);
        accept_watch = event::Watch(base, listener.get(), EV_READ | EV_PERSIST, [this, base](short) {
            Fd c(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
            conn = std::make_unique<ipc::Channel>(
                base, std::move(c), [this](ipc::Message& m) { requests.push_back(std::move(m)); }, [](const std::string&) {});
        });
        accept_watch.add();
    }
    ~FakeDaemon() {
        ::unlink(path.c_str());
        ::rmdir(path.substr(0, path.rfind('/')).c_str());
    }
    void answer(const ipc::Message& req, const char* outcome) {
        ipc::Message a("auth-answer");
        a.add("id", req.get_or("id", "0"));
        a.add("outcome", outcome);
        a.add("user", req.get_or("user", ""));
        a.add_int("uid", 1234);
        a.add("mail", "/var/vmail/x");
        a.add_int("quota", 52428800);
        a.add("reason", std::string(outcome) == "ok" ? "" : "password mismatch");
        conn->send(a);
    }
};

void run_until(event_base* base, const std::function<bool()>& done) { REQUIRE(testing::run_until(base, done)); }

auth::Request request(const std::string& user) {
    auth::Request r;
    r.mechanism = "PLAIN";
    r.credentials.authcid = user;
    r.credentials.password = "pw";
    r.client_ip = "192.0.2.1";
    r.service = "imap";
    return r;
}

}  // namespace

TEST_CASE("auth client: answers matched by id, out of order; cancel", "[auth][client]") {
    auto base = event::make_base();
    FakeDaemon daemon(base.get());
    auth::Client client(base.get(), daemon.path, 5s);
    std::vector<std::string> got;
    client.check(request("a@x"), [&](const auth::Answer& a) { got.push_back("a:" + std::string(auth::outcome_name(a.outcome))); });
    auto t2 = client.check(request("b@x"), [&](const auth::Answer& a) {
        got.push_back("b:" + a.user + ":" + std::to_string(a.uid.value_or(0)) + ":" + a.mail + ":" +
                      std::to_string(a.quota));
    });
    auto t3 = client.check(request("c@x"), [&](const auth::Answer&) { got.push_back("c"); });
    CHECK(got.empty());  // never from inside check()
    run_until(base.get(), [&] { return daemon.requests.size() == 3; });
    CHECK(daemon.requests[0].get_or("service", "") == "imap");
    CHECK(daemon.requests[0].get_or("rip", "") == "192.0.2.1");
    CHECK(daemon.requests[0].get_or("password", "") == "pw");
    client.cancel(t3);
    daemon.answer(daemon.requests[2], "ok");  // cancelled: ignored
    daemon.answer(daemon.requests[1], "ok");
    daemon.answer(daemon.requests[0], "fail");
    run_until(base.get(), [&] { return got.size() == 2; });
    CHECK(got[0] == "b:b@x:1234:/var/vmail/x:52428800");
    CHECK(got[1] == "a:fail");
    CHECK(client.pending() == 0);
    (void)t2;
}

TEST_CASE("auth client: daemon gone → tempfail; no answer → timeout", "[auth][client]") {
    auto base = event::make_base();
    {
        auth::Client client(base.get(), "/nonexistent/auth.sock", 5s);
        std::vector<auth::Answer> got;
        client.check(request("a@x"), [&](const auth::Answer& a) { got.push_back(a); });
        CHECK(got.empty());
        run_until(base.get(), [&] { return got.size() == 1; });
        CHECK(got[0].outcome == auth::Outcome::tempfail);
        CHECK(got[0].reason.find("unavailable") != std::string::npos);
    }
    FakeDaemon daemon(base.get());
    auth::Client client(base.get(), daemon.path, 50ms);
    std::vector<auth::Answer> got;
    client.check(request("a@x"), [&](const auth::Answer& a) { got.push_back(a); });
    run_until(base.get(), [&] { return got.size() == 1; });
    CHECK(got[0].outcome == auth::Outcome::tempfail);
    CHECK(got[0].reason.find("in time") != std::string::npos);
    // The daemon closing the connection fails what is in flight, and the next check reconnects.
    client.check(request("b@x"), [&](const auth::Answer& a) { got.push_back(a); });
    run_until(base.get(), [&] { return daemon.requests.size() == 2; });
    daemon.conn.reset();
    run_until(base.get(), [&] { return got.size() == 2; });
    CHECK(got[1].outcome == auth::Outcome::tempfail);
    client.check(request("c@x"), [&](const auth::Answer& a) { got.push_back(a); });
    run_until(base.get(), [&] { return daemon.requests.size() == 3; });
    daemon.answer(daemon.requests[2], "ok");
    run_until(base.get(), [&] { return got.size() == 3; });
    CHECK(got[2].outcome == auth::Outcome::ok);
}
