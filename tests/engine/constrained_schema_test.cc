// JSON Schema -> grammar: documents each schema's grammar accepts and
// rejects, integer and number ranges against a naive comparison, and errors
// naming the keyword and its JSON pointer.

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "engine/constrained/constraint.h"
#include "engine/constrained/json_schema_to_gbnf.h"
#include "engine/constrained/numeric_range_gbnf.h"
#include "gtest/gtest.h"
#include "tests/engine/constrained_test_util.h"
#include "tests/test_support.h"

namespace lumen::engine::constrained {
namespace {

using ::lumen::testing::GrammarMatches;
using ::testing::HasSubstr;

struct SchemaCase {
  std::string name;
  std::string schema;
  std::vector<std::string> accept;
  std::vector<std::string> reject;
};

class SchemaMatchTest : public ::testing::TestWithParam<SchemaCase> {};

TEST_P(SchemaMatchTest, AcceptsAndRejects) {
  const SchemaCase& c = GetParam();
  auto g = CompileConstraintGrammar({ConstraintKind::kJsonSchema, c.schema});
  ASSERT_TRUE(g.ok()) << g.status();
  for (const std::string& s : c.accept) {
    EXPECT_TRUE(GrammarMatches(*g, s)) << c.name << " should accept " << s;
  }
  for (const std::string& s : c.reject) {
    EXPECT_FALSE(GrammarMatches(*g, s)) << c.name << " should reject " << s;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SchemaMatchTest,
    ::testing::Values(
        SchemaCase{
            "object required and optional",
            R"({"type":"object","properties":{"name":{"type":"string"},
                "age":{"type":"integer"},"ok":{"type":"boolean"}},
                "required":["age"],"additionalProperties":false})",
            {R"({"age":3})", R"({"age": -1, "name": "bob"})",
             R"({"age":0,"ok":true})", R"({"age":0,"name":"","ok":false})",
             "{\n  \"age\" : 7 ,\n  \"ok\": true\n}"},
            // Declared order is the generated order (required first).
            {"{}", R"({"name":"bob"})", R"({"name":"bob","age":3})",
             R"({"age":3,"other":1})", R"({"age":3,})", R"({"age":3.5})",
             R"({"age":03})", R"( {"age":3})", R"({"age":3} )"}},
        SchemaCase{"whitespace is bounded",
                   R"({"type":"object","properties":{"a":{"type":"integer"}}})",
                   {"{\"a\":1}", "{\n" + std::string(20, ' ') + "\"a\":1}"},
                   {"{\n" + std::string(21, ' ') + "\"a\":1}", "{  \"a\":1}"}},
        SchemaCase{"arrays",
                   R"({"type":"array","items":{"type":"integer"},
                       "minItems":1,"maxItems":3})",
                   {"[1]", "[1, 2, 3]", "[ 1,2 ]"},
                   {"[]", "[1,2,3,4]", "[1,]", "[\"a\"]"}},
        SchemaCase{"enum and const of any type",
                   R"({"type":"object","properties":{
                       "e":{"enum":["red", 2, null, [1], {"k":"v"}]},
                       "c":{"const":"x\"y"}},"required":["e","c"]})",
                   {R"({"e":"red","c":"x\"y"})", R"({"e":2,"c":"x\"y"})",
                    R"({"e":null,"c":"x\"y"})", R"({"e":[1],"c":"x\"y"})",
                    R"({"e":{"k":"v"},"c":"x\"y"})"},
                   {R"({"e":"blue","c":"x\"y"})", R"({"e":2,"c":"xy"})"}},
        SchemaCase{"anyOf oneOf and type lists",
                   R"({"anyOf":[{"type":"integer"},
                       {"oneOf":[{"type":"null"},{"type":["boolean","string"]}]}]})",
                   {"1", "null", "true", R"("s")"},
                   {"1.5", "[]", "{}"}},
        SchemaCase{
            "recursive $ref",
            R"({"$defs":{"node":{"type":"object","properties":{
                       "v":{"type":"integer"},
                       "kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},
                       "required":["v"]}},"$ref":"#/$defs/node"})",
            {R"({"v":1})", R"({"v":1,"kids":[{"v":2,"kids":[{"v":3}]}]})"},
            {R"({"v":1,"kids":[{}]})", R"({"kids":[]})"}},
        SchemaCase{"string lengths count code points",
                   R"({"type":"string","minLength":2,"maxLength":3})",
                   {R"("ab")", "\"\xc3\xa9\xe4\xb8\xad\"", R"("a\n\u00e9")"},
                   {R"("a")", R"("abcd")", R"("\ud83d\ude00")", "\"a\nb\""}},
        SchemaCase{"pattern inside a JSON string",
                   R"({"type":"string","pattern":"^[a-c]+\"?\\d{2}$"})",
                   {R"("ab12")", R"("c\"34")"},
                   {R"("ab1")", R"("ab"12")", R"("d12")"}},
        SchemaCase{"formats",
                   R"({"type":"array","items":{"anyOf":[
                       {"type":"string","format":"date"},
                       {"type":"string","format":"uuid"}]}})",
                   {R"(["2024-02-29","123e4567-e89b-12d3-a456-426614174000"])"},
                   {R"(["2024-13-01"])", R"(["123e4567"])"}},
        SchemaCase{"additionalProperties schema never reuses a declared key",
                   R"({"type":"object","properties":{"name":{"type":"string"}},
                       "additionalProperties":{"type":"boolean"}})",
                   {R"({"name":"x","other":true})", R"({"nam":false})",
                    R"({"names":true,"n":false})", R"({})"},
                   {R"({"name":"x","name":true})", R"({"name":true})",
                    R"({"other":1})"}},
        SchemaCase{"json object",
                   R"({"type":"object"})",
                   {R"({})", R"({"a":[1,{"b":null}],"c":"d"})"},
                   {R"([])", R"("x")", R"({"a"})"}},
        SchemaCase{"number bounds",
                   R"({"type":"number","minimum":-2,"maximum":1})",
                   {"0", "1", "1.000", "-2", "-1.5", "0.25", "-0.5"},
                   {"1.5", "-2.5", "1.01", "2", "1e0"}},
        SchemaCase{"true schema and annotations",
                   R"({"title":"any","description":"d","$comment":"c"})",
                   {"1", "\"x\"", "[true, {}]"},
                   {"", "nul", "[1,]"}}),
    [](const auto& info) {
      std::string n = info.param.name;
      for (char& ch : n)
        ch = isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
      return n;
    });

