// The client sessions one server process runs (imapd, pop3d), owned until
// they finish.  A session says it is finished from inside one of its own
// callbacks, so it is destroyed from the loop a moment later, never there.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <vector>

#include "lib/event/loop.hpp"

namespace tern::event {

template <class Session>
class SessionSet {
public:
    explicit SessionSet(event_base* base) : reaper_(timer(base, [this](short) { dead_.clear(); })) {}
    SessionSet(const SessionSet&) = delete;
    SessionSet& operator=(const SessionSet&) = delete;

    Session* add(std::shared_ptr<Session> session) {
        Session* key = session.get();
        sessions_.emplace(key, std::move(session));
        return key;
    }
    // False when the session is not (or no longer) in the set.
    bool finish(Session* session) {
        auto it = sessions_.find(session);
        if (it == sessions_.end()) return false;
        dead_.push_back(std::move(it->second));
        sessions_.erase(it);
        if (!reaper_.pending()) reaper_.add(std::chrono::milliseconds(1));
        return true;
    }
    size_t size() const { return sessions_.size(); }
    void clear() {
        sessions_.clear();
        dead_.clear();
    }

private:
    std::map<Session*, std::shared_ptr<Session>> sessions_;
    std::vector<std::shared_ptr<Session>> dead_;
    Watch reaper_;
};

}  // namespace tern::event
