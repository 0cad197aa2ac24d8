#pragma once
// The function tools the tool-calling tests offer over gRPC, HTTP and the
// CLI. Their parameter schemas are closed and bounded, so that every
// constrained call completes within the tests' max_tokens and can be
// validated with python3-jsonschema.

#include <initializer_list>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace lumen::testing {

// The tools named, in that order, from: get_weather {city, unit}, add
// {a, b} and book {people, names, when {day, hour}}.
inline nlohmann::json TestTools(std::initializer_list<const char*> names) {
  static const nlohmann::json* all =
      new nlohmann::json(nlohmann::json::parse(R"([
    {"type": "function", "function": {
      "name": "get_weather", "description": "Current weather in a city",
      "parameters": {"type": "object",
        "properties": {
          "city": {"type": "string", "minLength": 1, "maxLength": 12},
          "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"], "additionalProperties": false}}},
    {"type": "function", "function": {
      "name": "add", "description": "Adds two numbers",
      "parameters": {"type": "object",
        "properties": {
          "a": {"type": "integer", "minimum": -100, "maximum": 100},
          "b": {"type": "integer", "minimum": -100, "maximum": 100}},
        "required": ["a", "b"], "additionalProperties": false}}},
    {"type": "function", "function": {
      "name": "book", "description": "Books a table",
      "parameters": {"type": "object",
        "properties": {
          "people": {"type": "integer", "minimum": 1, "maximum": 12},
          "names": {"type": "array", "items": {"type": "string",
                    "maxLength": 8}, "maxItems": 3},
          "when": {"type": "object",
                   "properties": {"day": {"enum": ["mon", "tue"]},
                                  "hour": {"type": "integer", "minimum": 0,
                                           "maximum": 23}},
                   "required": ["day"], "additionalProperties": false}},
        "required": ["people", "when"], "additionalProperties": false}}}])"));
  nlohmann::json tools = nlohmann::json::array();
  for (const char* name : names) {
    const size_t before = tools.size();
    for (const nlohmann::json& t : *all) {
      if (t["function"]["name"] == name) tools.push_back(t);
    }
    if (tools.size() == before) ADD_FAILURE() << "no test tool " << name;
  }
  return tools;
}

// The parameter schema of the tool `name` in `tools`; null when absent.
inline const nlohmann::json& ToolSchema(const nlohmann::json& tools,
                                        const std::string& name) {
  for (const nlohmann::json& t : tools) {
    if (t["function"]["name"] == name) return t["function"]["parameters"];
  }
  static const nlohmann::json* none = new nlohmann::json();
  return *none;
}

}  // namespace lumen::testing