TEST(SchemaTest, IntegerRangesMatchExactlyTheirIntegers) {
  const std::vector<std::pair<std::optional<int64_t>, std::optional<int64_t>>>
      ranges = {{0, 0},
                {0, 9},
                {5, 1000},
                {-5, 3},
                {-1000, -37},
                {-99, 100},
                {123, 987},
                {7, std::nullopt},
                {std::nullopt, -12},
                {std::nullopt, 250},
                {-300, std::nullopt},
                {10, 10},
                {999, 1001}};
  for (const auto& [lo, hi] : ranges) {
    auto g = CompileConstraintGrammar(
        {ConstraintKind::kGrammar,
         "root ::= " + IntegerRangeGbnf(lo, hi) + "\n"});
    ASSERT_TRUE(g.ok()) << g.status();
    for (int64_t v = -1200; v <= 1200; ++v) {
      const bool want = (!lo || v >= *lo) && (!hi || v <= *hi);
      ASSERT_EQ(GrammarMatches(*g, std::to_string(v)), want)
          << v << " in [" << (lo ? std::to_string(*lo) : "-inf") << ", "
          << (hi ? std::to_string(*hi) : "inf") << "]";
    }
    for (const char* odd : {"007", "-0", "+5", "", "-"}) {
      EXPECT_FALSE(GrammarMatches(*g, odd)) << odd;
    }
  }
  auto big = CompileConstraintGrammar(
      {ConstraintKind::kGrammar,
       "root ::= " + IntegerRangeGbnf(-5, std::nullopt) + "\n"});
  ASSERT_TRUE(big.ok());
  EXPECT_TRUE(GrammarMatches(*big, "9999999999999999"));    // 16 digits
  EXPECT_FALSE(GrammarMatches(*big, "99999999999999999"));  // 17
}

TEST(SchemaTest, NumberRangesMatchExactlyTheirNumbers) {
  const std::vector<std::pair<int, int>> ranges = {
      {0, 1}, {-3, -1}, {-2, 5}, {0, 0}, {10, 12}};
  std::vector<std::string> numbers;
  for (int i = -14; i <= 14; ++i) {
    for (const char* frac : {"", ".0", ".00", ".5", ".05", ".9"}) {
      numbers.push_back(std::to_string(i) + frac);
    }
  }
  for (const char* extra : {"-0", "-0.0", "-0.5", "0.001"}) {
    numbers.push_back(extra);
  }
  for (const auto& [lo, hi] : ranges) {
    const std::string schema =
        "{\"type\":\"number\",\"minimum\":" + std::to_string(lo) +
        ",\"maximum\":" + std::to_string(hi) + "}";
    auto g = CompileConstraintGrammar({ConstraintKind::kJsonSchema, schema});
    ASSERT_TRUE(g.ok()) << g.status();
    for (const std::string& n : numbers) {
      const double v = std::strtod(n.c_str(), nullptr);
      // The grammar writes zero without a sign when no negative number is
      // allowed (a subset of the valid spellings).
      const bool negative_zero = n[0] == '-' && v == 0;
      const bool want = v >= lo && v <= hi && !(negative_zero && lo >= 0);
      ASSERT_EQ(GrammarMatches(*g, n), want) << n << " " << schema;
    }
  }
}

