#pragma once
// A small command-line parser for `lumen` and `lumend`. absl flags cannot spell
// the dashed names of the product contract (--max-tokens, --kv-cache-mb), so
// programs declare their flags on a FlagSet and parse argv with it.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lumen {

class FlagSet {
 public:
  // `usage` is printed first by Help(): e.g. "lumen model inspect FILE
  // [--json]".
  explicit FlagSet(std::string usage) : usage_(std::move(usage)) {}

  // Registers a flag bound to `*target`, which keeps its value when the flag is
  // absent. The pointers must outlive Parse().
  void String(std::string name, std::string* target, std::string help);
  void Int(std::string name, int64_t* target, std::string help);
  void Double(std::string name, double* target, std::string help);
  void Bool(std::string name, bool* target, std::string help);
  void Repeated(std::string name, std::vector<std::string>* target,
                std::string help);

  // Parses argv[first..argc). Accepts `--name value`, `--name=value`, bare
  // `--flag` for booleans, and `--` to end flags. Arguments without a leading
  // dash go to positional(). Returns InvalidArgument naming an unknown flag,
  // a missing value or a malformed number. `--help` sets help_requested().
  absl::Status Parse(int argc, char** argv, int first = 1);
  absl::Status Parse(const std::vector<std::string>& args);

  const std::vector<std::string>& positional() const { return positional_; }
  bool help_requested() const { return help_requested_; }
  std::string Help() const;

 private:
  enum class Kind { kString, kInt, kDouble, kBool, kRepeated };
  struct Flag {
    std::string name;
    Kind kind;
    void* target;
    std::string help;
  };
  const Flag* Find(absl::string_view name) const;
  absl::Status Assign(const Flag& flag, absl::string_view value);

  std::string usage_;
  std::vector<Flag> flags_;
  std::vector<std::string> positional_;
  bool help_requested_ = false;
};

}  // namespace lumen
