#include "retrieval/postgres/pg_change_log.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "retrieval/postgres/pg_change_listener.h"

namespace lumen::retrieval::postgres {

absl::StatusOr<int64_t> LockCollection(
    Connection* db, int64_t collection,
    const std::optional<EmbeddingModelInfo>& expected_model) {
  ASSIGN_OR_RETURN(
      Result r,
      db->Query("SELECT last_seq, dim, model_name, model_checksum FROM "
                "collections WHERE id = $1 FOR UPDATE",
                Params().Add(collection)));
  if (r.rows() == 0) return absl::NotFoundError("the collection was deleted");
  if (expected_model.has_value()) {
    const EmbeddingModelInfo stored{std::string(r.Text(0, 2)),
                                    static_cast<int>(r.Int(0, 1)),
                                    std::string(r.Text(0, 3))};
    if (!(stored == *expected_model)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the collection's embedding model changed to ", stored.Describe(),
          " while these documents were embedded with ",
          expected_model->Describe()));
    }
  }
  return r.Int(0, 0);
}

absl::StatusOr<int64_t> LogChanges(Connection* db, int64_t collection,
                                   int64_t seq,
                                   const std::vector<int64_t>& chunks,
                                   const std::vector<std::string>& removed,
                                   int64_t document_delta,
                                   int64_t chunk_delta) {
  if (!chunks.empty()) {
    RETURN_IF_ERROR(
        db->Query("INSERT INTO changes(collection_id, seq, chunk_id, removed) "
                  "SELECT $1, $2 + u.ord, u.chunk, u.removed FROM "
                  "unnest($3::bigint[], $4::boolean[]) WITH ORDINALITY AS "
                  "u(chunk, removed, ord)",
                  Params()
                      .Add(collection)
                      .Add(seq)
                      .Add(ArrayLiteral(chunks))
                      .Add(ArrayLiteral(removed)))
            .status());
  }
  const int64_t last = seq + static_cast<int64_t>(chunks.size());
  RETURN_IF_ERROR(
      db->Query("UPDATE collections SET last_seq = $2, doc_count = doc_count "
                "+ $3, chunk_count = chunk_count + $4 WHERE id = $1",
                Params()
                    .Add(collection)
                    .Add(last)
                    .Add(document_delta)
                    .Add(chunk_delta))
          .status());
  if (!chunks.empty()) {
    RETURN_IF_ERROR(db->Query("SELECT pg_notify($1, $2)",
                              Params().Add(kChangeChannel).Add(collection))
                        .status());
  }
  return last;
}

}  // namespace lumen::retrieval::postgres
