// Sizes a client can make large in a grammar, bounded (the compilers refuse anything over them
// with kInvalidArgument naming the limit).
#pragma once

#include <cstddef>
#include <cstdint>

namespace kiln::grammar::limits {

inline constexpr size_t kMaxSourceBytes = 1u << 20;     // schema / grammar / regex text
inline constexpr size_t kMaxRegexNodes = 200'000;
inline constexpr size_t kMaxTerminals = 20'000;
inline constexpr size_t kMaxRules = 50'000;
inline constexpr size_t kMaxSymbols = 500'000;          // over all alternatives
inline constexpr uint32_t kMaxRepeat = 10'000;          // {m,n} bounds and min/maxItems, min/maxLength
inline constexpr size_t kMaxNesting = 64;               // schema / grammar / regex nesting depth
inline constexpr size_t kMaxChoices = 10'000;           // `choice` alternatives

}  // namespace kiln::grammar::limits
