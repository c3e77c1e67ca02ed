// The table of mailctl subcommands (see commands.hpp for how to add one).
#include "mailctl/commands.hpp"

namespace tern::mailctl {

const std::vector<Command>& commands() {
    static const std::vector<Command> table = {
        {"start", "validate the configuration and start tern",
         "usage: mailctl start [--foreground]\n"
         "\n"
         "Checks tern.conf and services.conf (errors are printed as file:line and\n"
         "nothing starts), then starts master, which opens every listening socket\n"
         "and runs the services.  Returns once master answers on its control socket\n"
         "and prints \"tern started\".\n"
         "  --foreground  run master in the foreground instead (for systemd\n"
         "                Type=simple and debugging); SIGTERM or Ctrl-C stops it\n"
         "Exit status: 0 started, 1 configuration error, already running or\n"
         "start-up failure (the reason is printed), 2 usage error.\n",
         cmd_start},
        {"stop", "stop tern and wait until every process is gone",
         "usage: mailctl stop\n"
         "\n"
         "Asks master to stop: workers get SIGTERM to finish what they are doing,\n"
         "and SIGKILL after master_stop_timeout.  Waits until master has exited.\n"
         "Exit status: 0 stopped or was not running, 1 master did not stop in\n"
         "time, 2 usage error.\n",
         cmd_stop},
        {"reload", "re-read the configuration; restart only changed services",
         "usage: mailctl reload\n"
         "\n"
         "Has master re-read tern.conf and services.conf (like SIGHUP): services\n"
         "whose services.conf line changed are restarted, new ones started,\n"
         "removed ones stopped, unchanged ones keep running.  A change to tern.conf\n"
         "restarts every service.  A configuration with errors is refused and the\n"
         "running one stays.\n"
         "Exit status: 0 reloaded, 1 refused (the reason is printed), 2 usage\n"
         "error, 3 tern is not running.\n",
         cmd_reload},
        {"status", "show services, processes, restarts and crashes",
         "usage: mailctl status\n"
         "\n"
         "One line per service: its state (running: every worker is up and has\n"
         "said it is ready; starting; throttled), worker pids (a '*' marks one\n"
         "still starting: not ready yet), uptime of the youngest worker, restarts\n"
         "since master started, listen addresses, and the reason of the last crash\n"
         "(\"killed by signal 9\"; \"exit status 1 at start-up\" for a worker that\n"
         "died before it said ready).  A worker that dies after it said ready is\n"
         "restarted at once; a service whose workers died at start-up more than\n"
         "master_crash_limit times within master_crash_window is throttled:\n"
         "master waits master_restart_backoff_max before trying it again, and the\n"
         "last column says so (\"throttled after 3 start-up crashes, retry in 58s\").\n"
         "Exit status: 0 running, 1 error, 2 usage error, 3 tern is not running.\n",
         cmd_status},
        {"config", "print effective configuration values, or check the files",
         "usage: mailctl config [-n] [KEY...]\n"
         "       mailctl config check\n"
         "\n"
         "Without KEY, prints every tern.conf key as `key = value` with $references\n"
         "expanded; with KEYs, only those.\n"
         "  -n     only the keys set in tern.conf (non-defaults)\n"
         "  check  report every problem in tern.conf and services.conf as\n"
         "         file:line: message; warns about programs missing from\n"
         "         daemon_directory\n"
         "Exit status: 0 fine, 1 errors found or unknown KEY, 2 usage error.\n",
         cmd_config},
        {"queue", "list, show, print, flush, delete, hold or release queued mail",
         "usage: mailctl queue list\n"
         "       mailctl queue show ID\n"
         "       mailctl queue cat ID\n"
         "       mailctl queue flush\n"
         "       mailctl queue delete ID...|ALL\n"
         "       mailctl queue hold ID...\n"
         "       mailctl queue release ID...\n"
         "\n"
         "  list     the queue like mailq(1): queue ID ('!' held, '*' due now), size,\n"
         "           arrival time, sender, then each pending recipient after its\n"
         "           last error in parentheses; \"Mail queue is empty\" when empty\n"
         "  show     envelope, per-recipient state and the message's headers\n"
         "  cat      the whole message as queued (like postcat -bh -q ID)\n"
         "  flush    make every deferred message due now and wake qmgr\n"
         "  delete   remove messages (no bounce is sent); ALL empties the queue\n"
         "  hold     keep messages in the queue without delivery attempts\n"
         "  release  end the hold; delivery resumes at the next retry time\n"
         "Works on the queue directly, so also while tern is stopped.\n"
         "Exit status: 0 done, 1 an ID was not found or the queue is unreadable,\n"
         "2 usage error.\n",
         cmd_queue},
        {"block", "list or lift the rate-limit blocks of clients, senders, accounts and sendmail uids",
         "usage: mailctl block list\n       mailctl block clear ADDR|IP|USER|UID\n\n  list   active blocks: kind (client/sender/account/uid), address, expiry, reason\n  clear  lift the block of a client IP, sender address, authenticated\n         user (per-account send limits) or local uid (sendmail limits) and reset its counters\nExit status: 0 done, 1 not blocked or database error, 2 usage error.\n",
         cmd_block},
        {"user", "add, delete, list virtual mailbox users or change a password",
         "usage: mailctl user add ADDRESS [--password-stdin] [--quota SIZE] [--home DIR]\n"
         "       mailctl user passwd ADDRESS [--password-stdin]\n"
         "       mailctl user del ADDRESS\n"
         "       mailctl user list [DOMAIN]\n"
         "       mailctl user convert\n"
         "\n"
         "Edits the users file (virtual_mailbox_maps) and recompiles users.lmdb;\n"
         "hashes go to the password file (auth_password_file), which only auth\n"
         "and root read.  convert moves the hashes an older users file holds.\n"
         "the auth daemon picks the change up by itself.  The password is asked\n"
         "twice on the terminal without echo, or read as one line from standard\n"
         "input with --password-stdin; never from the command line.  It is stored\n"
         "hashed with auth_password_scheme (yescrypt by default).  add needs the\n"
         "domain in virtual_mailbox_domains (mailctl domain add).  del keeps the\n"
         "mailbox directory.  list never prints hashes, only their scheme.\n"
         "Exit status: 0 done, 1 failure (exists, no such user, I/O), 2 usage error.\n",
         cmd_user},
        {"domain", "add, delete or list virtual mailbox domains",
         "usage: mailctl domain add DOMAIN\n"
         "       mailctl domain del DOMAIN [--force]\n"
         "       mailctl domain list\n"
         "\n"
         "add and del edit the first file listed in virtual_mailbox_domains (e.g.\n"
         "virtual_mailbox_domains = $config_directory/domains); domains written in\n"
         "tern.conf itself are listed but changed only there.  del refuses while\n"
         "the domain has users, unless --force.  list shows each domain, its user\n"
         "count and where it is defined.\n"
         "Exit status: 0 done, 1 failure, 2 usage error.\n",
         cmd_domain},
        {"auth", "check a user's password like the servers do",
         "usage: mailctl auth test USER [--password-stdin] [--service NAME] [--rip IP]\n"
         "\n"
         "Asks the running auth daemon (service \"mailctl\" unless --service, counted\n"
         "by the failure throttling like any login) and prints the result with the\n"
         "user's mailbox fields.  When the daemon is not running it reads the users\n"
         "file directly and says \"offline\" (virtual users only; needs read access).\n"
         "Exit status: 0 password accepted, 1 refused or error, 2 usage error.\n",
         cmd_auth},
    };
    return table;
}

const Command* find_command(std::string_view name) {
    for (const auto& c : commands())
        if (c.name == name) return &c;
    return nullptr;
}

}  // namespace tern::mailctl
