// mailctl status: master's view of every service as a table.  The reply
// format is documented in master/control.hpp.
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "mailctl/commands.hpp"

namespace tern::mailctl {
namespace {

struct Row {
    std::string name, state, listen, last_crash;
    std::vector<std::string> pids;
    long long youngest = -1;
    std::string restarts = "0";
    std::string startup_crashes, retry_in;
};

std::vector<Row> rows_of(const ipc::Message& reply) {
    std::vector<Row> rows;
    for (const auto& [key, value] : reply.attributes()) {
        if (key == "service") {
            rows.push_back(Row{});
            rows.back().name = value;
            continue;
        }
        if (rows.empty()) continue;  // master-level attributes come first
        Row& r = rows.back();
        if (key == "state") r.state = value;
        else if (key == "listen") r.listen = value;
        else if (key == "last_crash") r.last_crash = value;
        else if (key == "restarts") r.restarts = value;
        else if (key == "startup_crashes") r.startup_crashes = value;
        else if (key == "retry_in") r.retry_in = value;
        else if (key == "process") {
            // "<pid> <uptime> ready|starting"; a pid still starting is
            // marked with '*' (older masters send no third field: ready).
            auto space = value.find(' ');
            bool starting = value.size() >= 9 && value.compare(value.size() - 9, 9, " starting") == 0;
            r.pids.push_back(value.substr(0, space) + (starting ? "*" : ""));
            long long up = space == std::string::npos ? 0 : std::atoll(value.c_str() + space + 1);
            if (r.youngest < 0 || up < r.youngest) r.youngest = up;
        }
    }
    return rows;
}

std::string joined(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
    return out.empty() ? "-" : out;
}

// The last column: the last crash, and for a throttled service why and
// until when ("exit status 1 at start-up; throttled after 6 start-up
// crashes, retry in 58s").
std::string last_crash_text(const Row& r) {
    std::string text = r.last_crash.empty() ? "-" : r.last_crash;
    if (r.state == "throttled" && !r.retry_in.empty())
        text += "; throttled after " + (r.startup_crashes.empty() ? "?" : r.startup_crashes) +
                " start-up crashes, retry in " + format_duration(std::atoll(r.retry_in.c_str()));
    return text;
}

}  // namespace

int cmd_status(Context& ctx, const std::vector<std::string>& args) {
    if (!args.empty()) return usage_error("status", "unexpected argument '" + args[0] + "'");
    auto reply = ask_master(load_config_lenient(ctx), ipc::Message("status"));
    if (!reply) {
        if (is_not_running(reply.error())) {
            std::puts("tern is not running");
            return kExitNotRunning;
        }
        print_error(reply.message());
        return kExitFailure;
    }
    const ipc::Message& m = reply.value();
    std::string note = systemd_unit_note(static_cast<pid_t>(std::atoll(m.get_or("master_pid", "0").c_str())));
    std::printf("tern is running (pid %s, up %s, version %s, configuration %s%s)%s\n",
                m.get_or("master_pid", "?").c_str(),
                format_duration(std::atoll(m.get_or("uptime", "0").c_str())).c_str(),
                m.get_or("version", "?").c_str(), m.get_or("config", "?").c_str(),
                note.empty() ? "" : (", " + note).c_str(), m.get_or("stopping", "0") == "1" ? " -- stopping" : "");

    std::vector<std::vector<std::string>> table = {
        {"SERVICE", "STATE", "PIDS", "UPTIME", "RESTARTS", "LISTEN", "LAST CRASH"}};
    for (const auto& r : rows_of(m)) {
        table.push_back({r.name, r.state, joined(r.pids), r.youngest < 0 ? "-" : format_duration(r.youngest),
                         r.restarts, r.listen.empty() ? "-" : r.listen,
                         last_crash_text(r)});
    }
    std::vector<size_t> width(table[0].size(), 0);
    for (const auto& row : table)
        for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    for (const auto& row : table) {
        std::string line;
        for (size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
        }
        std::puts(line.c_str());
    }
    return kExitOk;
}

}  // namespace tern::mailctl
