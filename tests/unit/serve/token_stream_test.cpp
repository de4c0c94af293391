#include "kiln/serve/token_stream.h"

#include <gtest/gtest.h>

#include <thread>

namespace kiln::serve {
namespace {

StreamToken tok(int32_t choice, int32_t token) {
  StreamToken t;
  t.choice = choice;
  t.token = token;
  return t;
}

TEST(TokenStream, NotifiesOnPushAndAtOnceWhenOutputIsWaiting) {
  ManualClock clock;
  TokenStream s("r1", 1, clock.now());
  s.push_tokens({tok(0, 5)}, clock.now());
  int calls = 0;
  s.set_notify([&] { ++calls; });
  EXPECT_EQ(calls, 1);  // a token was already waiting
  s.push_tokens({tok(0, 6)}, clock.now());
  EXPECT_EQ(calls, 2);
  StreamChunk c = s.take();
  ASSERT_EQ(c.tokens.size(), 2u);
  EXPECT_EQ(c.tokens[1].token, 6);
  EXPECT_FALSE(c.done);
  EXPECT_TRUE(s.take().tokens.empty());
}

TEST(TokenStream, EarlyFinishDropsLaterTokensAndKeepsTheReason) {
  ManualClock clock;
  TokenStream s("r2", 2, clock.now());
  s.push_tokens({tok(0, 1), tok(1, 2)}, clock.now());
  s.finish_choice(0, FinishReason::kStop);
  auto asked = s.take_finish_requests();
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0], std::make_pair(0, FinishReason::kStop));
  EXPECT_TRUE(s.take_finish_requests().empty());  // handed over once
  // Tokens of choice 0 computed before the worker applied the finish are not delivered.
  s.push_tokens({tok(0, 3), tok(1, 4)}, clock.now());
  s.push_finished(0, FinishReason::kCancelled);  // the worker's reason yields to the consumer's
  s.push_tokens({tok(1, 5)}, clock.now());
  s.push_finished(1, FinishReason::kLength);
  Usage u;
  u.prompt_tokens = 7;
  u.completion_tokens = 99;  // replaced by the delivered count
  s.complete(u, Status::ok(), clock.now());
  StreamChunk c = s.take();
  std::vector<int32_t> tokens;
  for (const StreamToken& t : c.tokens) tokens.push_back(t.token);
  EXPECT_EQ(tokens, (std::vector<int32_t>{1, 2, 4, 5}));
  EXPECT_EQ(c.finished, (std::vector<std::pair<int32_t, FinishReason>>{{0, FinishReason::kStop}, {1, FinishReason::kLength}}));
  EXPECT_TRUE(c.done);
  EXPECT_EQ(c.usage.completion_tokens, 4);
  EXPECT_EQ(c.usage.prompt_tokens, 7);
}

TEST(TokenStream, CompletionWithAnErrorEndsOpenChoicesAndRecordsTiming) {
  ManualClock clock;
  const SteadyTime t0 = clock.now();
  TokenStream s("r3", 2, t0);
  clock.advance(std::chrono::milliseconds(5));
  s.mark_scheduled(clock.now());
  clock.advance(std::chrono::milliseconds(5));
  s.push_tokens({tok(1, 9)}, clock.now());
  s.push_finished(1, FinishReason::kLength);
  s.add_step();
  clock.advance(std::chrono::milliseconds(5));
  s.complete(Usage{}, cancelled("client went away"), clock.now());
  s.push_tokens({tok(0, 1)}, clock.now());  // nothing after completion
  StreamChunk c = s.take();
  EXPECT_TRUE(s.done());
  EXPECT_EQ(c.error.code(), StatusCode::kCancelled);
  EXPECT_EQ(c.tokens.size(), 1u);
  EXPECT_EQ(c.finished, (std::vector<std::pair<int32_t, FinishReason>>{{1, FinishReason::kLength}, {0, FinishReason::kCancelled}}));
  EXPECT_EQ(c.timing.submitted, t0);
  EXPECT_DOUBLE_EQ(seconds_between(t0, c.timing.first_scheduled), 0.005);
  EXPECT_DOUBLE_EQ(seconds_between(t0, c.timing.first_token), 0.010);
  EXPECT_DOUBLE_EQ(seconds_between(t0, c.timing.finished), 0.015);
  EXPECT_EQ(c.timing.steps, 1);
}

TEST(TokenStream, WaitTakeWakesOnPushFromAnotherThread) {
  TokenStream s("r4", 1, SteadyTime{});
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    s.push_tokens({tok(0, 42)}, SteadyTime{});
  });
  StreamChunk c = s.wait_take(std::chrono::milliseconds(10000));
  producer.join();
  ASSERT_EQ(c.tokens.size(), 1u);
  EXPECT_EQ(c.tokens[0].token, 42);
}

TEST(TokenStream, CancelIsAFlagForTheWorker) {
  TokenStream s("r5", 1, SteadyTime{});
  EXPECT_FALSE(s.cancel_requested());
  s.cancel();
  EXPECT_TRUE(s.cancel_requested());
  s.finish_choice(3, FinishReason::kStop);  // out of range: ignored
  s.finish_choice(0, FinishReason::kNone);  // no reason: ignored
  EXPECT_TRUE(s.take_finish_requests().empty());
}

}  // namespace
}  // namespace kiln::serve
