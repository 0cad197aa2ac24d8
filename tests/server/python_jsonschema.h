#pragma once
// Validation of JSON instances against JSON Schemas by python3-jsonschema, an
// implementation independent of Lumen's, for the tool-calling tests.

#include <string>

#include "nlohmann/json.hpp"

namespace lumen::testing {

// Runs python3-jsonschema over `cases`, [{"schema", "instance"}]: "" when
// every instance validates, else what python printed (or why it could not
// run).
std::string ValidateWithPython(const nlohmann::json& cases);

}  // namespace lumen::testing
