// The outcome of one delivery attempt to one destination, in the terms of
// lib/delivery: delivered / deferred / bounced with an RFC 3463 code.
#pragma once

#include <string>

#include "lib/delivery/request.hpp"

namespace tern::local {

struct DeliveryResult {
    delivery::Outcome outcome = delivery::Outcome::Deferred;
    std::string dsn;   // "2.0.0", "4.2.0", "5.2.2"
    std::string text;  // "delivered to maildir", "mailbox full"

    bool delivered() const { return outcome == delivery::Outcome::Delivered; }
    static DeliveryResult sent(std::string text) { return {delivery::Outcome::Delivered, "2.0.0", std::move(text)}; }
    static DeliveryResult defer(std::string dsn, std::string text) {
        return {delivery::Outcome::Deferred, std::move(dsn), std::move(text)};
    }
    static DeliveryResult bounce(std::string dsn, std::string text) {
        return {delivery::Outcome::Bounced, std::move(dsn), std::move(text)};
    }
};

}  // namespace tern::local
