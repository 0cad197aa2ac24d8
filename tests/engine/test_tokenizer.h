#pragma once
// The tokenizer test programs' way to open a vocabulary of the shared test
// data.

#include <memory>
#include <string>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::testing {

// The tokenizer of TestDataPath(relative); nullptr (and a failed
// expectation) when the file does not open or has no usable vocabulary.
inline std::unique_ptr<engine::Tokenizer> LoadTestTokenizer(
    const std::string& relative) {
  auto file = engine::GgufFile::Open(TestDataPath(relative));
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return nullptr;
  auto tokenizer = engine::Tokenizer::FromGguf(**file);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

}  // namespace lumen::testing
