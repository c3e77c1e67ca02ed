// Tests for lib/net: host:port parsing, address formatting, network lists
// (mynetworks) for IPv4/IPv6, and listening sockets.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "lib/ipc/message.hpp"
#include "lib/net/address.hpp"
#include "lib/net/listen.hpp"

using namespace tern;

TEST_CASE("net: host:port parsing", "[net]") {
    auto v4 = net::parse_host_port("127.0.0.1:2525");
    REQUIRE(v4.ok());
    CHECK(v4->host == "127.0.0.1");
    CHECK(v4->port == 2525);
    auto v6 = net::parse_host_port("[::1]:25");
    REQUIRE(v6.ok());
    CHECK(v6->host == "::1");
    CHECK(v6->port == 25);
    auto name = net::parse_host_port("mx.example.org:587");
    REQUIRE(name.ok());
    CHECK(name->host == "mx.example.org");
    auto any = net::parse_host_port(":25");
    REQUIRE(any.ok());
    CHECK(any->host.empty());
    CHECK(net::parse_host_port("*:25")->host.empty());
    CHECK(net::parse_host_port("h:65535").ok());

    for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "h:99999999999",
                            "h:2x", "h:-1", "::1:25", "[::1]", "[::1]25", "[::1:25", "[nothost]:25",
                            "a b:25", "[::1]:"})
        CHECK_FALSE(net::parse_host_port(bad).ok());
    CHECK(net::format_host_port("::1", 25) == "[::1]:25");
    CHECK(net::format_host_port("127.0.0.1", 25) == "127.0.0.1:25");
}

TEST_CASE("net: socket addresses print as numeric IPs", "[net]") {
    auto v4 = net::parse_ip("192.0.2.7", 25);
    REQUIRE(v4.ok());
    auto* sa = reinterpret_cast<const sockaddr*>(&*v4);
    CHECK(net::ip_string(sa) == "192.0.2.7");
    CHECK(net::port_of(sa) == 25);
    CHECK(net::endpoint_string(sa) == "192.0.2.7:25");
    auto v6 = net::parse_ip("[2001:db8::1]", 587);
    REQUIRE(v6.ok());
    CHECK(net::endpoint_string(reinterpret_cast<const sockaddr*>(&*v6)) == "[2001:db8::1]:587");
    auto mapped = net::parse_ip("::ffff:10.1.2.3");
    REQUIRE(mapped.ok());
    CHECK(net::ip_string(reinterpret_cast<const sockaddr*>(&*mapped)) == "10.1.2.3");
    CHECK_FALSE(net::parse_ip("10.1.2").ok());
    CHECK_FALSE(net::parse_ip("example.org").ok());
    CHECK(net::ip_string(nullptr).empty());
}

TEST_CASE("net: network lists match IPv4, IPv6 and mapped clients", "[net]") {
    auto list = net::NetworkList::parse("127.0.0.0/8, 192.0.2.128/25 [::1]/128 2001:db8::/32,10.9.9.9");
    REQUIRE(list.ok());
    CHECK(list->size() == 5);
    CHECK(list->contains("127.0.0.1"));
    CHECK(list->contains("127.255.255.255"));
    CHECK_FALSE(list->contains("128.0.0.1"));
    CHECK(list->contains("192.0.2.128"));
    CHECK(list->contains("192.0.2.255"));
    CHECK_FALSE(list->contains("192.0.2.127"));
    CHECK(list->contains("10.9.9.9"));
    CHECK_FALSE(list->contains("10.9.9.8"));
    CHECK(list->contains("::1"));
    CHECK_FALSE(list->contains("::2"));
    CHECK(list->contains("2001:db8:ffff::5"));
    CHECK_FALSE(list->contains("2001:db9::5"));
    CHECK(list->contains("::ffff:127.0.0.1"));  // v4-mapped matches v4 networks
    CHECK_FALSE(list->contains("::ffff:8.8.8.8"));
    CHECK_FALSE(list->contains("not an ip"));
    CHECK_FALSE(list->contains(""));

    auto sa = net::parse_ip("192.0.2.200");
    CHECK(list->contains(reinterpret_cast<const sockaddr*>(&*sa)));
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    CHECK_FALSE(list->contains(reinterpret_cast<const sockaddr*>(&un)));

    // Host bits are masked; /0 matches everything in its family.
    auto masked = net::NetworkList::parse(std::vector<std::string>{"10.1.2.3/8", "0.0.0.0/0"});
    REQUIRE(masked.ok());
    CHECK(masked->contains("10.200.0.1"));
    CHECK(masked->contains("8.8.8.8"));
    CHECK_FALSE(masked->contains("::1"));
    CHECK(net::NetworkList::parse("")->empty());

    for (const char* bad : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/-1", "example.org",
                            "10.0.0/8", "1.2.3.4/8/8"}) {
        auto r = net::NetworkList::parse(std::string_view(bad));
        CHECK_FALSE(r.ok());
        if (!r.ok()) CHECK_THAT(r.message(), Catch::Contains(bad));
    }
}

