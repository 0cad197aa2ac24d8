// base/unicode: strict UTF-8 validation against a naive decoder written from
// the definition (Unicode 3.9, D92), the replacement practice of Unicode's
// Table 3-8 example, and spot checks of the category and White_Space tables.

#include "base/unicode.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace lumen {
namespace {

// Naive reference: decode each sequence by its lead byte's length, then reject
// what the definition excludes (overlong forms, surrogates, > U+10FFFF).
bool ReferenceIsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned lead = static_cast<unsigned char>(s[i]);
    int len;
    uint32_t cp;
    if (lead < 0x80) {
      len = 1;
      cp = lead;
    } else if (lead >> 5 == 0x6) {
      len = 2;
      cp = lead & 0x1F;
    } else if (lead >> 4 == 0xE) {
      len = 3;
      cp = lead & 0x0F;
    } else if (lead >> 3 == 0x1E) {
      len = 4;
      cp = lead & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      const unsigned b = static_cast<unsigned char>(s[i + k]);
      if (b >> 6 != 0x2) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    const uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len]) return false;  // overlong
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;
    if (cp > 0x10FFFF) return false;
    i += len;
  }
  return true;
}

TEST(Utf8ValidationTest, Table) {
  struct Case {
    std::string bytes;
    bool valid;
  };
  const Case cases[] = {
      {"", true},
      {"plain ascii", true},
      {"\xc3\xa9", true},                  // é
      {"\xe4\xbd\xa0\xe5\xa5\xbd", true},  // 你好
      {"\xf0\x9f\x98\x80", true},          // 😀
      {"\xf4\x8f\xbf\xbf", true},          // U+10FFFF
      {"\xef\xbf\xbd", true},              // U+FFFD itself
      {"\xe4", false},                     // lead byte alone (byte fallback)
      {"\xe4\xbd", false},                 // truncated
      {"\x80", false},                     // stray continuation
      {"\xc0\x80", false},                 // overlong NUL
      {"\xc1\xbf", false},                 // overlong
      {"\xe0\x80\xaf", false},             // overlong
      {"\xed\xa0\x80", false},             // surrogate U+D800
      {"\xf4\x90\x80\x80", false},         // U+110000
      {"\xf5\x80\x80\x80", false},         // lead beyond F4
      {"\xff", false},
      {"a\xe4z", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(IsValidUtf8(c.bytes), c.valid)
        << ::testing::PrintToString(c.bytes);
    EXPECT_EQ(ReferenceIsValidUtf8(c.bytes), c.valid)
        << ::testing::PrintToString(c.bytes);
  }
}

TEST(Utf8ValidationTest, AgreesWithReferenceOnRandomBytes) {
  // Bytes drawn mostly from the interesting edges of the lead and
  // continuation ranges, so that most strings are near-misses.
  const unsigned char alphabet[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F,
                                    0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
                                    0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1,
                                    0xF3, 0xF4, 0xF5, 0xFF};
  std::mt19937 rng(12);
  std::uniform_int_distribution<int> pick(0, sizeof(alphabet) - 1);
  std::uniform_int_distribution<int> length(0, 6);
  int valid = 0;
  for (int iter = 0; iter < 200000; ++iter) {
    std::string s;
    for (int n = length(rng); n > 0; --n) s.push_back(alphabet[pick(rng)]);
    const bool want = ReferenceIsValidUtf8(s);
    ASSERT_EQ(IsValidUtf8(s), want) << ::testing::PrintToString(s);
    valid += want;
    const std::string fixed = ToValidUtf8(s);
    ASSERT_TRUE(ReferenceIsValidUtf8(fixed)) << ::testing::PrintToString(s);
    if (want) {
      ASSERT_EQ(fixed, s);
    }
    // Utf8CharLength agrees with the reference on the first character.
    const size_t len = Utf8CharLength(s);
    if (len > 0) {
      ASSERT_TRUE(ReferenceIsValidUtf8(s.substr(0, len)));
    }
  }
  EXPECT_GT(valid, 1000);  // the alphabet does produce valid strings too
}

TEST(Utf8ValidationTest, ReplacesMaximalSubpartsAsUnicodeRecommends) {
  // The example of Unicode 15, section 3.9, Table 3-8.
  EXPECT_EQ(ToValidUtf8("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a\uFFFD\uFFFD\uFFFDb\uFFFDc\uFFFD\uFFFDd");
  EXPECT_EQ(ToValidUtf8("\xe4\xbd"), "\uFFFD");  // truncated tail: one U+FFFD
  EXPECT_EQ(ToValidUtf8("\xed\xa0\x80"), "\uFFFD\uFFFD\uFFFD");  // surrogate
  EXPECT_EQ(ToValidUtf8("ok \xe4\xbd\xa0"), "ok \xe4\xbd\xa0");
}

TEST(Utf8Test, CharLength) {
  EXPECT_EQ(Utf8CharLength(""), 0u);
  EXPECT_EQ(Utf8CharLength("ab"), 1u);
  EXPECT_EQ(Utf8CharLength("\xe4\xbd\xa0!"), 3u);
  EXPECT_EQ(Utf8CharLength("\xf0\x9f\x98\x80"), 4u);
  EXPECT_EQ(Utf8CharLength("\xe4\xbd"), 0u);
  EXPECT_EQ(Utf8CharLength("\xbd\xa0"), 0u);
}

TEST(Utf8Test, IncompleteSuffix) {
  const std::string zh = "\xe4\xbd\xa0";  // 你
  EXPECT_EQ(IncompleteUtf8Suffix(zh), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix(zh.substr(0, 2)), 2u);
  EXPECT_EQ(IncompleteUtf8Suffix("a" + zh.substr(0, 1)), 1u);
  EXPECT_EQ(IncompleteUtf8Suffix("abc"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("\xf0\x9f\x98"), 3u);
  // Nothing can complete these: they are not held back.
  EXPECT_EQ(IncompleteUtf8Suffix("a\x80"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("\xe0\x80"), 0u);  // overlong start
  EXPECT_EQ(IncompleteUtf8Suffix("\xed\xa0"), 0u);  // surrogate start
  EXPECT_EQ(IncompleteUtf8Suffix("\xc0"), 0u);
}

TEST(Utf8Test, DecodeIsLenientLikeLlamaCpp) {
  // Each byte that does not start a sequence becomes U+FFFD; decoding goes on.
  EXPECT_EQ(DecodeUtf8("a\x80"
                       "b\xe4\xbd\xa0"),
            (std::vector<uint32_t>{'a', 0xFFFD, 'b', 0x4F60}));
  EXPECT_EQ(DecodeUtf8("\xe4z"), (std::vector<uint32_t>{0xFFFD, 'z'}));
  std::string out;
  for (uint32_t cp : {0x41u, 0xE9u, 0x4F60u, 0x1F600u}) AppendUtf8(cp, &out);
  EXPECT_EQ(out, "A\xc3\xa9\xe4\xbd\xa0\xf0\x9f\x98\x80");
  EXPECT_EQ(EncodeUtf8(DecodeUtf8(out)), out);
}

TEST(UnicodeCategoryTest, SpotChecks) {
  EXPECT_EQ(CodepointCategory('A'), kCpLetter);
  EXPECT_EQ(CodepointCategory('7'), kCpNumber);
  EXPECT_EQ(CodepointCategory('!'), kCpPunctuation);
  EXPECT_EQ(CodepointCategory('+'), kCpSymbol);
  EXPECT_EQ(CodepointCategory(' '), kCpSeparator);
  EXPECT_EQ(CodepointCategory('\n'), kCpControl);
  EXPECT_EQ(CodepointCategory(0x0939), kCpLetter);       // ह
  EXPECT_EQ(CodepointCategory(0x093F), kCpMark);         // ि (Mc)
  EXPECT_EQ(CodepointCategory(0x094D), kCpMark);         // ् (Mn)
  EXPECT_EQ(CodepointCategory(0x3002), kCpPunctuation);  // 。
  EXPECT_EQ(CodepointCategory(0x0378), 0);               // unassigned
  EXPECT_TRUE(IsWhitespace(0x3000));
  EXPECT_TRUE(IsWhitespace(0x85));
  EXPECT_FALSE(IsWhitespace(0x200B));  // zero width space is not White_Space
}

}  // namespace
}  // namespace lumen
