// Request-body JSON: numbers that overflow name their parameter, limits on keys, items, depth and
// values give clear 400s, objects with many keys parse in linear time, repeated keys keep the
// last value, and a malformed body's error quotes a long token shortened.
#include <time.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kiln/http/json_fields.h"
#include "kiln/http/openai_request.h"

namespace kiln::http {
namespace {

ApiError parse_error_of(const std::string& body) {
  Json j;
  auto e = parse_json_body(body, &j);
  EXPECT_TRUE(e.has_value()) << body.substr(0, 200);
  return e.value_or(ApiError{});
}

// This thread's CPU time: unlike wall time it does not grow when other processes load the machine.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string object_of_keys(size_t n, const std::string& prefix = "k") {
  std::string s = "{";
  for (size_t i = 0; i < n; ++i) s += (i ? ",\"" : "\"") + prefix + std::to_string(i) + "\":1";
  return s + "}";
}

TEST(JsonBody, ANumberTooLargeForADoubleIsA400NamingTheParameter) {
  ChatRequest r;
  auto e = parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1e400})", &r);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->status, 400);
  EXPECT_EQ(e->param, "max_tokens");
  EXPECT_EQ(e->code, "invalid_value");
  EXPECT_NE(e->message.find("1e400"), std::string::npos) << e->message;

  const std::string digits(5000, '7');
  ApiError big = parse_error_of(R"({"model":"m","temperature":)" + digits + "}");
  EXPECT_EQ(big.param, "temperature");
  EXPECT_EQ(big.code, "invalid_value");
  EXPECT_LT(big.message.size(), 200u) << "the number is quoted in full";

  EXPECT_EQ(parse_error_of(R"({"logit_bias":{"15":-1e999}})").param, "logit_bias.15");
  EXPECT_EQ(parse_error_of(R"({"prompt":[[1,2],[3,1e400]]})").param, "prompt[1][1]");
  EXPECT_EQ(parse_error_of(R"({"messages":[{"role":"user","content":"x","n":{"a":[1E+500]}}]})").param,
            "messages[0].n.a[0]");
  // A number that fits is a number, however it is written.
  Json ok;
  EXPECT_FALSE(parse_json_body(R"({"a":1e-400,"b":18446744073709551615,"c":)" + digits + "e-4990}", &ok).has_value());
  EXPECT_EQ(ok["a"].get<double>(), 0.0);
  Json any;
  auto top = parse_json_value("1e400", &any);  // no parameter to name
  ASSERT_TRUE(top.has_value());
  EXPECT_EQ(top->param, "");
  EXPECT_EQ(top->code, "invalid_value");
  EXPECT_EQ(parse_error_of("[0,1e400]").param, "[1]");
}

TEST(JsonBody, RepeatedKeysKeepTheirFirstPlaceAndTheLastValue) {
  Json j;
  ASSERT_FALSE(parse_json_body(R"({"a":1,"b":{"x":1},"a":3,"b":[2]})", &j).has_value());
  EXPECT_EQ(j.dump(), R"({"a":3,"b":[2]})");
  // Past the size where keys are indexed rather than scanned.
  std::string body = object_of_keys(40);
  body.back() = ',';
  body += R"("k5":"five","k39":null,"new":true})";
  ASSERT_FALSE(parse_json_body(body, &j).has_value());
  ASSERT_EQ(j.size(), 41u);
  EXPECT_EQ(j["k5"], "five");
  EXPECT_TRUE(j["k39"].is_null());
  std::vector<std::string> order;
  for (auto it = j.begin(); it != j.end(); ++it) order.push_back(it.key());
  EXPECT_EQ(order[5], "k5");
  EXPECT_EQ(order[39], "k39");
  EXPECT_EQ(order.back(), "new");
}

TEST(JsonBody, KeysPerObjectAreLimited) {
  Json j;
  EXPECT_FALSE(parse_json_body(object_of_keys(kMaxJsonObjectKeys), &j).has_value());
  EXPECT_EQ(j.size(), kMaxJsonObjectKeys);
  ApiError e = parse_error_of(R"({"model":"m","logit_bias":)" + object_of_keys(kMaxJsonObjectKeys + 1) + "}");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "logit_bias");
  EXPECT_NE(e.message.find("at most 10000 keys"), std::string::npos) << e.message;
}

TEST(JsonBody, AMillionKeysAreRefusedQuickly) {
  const std::string body = object_of_keys(1'000'000);  // 12 MB, under the default 32 MiB body limit
  const double t0 = thread_cpu_seconds();
  ApiError e = parse_error_of(body);
  const double cpu = thread_cpu_seconds() - t0;
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "invalid_value");
  // Before the SAX builder this took about ten minutes; refusing it takes milliseconds.
  EXPECT_LT(cpu, 5.0);
}

