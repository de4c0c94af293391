// Stored responses (schema version 4): the Responses API's response objects by id, and the
// background ones' claims. A background response is claimed like a batch line (a lease with a
// node and a token; docs/batches.md "Durability") and ended by one guarded UPDATE, so a response
// cancelled or deleted while it runs is never brought back by the run's late result.
#include <cstdlib>

#include "kiln/core/str.h"
#include "kiln/jobs/batch_store.h"

namespace kiln::jobs {

namespace {

constexpr const char* kCols =
    "id, client, model, status, background, created_ms, updated_ms, request, input_items, response, token";

ResponseRecord response_from(const SqlRow& r) {
  auto s = [&](size_t i) { return r[i].value_or(""); };
  auto n = [&](size_t i) { return r[i] ? std::strtoll(r[i]->c_str(), nullptr, 10) : 0; };
  ResponseRecord x;
  x.id = s(0);
  x.client = s(1);
  x.model = s(2);
  x.status = s(3);
  x.background = n(4) != 0;
  x.created_ms = n(5);
  x.updated_ms = n(6);
  x.request = s(7);
  x.input_items = s(8);
  x.response = s(9);
  x.token = s(10);
  return x;
}

}  // namespace

Status BatchStore::insert_response(const ResponseRecord& r) {
  return c_->query(str_cat("INSERT INTO responses (", kCols, ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"),
                   {r.id, r.client, r.model, r.status, int64_t{r.background ? 1 : 0}, r.created_ms, r.updated_ms,
                    r.request, r.input_items, r.response, r.token})
      .status();
}

Result<std::optional<ResponseRecord>> BatchStore::get_response(const std::string& id) {
  KILN_ASSIGN_OR_RETURN(auto rows, c_->query(str_cat("SELECT ", kCols, " FROM responses WHERE id = $1"), {id}));
  if (rows.empty()) return std::optional<ResponseRecord>();
  return std::optional<ResponseRecord>(response_from(rows[0]));
}

Result<bool> BatchStore::delete_response(const std::string& id) {
  KILN_RETURN_IF_ERROR(c_->query("DELETE FROM responses WHERE id = $1", {id}).status());
  return c_->changes() > 0;
}

Result<std::vector<ResponseRecord>> BatchStore::claim_responses(const std::string& node,
                                                                const std::vector<std::string>& models, int limit,
                                                                int64_t now_ms, int64_t until_ms) {
  std::vector<ResponseRecord> out;
  if (limit <= 0 || models.empty()) return out;
  std::vector<SqlValue> params = {node, random_token(), until_ms, now_ms, int64_t{limit}};
  std::string in;
  for (const auto& m : models) {
    params.push_back(m);
    in += str_cat(in.empty() ? "" : ", ", "$", params.size());
  }
  const std::string sql = str_cat(
      "UPDATE responses SET status = 'in_progress', node = $1, token = CAST($2 AS TEXT) || '-' || id, "
      "lease_until_ms = $3, updated_ms = $4 WHERE id IN (SELECT id FROM responses WHERE background = 1 AND "
      "(status = 'queued' OR (status = 'in_progress' AND lease_until_ms < $4)) AND model IN (", in,
      ") ORDER BY created_ms, id LIMIT $5", c_->postgres() ? " FOR UPDATE SKIP LOCKED" : "", ") RETURNING ", kCols);
  KILN_ASSIGN_OR_RETURN(auto rows, c_->query(sql, params));
  for (const auto& r : rows) out.push_back(response_from(r));
  return out;
}

Status BatchStore::renew_response_leases(const std::vector<std::string>& tokens, int64_t until_ms) {
  for (const auto& t : tokens) {
    KILN_RETURN_IF_ERROR(
        c_->query("UPDATE responses SET lease_until_ms = $2 WHERE token = $1 AND status = 'in_progress'", {t, until_ms})
            .status());
  }
  return Status();
}

Result<bool> BatchStore::finish_response(const std::string& id, const std::string& token, const std::string& status,
                                         const std::string& response, int64_t now_ms,
                                         const std::vector<WebhookDelivery>& events) {
  KILN_RETURN_IF_ERROR(c_->query("UPDATE responses SET status = $2, response = $3, updated_ms = $4, lease_until_ms = 0 "
                                 "WHERE id = $1 AND status IN ('queued', 'in_progress') AND ($5 = '' OR token = $5)",
                                 {id, status, response, now_ms, token})
                           .status());
  if (c_->changes() == 0) return false;
  KILN_RETURN_IF_ERROR(insert_deliveries(events));
  return true;
}

Status BatchStore::release_response(const std::string& id, const std::string& token) {
  return c_->query("UPDATE responses SET status = 'queued', lease_until_ms = 0 WHERE id = $1 AND token = $2 AND "
                   "status = 'in_progress'",
                   {id, token})
      .status();
}

Result<int64_t> BatchStore::release_node_responses(const std::string& node) {
  KILN_RETURN_IF_ERROR(c_->query("UPDATE responses SET status = 'queued', lease_until_ms = 0 WHERE node = $1 AND "
                                 "status = 'in_progress' AND background = 1",
                                 {node})
                           .status());
  return c_->changes();
}

}  // namespace kiln::jobs
