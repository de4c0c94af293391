#include "bench_serve/workload.h"

namespace kiln::bench_serve {

// Common English words, each a single token after a space for the llama-2, llama-3, Qwen3,
// Gemma-3, DeepSeek-V3 and gpt-oss tokenizers (bench/serve/check_vocabulary.mjs checks this), so a
// prompt of N of them is about N tokens whatever the server's tokenizer. Keep the list between the
// markers: the check reads it from here.
const std::vector<std::string_view>& vocabulary() {
  // vocabulary-begin
  static const std::vector<std::string_view> kWords = {
    "the", "of", "and", "to", "in", "is", "was", "for", "on", "that", "with", "as", "by", "at",
    "from", "his", "her", "it", "an", "were", "are", "which", "this", "be", "or", "has", "had",
    "not", "but", "their", "they", "one", "new", "first", "also", "after", "who", "its", "been",
    "other", "more", "two", "there", "all", "when", "into", "time", "she", "would", "over", "only",
    "years", "can", "some", "up", "may", "out", "about", "most", "used", "year", "city", "three",
    "state", "many", "world", "such", "school", "people", "during", "like", "these", "than", "made",
    "between", "united", "both", "under", "then", "them", "known", "well", "part", "where", "while",
    "through", "later", "being", "film", "since", "states", "team", "four", "national", "back",
    "house", "early", "high", "second", "he", "will", "called", "found", "so", "several", "long",
    "before", "each", "him", "same", "including", "name", "against", "area", "make", "day", "use",
    "work", "life", "much", "government", "what", "do", "often", "end", "family", "general", "very",
    "any", "group", "american", "old", "based", "still", "number", "how", "public", "series",
    "even", "following", "war", "could", "place", "around", "last", "although", "played", "good",
    "great", "among", "left", "way", "take", "set", "show", "system", "did", "home", "own", "north",
    "game", "common", "small", "country", "play", "river", "major", "does", "age", "our", "top",
    "little", "just", "down", "now", "because", "form", "west", "side", "few", "away", "given",
    "best", "right", "became", "south", "we", "along", "head", "again", "point", "field", "church",
    "club", "never", "late", "non", "five", "past", "held", "water", "music", "original", "large",
    "run", "county", "another", "named", "less", "power", "line", "light", "until", "near", "order",
    "within", "title", "east", "you", "case", "court", "center", "lead", "due", "six", "free",
    "per", "member", "next", "land", "air", "history", "must", "times", "full", "different",
    "third", "death", "street", "main", "final", "book", "want", "change", "level", "act", "too",
    "open", "human", "story", "body",
  };
  // vocabulary-end
  return kWords;
}

}  // namespace kiln::bench_serve