// CPU seconds to parse `body` (which must parse).
double parse_seconds(const std::string& body, Json* out) {
  const double t0 = thread_cpu_seconds();
  auto e = parse_json_body(body, out);
  const double cpu = thread_cpu_seconds() - t0;
  EXPECT_FALSE(e.has_value()) << e->message;
  return cpu;
}

TEST(JsonBody, LargeObjectsParseAsFastAsSmallOnes) {
  // The same 300,000 keys as 30 objects of 10,000 and as 30,000 objects of 10. A search per
  // insert (nlohmann's ordered_map) costs 30 * 10,000^2 / 2 = 1.5e9 key comparisons for the
  // first and 1.5e6 for the second, a thousand times more; linear parsing costs the same for
  // both. Comparing the two keeps the test independent of the machine's speed (and of ASan).
  auto body_of = [](size_t objects, size_t keys) {
    std::string b = R"({"tools":[)";
    for (size_t i = 0; i < objects; ++i) b += (i ? "," : "") + object_of_keys(keys);
    return b + "]}";
  };
  Json large, small;
  const double t_large = parse_seconds(body_of(30, kMaxJsonObjectKeys), &large);
  const double t_small = parse_seconds(body_of(30'000, 10), &small);
  EXPECT_EQ(large["tools"].size(), 30u);
  EXPECT_EQ(small["tools"].size(), 30'000u);
  EXPECT_LT(t_large, 5 * t_small + 0.5) << "large " << t_large << " s, small " << t_small << " s";
  // The chat template's values are built in linear time too.
  const double t0 = thread_cpu_seconds();
  text::jinja::Value v = json_to_value(large["tools"]);
  const double t_values = thread_cpu_seconds() - t0;
  EXPECT_EQ(v.items()[29].dict_data().items.size(), kMaxJsonObjectKeys);
  EXPECT_LT(t_values, 5 * t_large + 0.5);
}

TEST(JsonBody, DepthItemsAndValuesAreLimited) {
  std::string deep(static_cast<size_t>(kMaxJsonDepth) - 1, '[');
  Json j;
  EXPECT_FALSE(parse_json_body("{\"a\":" + deep + std::string(deep.size(), ']') + "}", &j).has_value());
  ApiError d = parse_error_of("{\"a\":" + deep + "[]" + std::string(deep.size(), ']') + "}");
  EXPECT_NE(d.message.find("deeper than 64 levels"), std::string::npos) << d.message;
  EXPECT_EQ(d.param.substr(0, 4), "a[0]");

  std::string items = R"({"prompt":[)";
  for (size_t i = 0; i <= kMaxJsonArrayItems; ++i) items += i ? ",1" : "1";
  items += "]}";
  ApiError a = parse_error_of(items);
  EXPECT_EQ(a.param, "prompt");
  EXPECT_NE(a.message.find("at most 1048576 items"), std::string::npos) << a.message;

  std::string values = R"({"prompt":[)";
  for (size_t i = 0; i < 3; ++i) {
    values += i ? ",[" : "[";
    for (size_t k = 0; k < kMaxJsonValues / 3; ++k) values += k ? ",0" : "0";
    values += "]";
  }
  values += "]}";
  ApiError v = parse_error_of(values);
  EXPECT_EQ(v.status, 400);
  EXPECT_NE(v.message.find("more than 2097152 JSON values"), std::string::npos) << v.message;
}

TEST(JsonBody, MalformedJsonQuotesALongTokenShortened) {
  ApiError e = parse_error_of(R"({"model":")" + std::string(1 << 20, 'a'));  // no closing quote
  EXPECT_NE(e.message.find("could not parse the JSON body"), std::string::npos);
  EXPECT_LT(e.message.size(), 1200u);
  EXPECT_NE(e.message.find("aaaa\u2026 ("), std::string::npos) << e.message;
}

TEST(JsonBody, ToolCallArgumentsAreParsedWithTheSameBuilder) {
  // Arguments arrive as a JSON string; a huge object in them must not take quadratic time either.
  std::string args = object_of_keys(200'000);
  std::string escaped;
  for (char c : args) escaped += c == '"' ? std::string("\\\"") : std::string(1, c);
  std::string body = R"({"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":")" +
                     escaped + R"("}}]}]})";
  ChatRequest r;
  const double t0 = thread_cpu_seconds();
  auto e = parse_chat_request(body, &r);
  EXPECT_LT(thread_cpu_seconds() - t0, 5.0);
  ASSERT_FALSE(e.has_value()) << e->message;
  // Too many keys to be an object the template can index: the arguments stay a string.
  const auto* calls = r.messages.items()[0].dict_data().find("tool_calls");
  const auto* fn = calls->items()[0].dict_data().find("function");
  EXPECT_TRUE(fn->dict_data().find("arguments")->is_string());
}

}  // namespace
}  // namespace kiln::http
