#pragma once
// The filters over sequences and mappings (first, join, map, select, sort,
// dictsort, ...), for the filter table in filters.cc. Same contract as
// ApplyFilter: jinja2's semantics, InvalidArgument without a position.

#include "absl/status/statusor.h"
#include "chat/jinja/builtins.h"
#include "chat/jinja/value.h"

namespace lumen::chat::jinja::filters {

absl::StatusOr<Value> First(const Value& v, const CallArgs& args,
                            BuiltinContext& ctx);
absl::StatusOr<Value> Last(const Value& v, const CallArgs& args,
                           BuiltinContext& ctx);
absl::StatusOr<Value> Join(const Value& v, const CallArgs& args,
                           BuiltinContext& ctx);
absl::StatusOr<Value> Items(const Value& v, const CallArgs& args,
                            BuiltinContext& ctx);
absl::StatusOr<Value> DictSort(const Value& v, const CallArgs& args,
                               BuiltinContext& ctx);
absl::StatusOr<Value> List(const Value& v, const CallArgs& args,
                           BuiltinContext& ctx);
absl::StatusOr<Value> Map(const Value& v, const CallArgs& args,
                          BuiltinContext& ctx);
absl::StatusOr<Value> Select(const Value& v, const CallArgs& args,
                             BuiltinContext& ctx);
absl::StatusOr<Value> Reject(const Value& v, const CallArgs& args,
                             BuiltinContext& ctx);
absl::StatusOr<Value> SelectAttr(const Value& v, const CallArgs& args,
                                 BuiltinContext& ctx);
absl::StatusOr<Value> RejectAttr(const Value& v, const CallArgs& args,
                                 BuiltinContext& ctx);
absl::StatusOr<Value> Unique(const Value& v, const CallArgs& args,
                             BuiltinContext& ctx);
absl::StatusOr<Value> Reverse(const Value& v, const CallArgs& args,
                              BuiltinContext& ctx);
absl::StatusOr<Value> Sort(const Value& v, const CallArgs& args,
                           BuiltinContext& ctx);
absl::StatusOr<Value> Sum(const Value& v, const CallArgs& args,
                          BuiltinContext& ctx);
absl::StatusOr<Value> Min(const Value& v, const CallArgs& args,
                          BuiltinContext& ctx);
absl::StatusOr<Value> Max(const Value& v, const CallArgs& args,
                          BuiltinContext& ctx);

}  // namespace lumen::chat::jinja::filters
