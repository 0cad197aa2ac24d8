#pragma once
// Early-return helpers for absl::Status / absl::StatusOr.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LUMEN_CONCAT_INNER(a, b) a##b
#define LUMEN_CONCAT(a, b) LUMEN_CONCAT_INNER(a, b)

// Returns from the current function when `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                                     \
  do {                                                            \
    if (::absl::Status lumen_status = (expr); !lumen_status.ok()) \
      return lumen_status;                                        \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, F())` declares x from an OK StatusOr or returns
// its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(LUMEN_CONCAT(lumen_statusor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
