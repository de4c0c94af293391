// Stop strings over streamed text. Text that may still turn into a stop string is held back;
// everything else is released at once. When a stop string appears, the text before it is
// released, the stop string and all that follows are dropped, and the stream is over.
//
// Which stop wins does not depend on how the text is cut into deltas: the match that ends first
// (it is complete soonest), and among those the longest.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::text {

class StopMatcher {
 public:
  // Each stop must be non-empty, valid UTF-8. An empty list never stops.
  static Result<StopMatcher> create(std::vector<std::string> stops);

  struct Output {
    std::string text;     // safe to send now
    bool stopped = false;
    int stop_index = -1;  // which stop string matched
  };
  // Adds streamed text (valid UTF-8); after a stop, returns nothing more.
  Output push(std::string_view delta);
  // The stream ended without a stop: releases the held-back text.
  std::string finish();
  bool stopped() const { return stopped_; }
  const std::vector<std::string>& stops() const { return stops_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace kiln::text
