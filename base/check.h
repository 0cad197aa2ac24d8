#pragma once
// Invariant checks. Input errors are absl::Status; a broken internal
// invariant (a bug, never a bad request) aborts with its location through
// LUMEN_CHECK. Debian bookworm's Abseil (20220623) predates absl/log, so
// this is Abseil's raw-logging CHECK.

#include "absl/base/internal/raw_logging.h"

// Aborts with "Check <cond> failed: <message>" when `cond` is false.
#define LUMEN_CHECK(cond, message) ABSL_RAW_CHECK(cond, message)
