#include "engine/gguf/gguf_file.h"

#include <unistd.h>

#include <cstring>

#include "engine/gguf/gguf_writer.h"
#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::engine {
namespace {

using ::testing::HasSubstr;

TEST(GgufFileTest, ParsesStories260K) {
  auto f = GgufFile::Open(testing::TestDataPath("models/stories260K.gguf"));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->version(), 3u);
  EXPECT_EQ((*f)->tensors().size(), 48u);
  EXPECT_EQ(*(*f)->GetString("general.architecture"), "llama");
  EXPECT_EQ(*(*f)->GetInt("llama.embedding_length"), 64);
  EXPECT_EQ(*(*f)->GetInt("llama.block_count"), 5);
  EXPECT_EQ(*(*f)->GetInt("llama.attention.head_count_kv"), 4);
  auto tokens = (*f)->GetArray("tokenizer.ggml.tokens", GgufValueType::kString);
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ((*tokens)->elems.size(), 512u);
  const GgufTensorInfo* emb = (*f)->FindTensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->dims, (std::vector<int64_t>{64, 512}));
  EXPECT_EQ(emb->type, GgmlType::kF32);
  EXPECT_EQ((*f)->TensorData(*emb).size(), 64u * 512 * 4);
  uint64_t params = 0;
  for (const auto& t : (*f)->tensors()) params += t.num_elements;
  EXPECT_EQ(params, 292800u);
  EXPECT_THAT(
      (*f)->GetInt("llama.missing"),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("llama.missing")));
  EXPECT_THAT((*f)->GetString("llama.block_count"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("expected string")));
}

// Builds a small file with every metadata type, nested arrays and a tensor.
std::string WriteSample(const std::string& dir) {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetUint32("a.u32", 7);
  w.SetInt32("a.i32", -3);
  w.SetFloat32("a.f32", 0.5f);
  w.SetBool("a.bool", true);
  w.SetStringArray("a.strs", {"x", "", "yz"});
  w.SetInt32Array("a.i32s", {1, -2, 3});
  GgufValue nested;
  nested.type = GgufValueType::kArray;
  nested.elem_type = GgufValueType::kArray;
  for (int i = 0; i < 2; ++i) {
    GgufValue inner;
    inner.type = GgufValueType::kArray;
    inner.elem_type = GgufValueType::kUint64;
    for (int k = 0; k <= i; ++k) {
      GgufValue e;
      e.type = GgufValueType::kUint64;
      e.u64 = 1000 + k;
      inner.elems.push_back(e);
    }
    nested.elems.push_back(inner);
  }
  w.CopyValue("a.nested", nested);
  GgufValue f64;
  f64.type = GgufValueType::kFloat64;
  f64.f64 = 2.25;
  w.CopyValue("a.f64", f64);
  std::vector<uint8_t> data(4 * 3 * 2);
  for (size_t i = 0; i < data.size(); ++i) data[i] = i;
  EXPECT_TRUE(w.AddTensor("t", GgmlType::kF32, {3, 2}, data).ok());
  const std::string path = dir + "/sample.gguf";
  EXPECT_TRUE(w.Write(path).ok());
  return path;
}

TEST(GgufFileTest, WriterRoundTripsEveryValueType) {
  const std::string path = WriteSample(testing::MakeTempDir());
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(*(*f)->GetInt("a.u32"), 7);
  EXPECT_EQ(*(*f)->GetInt("a.i32"), -3);
  EXPECT_EQ(*(*f)->GetFloat("a.f32"), 0.5);
  EXPECT_EQ(*(*f)->GetFloat("a.f64"), 2.25);
  EXPECT_TRUE(*(*f)->GetBool("a.bool"));
  const GgufValue* strs = *(*f)->GetArray("a.strs", GgufValueType::kString);
  ASSERT_EQ(strs->elems.size(), 3u);
  EXPECT_EQ(strs->elems[2].str, "yz");
  const GgufValue* nested = *(*f)->GetArray("a.nested", GgufValueType::kArray);
  ASSERT_EQ(nested->elems.size(), 2u);
  ASSERT_EQ(nested->elems[1].elems.size(), 2u);
  EXPECT_EQ(nested->elems[1].elems[1].u64, 1001u);
  const GgufTensorInfo* t = (*f)->FindTensor("t");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ((*f)->TensorData(*t)[5], 5);
  EXPECT_EQ((*f)->data_offset() % 32, 0u);
}

// Weights are read with pread from an opened file and copied from bytes
// that were parsed: both give the tensor's bytes, ranges past the tensor are
// refused, and a file cut short after opening is data loss, not a crash.
TEST(GgufFileTest, ReadsTensorBytesFromTheFileAndFromParsedBytes) {
  const std::string path = WriteSample(testing::MakeTempDir());
  auto opened = GgufFile::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const std::string contents = testing::ReadFile(path);
  const std::vector<uint8_t> copy(contents.begin(), contents.end());
  auto parsed = GgufFile::Parse(copy);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  for (const GgufFile* f : {opened->get(), parsed->get()}) {
    const GgufTensorInfo* t = f->FindTensor("t");
    ASSERT_NE(t, nullptr);
    std::vector<uint8_t> out(10, 0xee);
    ASSERT_TRUE(f->ReadTensorBytes(*t, 7, out).ok());
    for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], 7 + i) << i;
    EXPECT_THAT(f->ReadTensorBytes(*t, 20, out),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("outside its 24 bytes")));
    EXPECT_THAT(f->ReadTensorBytes(*t, 25, {}),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("outside its 24 bytes")));
  }
  const GgufTensorInfo* t = (*opened)->FindTensor("t");
  // The file now ends 4 bytes before the tensor does.
  ASSERT_EQ(::truncate(path.c_str(), (*opened)->data_offset() + t->offset + 20),
            0);
  std::vector<uint8_t> tail(8);
  EXPECT_THAT((*opened)->ReadTensorBytes(*t, 16, tail),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("tensor 't': ")));
  EXPECT_THAT((*opened)->ReadTensorBytes(*t, 16, tail),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("changed since it was opened")));
}

