// Test-only fault injection at fixed points of the mail flow.
//
// A test sets TERN_FAULT_<NAME>=<path> in master's environment (workers
// inherit it) and creates the file <path>.  The first process of the stack
// that reaches fault_point("<NAME>") while <path> exists removes it and
// ends at once with _exit(kFaultExitStatus): no destructors, no flush, as
// a SIGKILL at that instant would.  One file, one crash; a restarted
// worker passes the point normally.  Without the variable a fault point
// costs one getenv.
//
// Points: LOCAL_AFTER_WRITE (local-delivery: mailboxes written, result not
// yet sent to qmgr), QMGR_BEFORE_RECORD (qmgr: a delivery result received,
// not yet recorded in the queue), COMMIT_BEFORE_RECORD (smtpd's committer:
// bodies and their directory entries synced, records not yet in the commit
// log), COMMIT_BEFORE_REPLY (smtpd: records in the commit log, the 250 not
// yet sent), COMMIT_BEFORE_STORE (smtpd: records in the commit log, not yet
// in LMDB).
#pragma once

namespace tern::sys {

constexpr int kFaultExitStatus = 75;

void fault_point(const char* name);

}  // namespace tern::sys
