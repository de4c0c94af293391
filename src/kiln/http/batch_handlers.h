// What the Files and Batch API handlers share (handler_files.cpp, handler_batches.cpp).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "kiln/http/app.h"
#include "kiln/http/batch_service.h"
#include "kiln/http/json_fields.h"

namespace kiln::http {

ApiError batches_off();
ApiError batch_store_error(const Status& s);
ApiError batch_store_busy();
HttpResponse json_response(const Json& j, int status = 200);
// Runs `fn` on the API thread; the response it returns goes back to the exchange's strand.
void on_batch_store(const AppContext& ctx, const ExchangePtr& ex,
                    std::function<HttpResponse(BatchService&, jobs::BatchStore&)> fn);
// limit (1..max_limit, default default_limit) and after.
std::optional<ApiError> read_page(const std::map<std::string, std::string>& q, int default_limit, int max_limit,
                                  jobs::Page* page);
// OpenAI's metadata: at most 16 string pairs, keys ≤ 64 characters, values ≤ 512 (null: none).
std::optional<ApiError> check_metadata(const Json& md);
// OpenAI's file expiration policy, {anchor: "created_at", seconds: 3600..2592000}, as the two
// values a request gave (null: absent; `seconds` a JSON integer, or text a form field held).
// `param` names the policy in errors ("expires_after", "output_expires_after"): its fields are
// reported as "<param>.anchor" / "<param>.seconds". Sets *seconds on success.
std::optional<ApiError> read_expiration(const std::string& param, const Json& anchor, const Json& seconds,
                                        int64_t* out_seconds);
// OpenAI's list envelope: object, data, first_id, last_id, has_more.
HttpResponse list_response(Json data, bool has_more);

}  // namespace kiln::http