std::vector<uint8_t> Bytes(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

template <typename T>
void Poke(std::vector<uint8_t>* b, size_t at, T v) {
  std::memcpy(b->data() + at, &v, sizeof(T));
}

class GgufCorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    good_ = Bytes(testing::ReadFile(WriteSample(testing::MakeTempDir())));
    ASSERT_TRUE(GgufFile::Parse(good_).ok());
  }
  absl::Status ParseWith(std::vector<uint8_t> b) {
    return GgufFile::Parse(b).status();
  }
  std::vector<uint8_t> good_;
};

TEST_F(GgufCorruptionTest, BadMagic) {
  auto b = good_;
  b[0] = 'X';
  EXPECT_THAT(
      ParseWith(b),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("bad magic (not a GGUF file) at byte offset 0")));
}

TEST_F(GgufCorruptionTest, UnsupportedVersion) {
  auto b = good_;
  Poke<uint32_t>(&b, 4, 1);
  EXPECT_THAT(ParseWith(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unsupported GGUF version 1 (supported: 2, 3) "
                                 "at byte offset 4")));
}

TEST_F(GgufCorruptionTest, AbsurdCounts) {
  auto b = good_;
  Poke<uint64_t>(&b, 16, uint64_t{1} << 60);
  EXPECT_THAT(
      ParseWith(b),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("metadata count 1152921504606846976 cannot fit")));
  b = good_;
  Poke<uint64_t>(&b, 8, uint64_t{1} << 40);
  EXPECT_THAT(ParseWith(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tensor count 1099511627776 cannot fit")));
}

TEST_F(GgufCorruptionTest, StringPastEnd) {
  auto b = good_;
  // First key length sits at offset 24.
  Poke<uint64_t>(&b, 24, uint64_t{1} << 50);
  EXPECT_THAT(ParseWith(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("runs past the end of the file")));
}

TEST_F(GgufCorruptionTest, Truncated) {
  std::vector<uint8_t> b(good_.begin(), good_.begin() + 30);
  EXPECT_THAT(ParseWith(b), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("metadata count 9 cannot fit")));
  b.assign(good_.begin(), good_.begin() + 200);
  EXPECT_THAT(ParseWith(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("runs past the end of the file")));
}

TEST_F(GgufCorruptionTest, TensorOutsideDataSection) {
  // Drop the last data bytes: the tensor now overruns the file.
  std::vector<uint8_t> b(good_.begin(), good_.end() - 16);
  EXPECT_THAT(ParseWith(b), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("outside the data section")));
}

// Finds the tensor info of "t" and returns the offset of its n_dims field.
size_t TensorInfoOffset(const std::vector<uint8_t>& b) {
  const char needle[] = {1, 0, 0, 0, 0, 0, 0, 0, 't'};
  for (size_t i = 0; i + sizeof(needle) <= b.size(); ++i) {
    if (std::memcmp(b.data() + i, needle, sizeof(needle)) == 0) {
      return i + sizeof(needle);
    }
  }
  return 0;
}

TEST_F(GgufCorruptionTest, UnknownTypeAndOverflow) {
  const size_t at = TensorInfoOffset(good_);
  ASSERT_GT(at, 0u);
  auto b = good_;
  Poke<uint32_t>(&b, at + 4 + 16, 31);  // a retired ggml type id
  EXPECT_THAT(ParseWith(b), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("unknown ggml type 31")));
  b = good_;
  Poke<uint64_t>(&b, at + 4, uint64_t{1} << 40);
  Poke<uint64_t>(&b, at + 12, uint64_t{1} << 40);
  EXPECT_THAT(ParseWith(b), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("overflows 64 bits")));
  b = good_;
  Poke<uint64_t>(&b, at + 4 + 16 + 4, 7);  // misaligned data offset
  EXPECT_THAT(ParseWith(b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a multiple of the alignment")));
}

TEST(GgmlTypeTest, NamesEveryCurrentType) {
  EXPECT_EQ(GgmlTypeName(GgmlType::kQ8_0), "q8_0");
  EXPECT_EQ(GgmlTypeName(GgmlType::kBF16), "bf16");
  EXPECT_EQ(GgmlTypeName(GgmlType::kMXFP4), "mxfp4");
  EXPECT_EQ(GgmlTypeName(static_cast<GgmlType>(4)), "unknown(4)");
  int known = 0;
  for (uint32_t id = 0; id < 64; ++id)
    known += GgmlTypeTraitsOf(id).has_value();
  EXPECT_EQ(known, 32);
}

}  // namespace
}  // namespace lumen::engine
