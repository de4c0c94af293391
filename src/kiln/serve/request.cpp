#include "kiln/serve/request.h"

namespace kiln::serve {

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone: return "";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "";
}

uint64_t seed_for_choice(uint64_t seed, int32_t choice) {
  if (choice == 0) return seed;
  uint64_t x = seed ^ (0x9e3779b97f4a7c15ull * static_cast<uint64_t>(choice));
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace kiln::serve