TEST_CASE("net: listen_tcp binds loopback and accepts connections", "[net]") {
    auto sock = net::listen_tcp("127.0.0.1", 0);
    REQUIRE(sock.ok());
    int port = net::bound_port(sock->get());
    REQUIRE(port > 0);
    CHECK((::fcntl(sock->get(), F_GETFD) & FD_CLOEXEC) != 0);
    int one = 0;
    socklen_t len = sizeof one;
    REQUIRE(::getsockopt(sock->get(), SOL_SOCKET, SO_REUSEADDR, &one, &len) == 0);
    CHECK(one != 0);

    Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto addr = net::parse_ip("127.0.0.1", port);
    REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof(sockaddr_in)) == 0);
    // Second bind to the same port fails with a message naming it.
    auto dup = net::listen_tcp("127.0.0.1", port);
    REQUIRE_FALSE(dup.ok());
    CHECK_THAT(dup.message(), Catch::Contains("127.0.0.1:" + std::to_string(port)));
    CHECK_FALSE(net::listen_tcp("127.0.0.1", 70000).ok());
    CHECK_FALSE(net::listen_tcp("no.such.host.invalid", 0).ok());

    auto v6 = net::listen_tcp("::1", 0);
    if (v6.ok()) {
        int v6only = 0;
        len = sizeof v6only;
        REQUIRE(::getsockopt(v6->get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len) == 0);
        CHECK(v6only == 1);
    } else {
        WARN("no IPv6 loopback: " << v6.message());
    }
}

TEST_CASE("net: listen_unix replaces stale sockets, never live ones", "[net]") {
    char tmpl[] = "/tmp/tern-net-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    std::string dir = tmpl;
    std::string path = dir + "/qmgr.sock";
    {
        auto live = net::listen_unix(path, 0660);
        REQUIRE(live.ok());
        struct stat st;
        REQUIRE(::stat(path.c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0660);
        auto c = ipc::connect_unix(path);
        CHECK(c.ok());
        auto second = net::listen_unix(path);
        REQUIRE_FALSE(second.ok());
        CHECK_THAT(second.message(), Catch::Contains("in use"));
    }
    // The listener is closed; its file remains, stale.
    auto again = net::listen_unix(path);
    REQUIRE(again.ok());
    CHECK(ipc::connect_unix(path).ok());

    std::string plain = dir + "/file";
    std::ofstream(plain) << "x";
    auto not_socket = net::listen_unix(plain);
    REQUIRE_FALSE(not_socket.ok());
    CHECK_THAT(not_socket.message(), Catch::Contains("not a socket"));
    CHECK_FALSE(net::listen_unix(dir + "/" + std::string(200, 'x')).ok());
    std::filesystem::remove_all(dir);
}
