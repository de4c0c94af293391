// The JSON side of the Files and Batch APIs: OpenAI's object shapes, the validation of a batch's
// input file (line by line, in bounded memory), and the lines of output and error files.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/http/json_fields.h"
#include "kiln/jobs/batch_store.h"

namespace kiln::http {

// The endpoints a batch may target (those kiln serves).
bool batch_endpoint_supported(const std::string& endpoint);

Json file_json(const jobs::FileRecord& f);
// `live`: counts from the lines while the batch runs (else the stored final ones).
Json batch_json(const jobs::BatchRecord& b, const jobs::LineCounts* live);
Json delivery_json(const jobs::WebhookDelivery& d);

struct ValidatedInput {
  std::vector<jobs::BatchLine> lines;
  std::string model;  // every line's body.model (one model per batch, as OpenAI's)
  Json errors = Json::array();  // {code, message, param, line}; non-empty: the batch fails
};

// Checks every line of an input file (JSON object, unique custom_id, method POST, url equal to
// the batch's endpoint, body an object naming the same model). Stops collecting errors past
// 100 but reads on for the line count.
ValidatedInput validate_batch_input(const std::filesystem::path& file, const std::string& endpoint,
                                    int64_t max_lines, size_t max_line_bytes);

// The request body of a validated line (as JSON text).
Result<std::string> read_line_body(const std::filesystem::path& file, int64_t offset, int64_t length);

// Output/error file lines.
std::string response_line(const std::string& custom_id, int status, const std::string& request_id,
                          const std::string& body);
std::string expired_line(const std::string& custom_id);

// Where a line goes when its batch ends as `status` (completed, expired or cancelled): a result
// goes to the output file (kOutput) or, an error answer, to the error file (kErrors); a line that
// never ran goes to the error file as batch_expired when the batch expired, and to neither file
// (kNone) when it was cancelled. A partly run batch that expires thus keeps every result it has.
struct FinalLine {
  enum Where { kNone = -1, kOutput = 0, kErrors = 1 } where = kNone;
  std::string text;
};
FinalLine final_line(const jobs::LineResultRow& row, const std::string& status);

}  // namespace kiln::http