TEST(SchemaTest, ErrorsNameTheKeywordAndItsPath) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"type":"object","not":{}})",
       "json_schema: unsupported keyword 'not' at #"},
      {R"({"properties":{"a/b":{"type":"string","minLength":-1}}})",
       "json_schema: 'minLength' must be a non-negative integer at "
       "#/properties/a~1b"},
      {R"({"type":"strin"})", "json_schema: unknown type \"strin\" at #/type"},
      {R"({"type":"integer","minLength":3})",
       "json_schema: keyword 'minLength' does not apply to type 'integer' at "
       "#"},
      {R"({"$ref":"#/$defs/missing"})",
       "json_schema: $ref '#/$defs/missing' does not resolve at #"},
      {R"({"items":{"$ref":"https://example.com/s.json"}})",
       "json_schema: $ref 'https://example.com/s.json' is not local (only "
       "'#...' references are supported) at #/items"},
      {R"({"$ref":"#/$defs/a","type":"object","$defs":{"a":{}}})",
       "json_schema: keyword 'type' next to '$ref' is not supported at #"},
      {R"({"type":"string","pattern":"(?=x)y"})",
       "json_schema: 'pattern' \"(?=x)y\": regex column 1: lookaround (?=, "
       "(?!, (?<=, (?<! is not supported at #"},
      {R"({"type":"string","format":"email"})",
       "json_schema: format 'email' is not supported (supported: date, "
       "date-time, time, uuid) at #"},
      {R"({"type":"string","pattern":"a+","maxLength":4})",
       "json_schema: 'minLength'/'maxLength' next to 'pattern' is not "
       "supported at #"},
      {R"({"type":"integer","minimum":5,"maximum":1})",
       "json_schema: no integer lies between the minimum and the maximum at #"},
      {R"({"type":"number","exclusiveMinimum":0})",
       "json_schema: 'exclusiveMinimum' on a number is supported only as an "
       "inclusive whole number at #"},
      {R"({"type":"integer","maximum":1e19})",
       "json_schema: 'maximum' beyond +-1e18 is not supported at #"},
      {R"({"enum":[]})", "json_schema: 'enum' must be a non-empty array at #"},
      {R"({"type":"integer","enum":["a"]})",
       "json_schema: no value of 'enum' has the type given at #"},
      {R"({"anyOf":[{"type":"string"}],"type":"string"})",
       "json_schema: keyword 'type' next to 'anyOf' is not supported at #"},
      {R"({"type":"array","items":[{"type":"string"}]})",
       "json_schema: 'items' as an array (tuple form) is not supported at #"},
      {R"({"type":"array","maxItems":100000})",
       "json_schema: 'maxItems' above 10000 is not supported at #"},
      {R"({"type":"array","minItems":3,"maxItems":2})",
       "json_schema: 'maxItems' is below 'minItems' at #"},
      {R"({"properties":{"a":false}})",
       "json_schema: schema 'false' (nothing can match it) at #/properties/a"},
      {R"({"properties":{},"required":["x"],"additionalProperties":false})",
       "json_schema: required property 'x' is not in 'properties' and "
       "additionalProperties is false at #"},
      {R"({"anyOf":[{"type":"string"},{"uniqueItems":true}]})",
       "json_schema: unsupported keyword 'uniqueItems' at #/anyOf/1"},
      {R"([1,2])", "json_schema: a schema must be an object or a boolean at #"},
      {R"({"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})",
       "json_schema: grammar: rule 'def-a' can never complete: each of its "
       "alternatives needs itself or matches nothing"},
  };
  for (const auto& [schema, message] : cases) {
    EXPECT_THAT(CompileConstraintGrammar({ConstraintKind::kJsonSchema, schema}),
                StatusIs(absl::StatusCode::kInvalidArgument, message))
        << schema;
  }
  EXPECT_THAT(
      CompileConstraintGrammar({ConstraintKind::kJsonSchema, "{\"type\": "}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("json_schema is not valid JSON: parse error at line "
                         "1, column 10")));
}

TEST(SchemaTest, GrammarTextIsReadable) {
  auto gbnf = JsonSchemaToGbnf(
      R"({"type":"object","properties":{"n":{"type":"integer","minimum":1,"maximum":12}},"required":["n"]})");
  ASSERT_TRUE(gbnf.ok());
  EXPECT_EQ(*gbnf,
            "root ::= \"{\" ws \"\\\"n\\\"\" ws \":\" ws root-n ws \"}\"\n"
            "ws ::= ( \" \" | \"\\n\" [ \\t]{0,20} )?\n"
            "root-n ::= ([1-9] | \"1\" [0-2])\n");
}

}  // namespace
}  // namespace lumen::engine::constrained
