#include "engine/gguf/gguf_writer.h"

#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"

namespace lumen::engine {

namespace {

constexpr uint64_t kAlignment = 32;

template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

void PutString(std::string* out, absl::string_view s) {
  Put<uint64_t>(out, s.size());
  out->append(s.data(), s.size());
}

void PutValueBody(std::string* out, const GgufValue& v) {
  switch (v.type) {
    case GgufValueType::kUint8:
      Put<uint8_t>(out, v.u64);
      break;
    case GgufValueType::kInt8:
      Put<int8_t>(out, v.i64);
      break;
    case GgufValueType::kUint16:
      Put<uint16_t>(out, v.u64);
      break;
    case GgufValueType::kInt16:
      Put<int16_t>(out, v.i64);
      break;
    case GgufValueType::kUint32:
      Put<uint32_t>(out, v.u64);
      break;
    case GgufValueType::kInt32:
      Put<int32_t>(out, v.i64);
      break;
    case GgufValueType::kUint64:
      Put<uint64_t>(out, v.u64);
      break;
    case GgufValueType::kInt64:
      Put<int64_t>(out, v.i64);
      break;
    case GgufValueType::kFloat32:
      Put<float>(out, v.f64);
      break;
    case GgufValueType::kFloat64:
      Put<double>(out, v.f64);
      break;
    case GgufValueType::kBool:
      Put<uint8_t>(out, v.b ? 1 : 0);
      break;
    case GgufValueType::kString:
      PutString(out, v.str);
      break;
    case GgufValueType::kArray:
      Put<uint32_t>(out, static_cast<uint32_t>(v.elem_type));
      Put<uint64_t>(out, v.elems.size());
      for (const GgufValue& e : v.elems) PutValueBody(out, e);
      break;
  }
}

}  // namespace

void GgufWriter::Set(std::string key, std::string encoded) {
  for (Entry& e : metadata_) {
    if (e.key == key) {
      e.encoded = std::move(encoded);
      return;
    }
  }
  metadata_.push_back({std::move(key), std::move(encoded)});
}

void GgufWriter::SetString(std::string key, std::string value) {
  std::string enc;
  Put<uint32_t>(&enc, static_cast<uint32_t>(GgufValueType::kString));
  PutString(&enc, value);
  Set(std::move(key), std::move(enc));
}
void GgufWriter::SetUint32(std::string key, uint32_t value) {
  std::string enc;
  Put<uint32_t>(&enc, static_cast<uint32_t>(GgufValueType::kUint32));
  Put<uint32_t>(&enc, value);
  Set(std::move(key), std::move(enc));
}
void GgufWriter::SetInt32(std::string key, int32_t value) {
  std::string enc;
  Put<uint32_t>(&enc, static_cast<uint32_t>(GgufValueType::kInt32));
  Put<int32_t>(&enc, value);
  Set(std::move(key), std::move(enc));
}
void GgufWriter::SetFloat32(std::string key, float value) {
  std::string enc;
  Put<uint32_t>(&enc, static_cast<uint32_t>(GgufValueType::kFloat32));
  Put<float>(&enc, value);
  Set(std::move(key), std::move(enc));
}
void GgufWriter::SetBool(std::string key, bool value) {
  std::string enc;
  Put<uint32_t>(&enc, static_cast<uint32_t>(GgufValueType::kBool));
  Put<uint8_t>(&enc, value ? 1 : 0);
  Set(std::move(key), std::move(enc));
}
void GgufWriter::SetStringArray(std::string key,
                                std::vector<std::string> values) {
  std::string enc;
  Put<uint32_t>(&enc, static_cast<uint32_t>(GgufValueType::kArray));
  Put<uint32_t>(&enc, static_cast<uint32_t>(GgufValueType::kString));
  Put<uint64_t>(&enc, values.size());
  for (const std::string& s : values) PutString(&enc, s);
  Set(std::move(key), std::move(enc));
}
void GgufWriter::SetFloat32Array(std::string key, std::vector<float> values) {
  std::string enc;
  Put<uint32_t>(&enc, static_cast<uint32_t>(GgufValueType::kArray));
  Put<uint32_t>(&enc, static_cast<uint32_t>(GgufValueType::kFloat32));
  Put<uint64_t>(&enc, values.size());
  for (float f : values) Put<float>(&enc, f);
  Set(std::move(key), std::move(enc));
}
void GgufWriter::SetInt32Array(std::string key, std::vector<int32_t> values) {
  std::string enc;
  Put<uint32_t>(&enc, static_cast<uint32_t>(GgufValueType::kArray));
  Put<uint32_t>(&enc, static_cast<uint32_t>(GgufValueType::kInt32));
  Put<uint64_t>(&enc, values.size());
  for (int32_t v : values) Put<int32_t>(&enc, v);
  Set(std::move(key), std::move(enc));
}
void GgufWriter::CopyValue(std::string key, const GgufValue& value) {
  std::string enc;
  Put<uint32_t>(&enc, static_cast<uint32_t>(value.type));
  PutValueBody(&enc, value);
  Set(std::move(key), std::move(enc));
}

absl::Status GgufWriter::AddTensor(std::string name, GgmlType type,
                                   std::vector<int64_t> dims,
                                   std::vector<uint8_t> data) {
  auto traits = GgmlTypeTraitsOf(static_cast<uint32_t>(type));
  if (!traits) return absl::InvalidArgumentError("unknown ggml type");
  if (dims.empty() || dims.size() > 4 || dims[0] % traits->block_size != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", name, ": bad dims for ", traits->name));
  }
  uint64_t n = 1;
  for (int64_t d : dims) n *= static_cast<uint64_t>(d);
  const uint64_t want = n / traits->block_size * traits->type_size;
  if (data.size() != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", name, ": ", data.size(), " bytes given, ", want,
                     " expected"));
  }
  tensors_.push_back({std::move(name), type, std::move(dims), std::move(data)});
  return absl::OkStatus();
}

absl::Status GgufWriter::Write(const std::string& path) const {
  std::string header;
  Put<uint32_t>(&header, 0x46554747);
  Put<uint32_t>(&header, 3);
  Put<uint64_t>(&header, tensors_.size());
  Put<uint64_t>(&header, metadata_.size());
  for (const Entry& e : metadata_) {
    PutString(&header, e.key);
    header += e.encoded;
  }
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const Tensor& t : tensors_) {
    PutString(&header, t.name);
    Put<uint32_t>(&header, t.dims.size());
    for (int64_t d : t.dims) Put<uint64_t>(&header, d);
    Put<uint32_t>(&header, static_cast<uint32_t>(t.type));
    Put<uint64_t>(&header, offset);
    offsets.push_back(offset);
    offset += (t.data.size() + kAlignment - 1) / kAlignment * kAlignment;
  }
  header.resize((header.size() + kAlignment - 1) / kAlignment * kAlignment, 0);

  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"),
                                          &std::fclose);
  if (!f) {
    return absl::InternalError(
        absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
  }
  bool ok =
      std::fwrite(header.data(), 1, header.size(), f.get()) == header.size();
  static const char kZeros[kAlignment] = {};
  for (const Tensor& t : tensors_) {
    if (!ok) break;
    ok = std::fwrite(t.data.data(), 1, t.data.size(), f.get()) == t.data.size();
    const size_t pad = (kAlignment - t.data.size() % kAlignment) % kAlignment;
    ok = ok && std::fwrite(kZeros, 1, pad, f.get()) == pad;
  }
  if (!ok || std::fflush(f.get()) != 0) {
    return absl::InternalError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

}  // namespace lumen::engine
