// The pure parts of the Files and Batch APIs: Standard Webhooks signatures (the specification's
// own test vector), the retry schedule, multipart bodies read from disk in bounded chunks, and
// the validation of batch input files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "kiln/http/batch_json.h"
#include "kiln/http/multipart.h"
#include "kiln/http/webhooks.h"

namespace kiln::http {
namespace {

namespace fs = std::filesystem;

fs::path write_temp(const std::string& name, const std::string& text) {
  fs::path p = fs::temp_directory_path() / (name + "_" + std::to_string(getpid()));
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

TEST(Webhooks, SignsAsTheStandardWebhooksSpecification) {
  // standard-webhooks' reference vector.
  EXPECT_EQ(webhook_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                              R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  EXPECT_FALSE(check_webhook_secret("whsec_not base64!").is_ok());
  EXPECT_FALSE(check_webhook_secret("").is_ok());
  EXPECT_TRUE(check_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
}

TEST(Webhooks, RetriesDoubleUpToAnHourAndStopAfterTheWindow) {
  const int64_t base = 5000, window = 72LL * 3600000;
  EXPECT_EQ(next_retry_ms(0, 0, 1, base, window).value(), 5000);
  EXPECT_EQ(next_retry_ms(0, 0, 2, base, window).value(), 10000);
  EXPECT_EQ(next_retry_ms(0, 0, 5, base, window).value(), 80000);
  EXPECT_EQ(next_retry_ms(0, 0, 40, base, window).value(), 3600000);  // capped
  EXPECT_FALSE(next_retry_ms(0, window - 1000, 40, base, window).has_value());
  // Attempts until the window closes: 10 doublings to reach the cap, then hourly.
  int64_t now = 0, attempts = 0;
  while (auto next = next_retry_ms(0, now, ++attempts, base, window)) now = *next;
  EXPECT_GT(attempts, 70);
  EXPECT_LT(attempts, 85);
}

TEST(Multipart, ReadsFieldsAndAFileSplitAcrossChunks) {
  std::string content(200000, 'x');
  content[65530] = '\r';  // a delimiter's first bytes right at a chunk edge
  content[65531] = '\n';
  content[65532] = '-';
  content[65533] = '-';
  const std::string body = "preamble\r\n--BOUND\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
                           "--BOUND\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.jsonl\"\r\n"
                           "Content-Type: application/jsonl\r\n\r\n" +
                           content + "\r\n--BOUND--\r\n";
  fs::path p = write_temp("multipart_ok", body);
  std::string purpose, file, current, filename;
  MultipartSink sink;
  sink.begin = [&](const MultipartPart& part) {
    current = part.name;
    if (part.has_filename) filename = part.filename;
    return Status();
  };
  sink.data = [&](std::string_view d) {
    (current == "file" ? file : purpose).append(d);
    return Status();
  };
  sink.end = [] { return Status(); };
  ASSERT_TRUE(read_multipart(p, "BOUND", sink).is_ok());
  EXPECT_EQ(purpose, "batch");
  EXPECT_EQ(filename, "a b.jsonl");
  EXPECT_EQ(file, content);
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=\"BOUND\"").value(), "BOUND");
  EXPECT_FALSE(multipart_boundary("application/json").has_value());
  fs::path bad = write_temp("multipart_bad", "--BOUND\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nno end");
  Status s = read_multipart(bad, "BOUND", sink);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  fs::remove(p);
  fs::remove(bad);
}

TEST(BatchInput, EveryLineIsCheckedWithItsNumber) {
  const std::string ok = R"({"custom_id":"a","method":"POST","url":"/v1/completions","body":{"model":"m","prompt":"x"}})";
  fs::path p = write_temp("batch_input", ok + "\n\n" + ok + "\n" +
                                             R"({"custom_id":"b","method":"POST","url":"/v1/completions","body":{"model":"n"}})" +
                                             "\n" + R"({"custom_id":"c","method":"POST","url":"/v1/completions","body":{"model":"m","stream":true}})");
  ValidatedInput in = validate_batch_input(p, "/v1/completions", 100, 1 << 20);
  ASSERT_EQ(in.errors.size(), 3u);
  EXPECT_EQ(in.errors[0]["code"], "duplicate_custom_id");
  EXPECT_EQ(in.errors[0]["line"], 3);
  EXPECT_EQ(in.errors[1]["code"], "mismatched_model");
  EXPECT_EQ(in.errors[1]["line"], 4);
  EXPECT_EQ(in.errors[2]["param"], "body.stream");
  fs::path good = write_temp("batch_input_ok", ok + "\r\n" +
                                                   R"({"custom_id":"b","method":"POST","url":"/v1/completions","body":{"model":"m"}})");
  ValidatedInput g = validate_batch_input(good, "/v1/completions", 100, 1 << 20);
  ASSERT_TRUE(g.errors.empty()) << g.errors.dump();
  ASSERT_EQ(g.lines.size(), 2u);
  EXPECT_EQ(g.model, "m");
  EXPECT_EQ(read_line_body(good, g.lines[1].body_offset, g.lines[1].body_length).value(), R"({"model":"m"})");
  EXPECT_EQ(validate_batch_input(good, "/v1/completions", 1, 1 << 20).errors[0]["code"], "too_many_requests");
  fs::remove(p);
  fs::remove(good);
}

TEST(BatchEnd, APartlyRunBatchThatExpiresKeepsItsResultsAndExpiresTheRest) {
  const std::vector<jobs::LineResultRow> rows = {
      {1, "a", true, false, "{\"custom_id\":\"a\"}"},
      {2, "b", true, true, "{\"custom_id\":\"b\"}"},
      {3, "c", false, false, ""},
  };
  FinalLine ok = final_line(rows[0], "expired"), err = final_line(rows[1], "expired"),
            never = final_line(rows[2], "expired");
  EXPECT_EQ(ok.where, FinalLine::kOutput);
  EXPECT_EQ(ok.text, rows[0].result);
  EXPECT_EQ(err.where, FinalLine::kErrors);
  EXPECT_EQ(err.text, rows[1].result);
  ASSERT_EQ(never.where, FinalLine::kErrors);
  Json j = Json::parse(never.text);
  EXPECT_EQ(j["custom_id"], "c");
  EXPECT_TRUE(j["response"].is_null());
  EXPECT_EQ(j["error"]["code"], "batch_expired");
  // Cancelled: what never ran is in neither file; completed batches have run every line.
  EXPECT_EQ(final_line(rows[2], "cancelled").where, FinalLine::kNone);
  EXPECT_EQ(final_line(rows[0], "cancelled").where, FinalLine::kOutput);
}

}  // namespace
}  // namespace kiln::http
