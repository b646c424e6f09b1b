#pragma once

#include <cstddef>

namespace telestra::gateway {

// The EventEncodings slot (backend/event_hub.h) of each wire format: every
// session of one format shares the one encoding of an event.
enum WireSlot : size_t {
  kNativeLegacySlot = 0,    // native port, JSON without the extended fields
  kNativeExtendedSlot = 1,  // native port, {"cmd":"subscribe","extended":true}
  kWebSocketJsonSlot = 2,   // WebSocket text frames
};

}  // namespace telestra::gateway
