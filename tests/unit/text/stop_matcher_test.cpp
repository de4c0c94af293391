#include "kiln/text/stop_matcher.h"

#include <random>

#include <gtest/gtest.h>

namespace kiln::text {
namespace {

struct StopRun {
  std::string text;  // everything released
  bool stopped = false;
  int stop_index = -1;
  size_t max_held = 0;  // bytes pushed but not yet released, at worst
};

StopRun run(const std::vector<std::string>& stops, const std::vector<std::string>& deltas) {
  auto m = StopMatcher::create(stops);
  EXPECT_TRUE(m.is_ok());
  StopRun r;
  size_t pushed = 0;
  for (const std::string& d : deltas) {
    auto out = m->push(d);
    pushed += d.size();
    r.text += out.text;
    if (out.stopped) {
      r.stopped = true;
      r.stop_index = out.stop_index;
      return r;
    }
    r.max_held = std::max(r.max_held, pushed - r.text.size());
  }
  r.text += m->finish();
  return r;
}

// The same text cut at every byte boundary (valid UTF-8 pieces only).
std::vector<std::string> chars_of(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t n = 1;
    while (i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80) ++n;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

TEST(StopMatcher, ReleasesTextThatCannotBecomeAStop) {
  auto r = run({"STOP"}, {"hello ", "wor", "ld"});
  EXPECT_EQ(r.text, "hello world");
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.max_held, 0u);
  // "ST" could be the start of STOP: held back, then released when it is not.
  auto m = StopMatcher::create({"STOP"});
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(m->push("abc ST").text, "abc ");
  EXPECT_EQ(m->push("A").text, "STA");
}

TEST(StopMatcher, NeverEmitsAnyPartOfAStop) {
  auto m = StopMatcher::create({"</answer>"});
  ASSERT_TRUE(m.is_ok());
  std::string out;
  for (const std::string& d : chars_of("The answer is 42</answer> and more")) {
    auto o = m->push(d);
    out += o.text;
    EXPECT_EQ(out.find('<'), std::string::npos);
    if (o.stopped) break;
  }
  EXPECT_EQ(out, "The answer is 42");
  EXPECT_TRUE(m->stopped());
  EXPECT_EQ(m->push("more").text, "");
  EXPECT_EQ(m->finish(), "");
}

TEST(StopMatcher, OverlappingStops) {
  const std::vector<std::string> stops = {"ab", "abc", "bcd"};
  // "ab" completes first.
  auto r = run(stops, chars_of("xxabcd"));
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "xx");
  EXPECT_EQ(r.stop_index, 0);
  // "bcd" without a preceding "a".
  r = run(stops, chars_of("xbcdy"));
  EXPECT_EQ(r.text, "x");
  EXPECT_EQ(r.stop_index, 2);
  // In one delta: "ab" ends at 2 before "bcd" ends at 4.
  r = run({"bcd", "ab"}, {"abcd"});
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.stop_index, 1);
  // Same end: the longer one wins, so less text is released.
  r = run({"bc", "abc"}, {"zabc"});
  EXPECT_EQ(r.text, "z");
  EXPECT_EQ(r.stop_index, 1);
}

TEST(StopMatcher, StopThatIsAPrefixOfAnother) {
  // "end" fires as soon as it is complete, before "endless" could.
  auto r = run({"endless", "end"}, chars_of("the endless road"));
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "the ");
  EXPECT_EQ(r.stop_index, 1);
}

TEST(StopMatcher, MultiByteStops) {
  auto r = run({"。\n", "🛑"}, {"你好", "\xE3\x80", "\x82", "\n再见"});
  // A delta may even split a character; released text stays whole characters here.
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "你好");
  r = run({"🛑"}, chars_of("stop 🛑 now"));
  EXPECT_EQ(r.text, "stop ");
  r = run({"é"}, chars_of("cafe\xCC\x81 café"));  // decomposed e + accent is not "é"
  EXPECT_EQ(r.text, "cafe\xCC\x81 caf");
}

TEST(StopMatcher, StopsSplitAcrossDeltas) {
  auto r = run({"<|im_end|>"}, {"Sure<|", "im", "_e", "nd|>tail"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "Sure");
  // A near miss is released whole.
  r = run({"<|im_end|>"}, {"a<|im_", "start|>b"});
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.text, "a<|im_start|>b");
}

TEST(StopMatcher, ResultDoesNotDependOnHowTextIsCut) {
  const std::vector<std::string> stops = {"ab", "abc", "bcd", "cc", "x y", "ééé"};
  std::mt19937 rng(7);
  const std::string alphabet[] = {"a", "b", "c", "d", " ", "x", "y", "é"};
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text;
    const int n = 1 + static_cast<int>(rng() % 20);
    for (int i = 0; i < n; ++i) text += alphabet[rng() % 8];
    const StopRun whole = run(stops, {text});
    // Reference: the earliest end, then the earliest start, over all stops.
    size_t best_end = std::string::npos, best_start = 0;
    for (const auto& s : stops) {
      const size_t at = text.find(s);
      if (at == std::string::npos) continue;
      if (at + s.size() < best_end || (at + s.size() == best_end && at < best_start)) {
        best_end = at + s.size();
        best_start = at;
      }
    }
    if (best_end == std::string::npos) {
      EXPECT_FALSE(whole.stopped);
      EXPECT_EQ(whole.text, text);
    } else {
      EXPECT_TRUE(whole.stopped);
      EXPECT_EQ(whole.text, text.substr(0, best_start));
    }
    std::vector<std::string> pieces;
    const auto chars = chars_of(text);
    for (size_t i = 0; i < chars.size();) {
      const size_t k = 1 + rng() % 3;
      std::string p;
      for (size_t j = 0; j < k && i < chars.size(); ++j) p += chars[i++];
      pieces.push_back(p);
    }
    const StopRun cut = run(stops, pieces);
    EXPECT_EQ(cut.text, whole.text) << text;
    EXPECT_EQ(cut.stopped, whole.stopped) << text;
    EXPECT_EQ(cut.stop_index, whole.stop_index) << text;
    EXPECT_LE(cut.max_held, 6u);  // never more than the longest stop's proper prefix
  }
}

TEST(StopMatcher, RejectsBadStops) {
  EXPECT_FALSE(StopMatcher::create({"ok", ""}).is_ok());
  EXPECT_FALSE(StopMatcher::create({"\xC3"}).is_ok());
  auto m = StopMatcher::create({});
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(m->push("anything").text, "anything");
}

}  // namespace
}  // namespace kiln::text
