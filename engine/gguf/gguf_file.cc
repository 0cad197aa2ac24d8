#include "engine/gguf/gguf_file.h"

#include <cstring>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace lumen::engine {

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxArrayDepth = 8;
constexpr int kMaxDims = 4;  // GGML_MAX_DIMS

bool IsIntegerType(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool IsSignedType(GgufValueType t) {
  return t == GgufValueType::kInt8 || t == GgufValueType::kInt16 ||
         t == GgufValueType::kInt32 || t == GgufValueType::kInt64;
}

// Smallest encoded size of one value of `t`, used to bound counts before
// allocating anything.
uint64_t MinEncodedSize(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
    case GgufValueType::kString:
      return 8;
    case GgufValueType::kArray:
      return 12;
  }
  return 1;
}

// A bounds-checked little-endian cursor over the file.
class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  uint64_t offset() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("gguf: ", what, " at byte offset ", pos_));
  }

  template <typename T>
  absl::StatusOr<T> Read(absl::string_view what) {
    if (remaining() < sizeof(T)) {
      return Error(absl::StrCat(what, " runs past the end of the file (",
                                bytes_.size(), " bytes)"));
    }
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  absl::StatusOr<absl::string_view> ReadString(absl::string_view what) {
    const uint64_t at = pos_;
    ASSIGN_OR_RETURN(uint64_t len, Read<uint64_t>(what));
    if (len > remaining()) {
      pos_ = at;
      return Error(absl::StrCat(what, " of length ", len,
                                " runs past the end of the file"));
    }
    absl::string_view s(reinterpret_cast<const char*>(bytes_.data() + pos_),
                        len);
    pos_ += len;
    return s;
  }

  absl::Status ReadValue(GgufValueType type, GgufValue* out, int depth) {
    out->type = type;
    switch (type) {
      case GgufValueType::kUint8: {
        ASSIGN_OR_RETURN(uint8_t v, Read<uint8_t>("uint8 value"));
        out->u64 = v;
        return absl::OkStatus();
      }
      case GgufValueType::kInt8: {
        ASSIGN_OR_RETURN(int8_t v, Read<int8_t>("int8 value"));
        out->i64 = v;
        return absl::OkStatus();
      }
      case GgufValueType::kUint16: {
        ASSIGN_OR_RETURN(uint16_t v, Read<uint16_t>("uint16 value"));
        out->u64 = v;
        return absl::OkStatus();
      }
      case GgufValueType::kInt16: {
        ASSIGN_OR_RETURN(int16_t v, Read<int16_t>("int16 value"));
        out->i64 = v;
        return absl::OkStatus();
      }
      case GgufValueType::kUint32: {
        ASSIGN_OR_RETURN(uint32_t v, Read<uint32_t>("uint32 value"));
        out->u64 = v;
        return absl::OkStatus();
      }
      case GgufValueType::kInt32: {
        ASSIGN_OR_RETURN(int32_t v, Read<int32_t>("int32 value"));
        out->i64 = v;
        return absl::OkStatus();
      }
      case GgufValueType::kUint64: {
        ASSIGN_OR_RETURN(out->u64, Read<uint64_t>("uint64 value"));
        return absl::OkStatus();
      }
      case GgufValueType::kInt64: {
        ASSIGN_OR_RETURN(out->i64, Read<int64_t>("int64 value"));
        return absl::OkStatus();
      }
      case GgufValueType::kFloat32: {
        ASSIGN_OR_RETURN(float v, Read<float>("float32 value"));
        out->f64 = v;
        return absl::OkStatus();
      }
      case GgufValueType::kFloat64: {
        ASSIGN_OR_RETURN(out->f64, Read<double>("float64 value"));
        return absl::OkStatus();
      }
      case GgufValueType::kBool: {
        ASSIGN_OR_RETURN(uint8_t v, Read<uint8_t>("bool value"));
        if (v > 1) {
          pos_ -= 1;
          return Error(absl::StrCat("bool value ", v, " is neither 0 nor 1"));
        }
        out->b = v != 0;
        return absl::OkStatus();
      }
      case GgufValueType::kString: {
        ASSIGN_OR_RETURN(out->str, ReadString("string value"));
        return absl::OkStatus();
      }
      case GgufValueType::kArray: {
        if (depth >= kMaxArrayDepth) {
          return Error(absl::StrCat("arrays nested deeper than ",
                                    kMaxArrayDepth, " levels"));
        }
        ASSIGN_OR_RETURN(uint32_t elem, Read<uint32_t>("array element type"));
        if (elem > static_cast<uint32_t>(GgufValueType::kFloat64)) {
          pos_ -= 4;
          return Error(absl::StrCat("unknown array element type ", elem));
        }
        out->elem_type = static_cast<GgufValueType>(elem);
        const uint64_t count_at = pos_;
        ASSIGN_OR_RETURN(uint64_t count, Read<uint64_t>("array length"));
        if (count > remaining() / MinEncodedSize(out->elem_type)) {
          pos_ = count_at;
          return Error(absl::StrCat("array of ", count, " ",
                                    GgufValueTypeName(out->elem_type),
                                    " elements runs past the end of the file"));
        }
        out->elems.resize(count);
        for (GgufValue& e : out->elems) {
          RETURN_IF_ERROR(ReadValue(out->elem_type, &e, depth + 1));
        }
        return absl::OkStatus();
      }
    }
    return Error(
        absl::StrCat("unknown value type ", static_cast<uint32_t>(type)));
  }

  void Seek(uint64_t pos) { pos_ = pos; }

 private:
  std::span<const uint8_t> bytes_;
  uint64_t pos_ = 0;
};

bool MulOverflows(uint64_t a, uint64_t b, uint64_t* out) {
  return __builtin_mul_overflow(a, b, out);
}

}  // namespace

absl::string_view GgufValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
      return "uint8";
    case GgufValueType::kInt8:
      return "int8";
    case GgufValueType::kUint16:
      return "uint16";
    case GgufValueType::kInt16:
      return "int16";
    case GgufValueType::kUint32:
      return "uint32";
    case GgufValueType::kInt32:
      return "int32";
    case GgufValueType::kFloat32:
      return "float32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kUint64:
      return "uint64";
    case GgufValueType::kInt64:
      return "int64";
    case GgufValueType::kFloat64:
      return "float64";
  }
  return "unknown";
}

bool GgufValue::is_integer() const { return IsIntegerType(type); }

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(
    const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapping, MappedFile::Open(path));
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->bytes_ = mapping->bytes();
  file->mapping_ = std::move(mapping);
  file->path_ = path;
  if (absl::Status s = file->ParseAll(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  }
  return file;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Parse(
    std::span<const uint8_t> bytes) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->bytes_ = bytes;
  file->path_ = "<memory>";
  RETURN_IF_ERROR(file->ParseAll());
  return file;
}

absl::Status GgufFile::ParseAll() {
  Cursor c(bytes_);
  ASSIGN_OR_RETURN(uint32_t magic, c.Read<uint32_t>("magic"));
  if (magic != kGgufMagic) {
    c.Seek(0);
    return c.Error("bad magic (not a GGUF file)");
  }
  ASSIGN_OR_RETURN(version_, c.Read<uint32_t>("version"));
  if (version_ != 2 && version_ != 3) {
    c.Seek(4);
    return c.Error(absl::StrCat("unsupported GGUF version ", version_,
                                " (supported: 2, 3)"));
  }
  const uint64_t tensor_count_at = c.offset();
  ASSIGN_OR_RETURN(uint64_t tensor_count, c.Read<uint64_t>("tensor count"));
  const uint64_t kv_count_at = c.offset();
  ASSIGN_OR_RETURN(uint64_t kv_count, c.Read<uint64_t>("metadata count"));
  // A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes; a
  // tensor info at least 8 + 4 + 8 + 4 + 8.
  if (kv_count > c.remaining() / 13) {
    c.Seek(kv_count_at);
    return c.Error(absl::StrCat("metadata count ", kv_count,
                                " cannot fit in the ", c.remaining(),
                                " bytes that remain (truncated or corrupt)"));
  }
  if (tensor_count > c.remaining() / 32) {
    c.Seek(tensor_count_at);
    return c.Error(absl::StrCat("tensor count ", tensor_count,
                                " cannot fit in the ", c.remaining(),
                                " bytes that remain (truncated or corrupt)"));
  }

  metadata_.resize(kv_count);
  absl::flat_hash_set<absl::string_view> keys;
  for (GgufKeyValue& kv : metadata_) {
    const uint64_t key_at = c.offset();
    ASSIGN_OR_RETURN(kv.key, c.ReadString("metadata key"));
    if (!keys.insert(kv.key).second) {
      c.Seek(key_at);
      return c.Error(absl::StrCat("duplicate metadata key '", kv.key, "'"));
    }
    ASSIGN_OR_RETURN(uint32_t type, c.Read<uint32_t>("metadata value type"));
    if (type > static_cast<uint32_t>(GgufValueType::kFloat64)) {
      c.Seek(c.offset() - 4);
      return c.Error(absl::StrCat("unknown metadata value type ", type,
                                  " for key '", kv.key, "'"));
    }
    RETURN_IF_ERROR(
        c.ReadValue(static_cast<GgufValueType>(type), &kv.value, 0));
  }

  if (const GgufValue* a = Find("general.alignment")) {
    if (!a->is_integer() || a->u64 == 0 || (a->u64 & (a->u64 - 1)) != 0 ||
        a->u64 > (1u << 20)) {
      return absl::InvalidArgumentError(
          "gguf: general.alignment must be a power of two integer <= 1 MiB");
    }
    alignment_ = a->u64;
  }

  tensors_.resize(tensor_count);
  absl::flat_hash_set<absl::string_view> names;
  for (GgufTensorInfo& t : tensors_) {
    const uint64_t info_at = c.offset();
    ASSIGN_OR_RETURN(t.name, c.ReadString("tensor name"));
    if (!names.insert(t.name).second) {
      c.Seek(info_at);
      return c.Error(absl::StrCat("duplicate tensor name '", t.name, "'"));
    }
    ASSIGN_OR_RETURN(uint32_t n_dims,
                     c.Read<uint32_t>("tensor dimension count"));
    if (n_dims == 0 || n_dims > kMaxDims) {
      c.Seek(c.offset() - 4);
      return c.Error(absl::StrCat("tensor '", t.name, "' has ", n_dims,
                                  " dimensions (1 to 4 allowed)"));
    }
    t.dims.resize(n_dims);
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      ASSIGN_OR_RETURN(uint64_t dim, c.Read<uint64_t>("tensor dimension"));
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          MulOverflows(elements, dim, &elements)) {
        c.Seek(c.offset() - 8);
        return c.Error(absl::StrCat("tensor '", t.name,
                                    "' element count overflows 64 bits"));
      }
      t.dims[d] = static_cast<int64_t>(dim);
    }
    t.num_elements = elements;
    ASSIGN_OR_RETURN(uint32_t type_id, c.Read<uint32_t>("tensor type"));
    auto traits = GgmlTypeTraitsOf(type_id);
    if (!traits) {
      c.Seek(c.offset() - 4);
      return c.Error(absl::StrCat("tensor '", t.name,
                                  "' has unknown ggml type ", type_id));
    }
    t.type = static_cast<GgmlType>(type_id);
    if (t.dims[0] % traits->block_size != 0) {
      c.Seek(c.offset() - 4);
      return c.Error(absl::StrCat("tensor '", t.name, "' row of ", t.dims[0],
                                  " elements is not a multiple of the ",
                                  traits->name, " block size ",
                                  traits->block_size));
    }
    uint64_t bytes = 0;
    if (MulOverflows(elements / traits->block_size, traits->type_size,
                     &bytes)) {
      return c.Error(
          absl::StrCat("tensor '", t.name, "' byte size overflows 64 bits"));
    }
    t.num_bytes = bytes;
    const uint64_t offset_at = c.offset();
    ASSIGN_OR_RETURN(t.offset, c.Read<uint64_t>("tensor data offset"));
    if (t.offset % alignment_ != 0) {
      c.Seek(offset_at);
      return c.Error(
          absl::StrCat("tensor '", t.name, "' data offset ", t.offset,
                       " is not a multiple of the alignment ", alignment_));
    }
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t header_end = c.offset();
  data_offset_ = (header_end + alignment_ - 1) / alignment_ * alignment_;
  if (tensor_count > 0 && data_offset_ > bytes_.size()) {
    return c.Error("data section starts past the end of the file");
  }
  const uint64_t data_size =
      data_offset_ <= bytes_.size() ? bytes_.size() - data_offset_ : 0;
  for (const GgufTensorInfo& t : tensors_) {
    if (t.offset > data_size || t.num_bytes > data_size - t.offset) {
      return absl::InvalidArgumentError(absl::StrCat(
          "gguf: tensor '", t.name, "' data [", data_offset_ + t.offset, ", +",
          t.num_bytes, ") lies outside the data section [", data_offset_, ", ",
          bytes_.size(), ")"));
    }
  }
  return absl::OkStatus();
}

const GgufValue* GgufFile::Find(absl::string_view key) const {
  for (const GgufKeyValue& kv : metadata_) {
    if (kv.key == key) return &kv.value;
  }
  return nullptr;
}

const GgufTensorInfo* GgufFile::FindTensor(absl::string_view name) const {
  for (const GgufTensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

namespace {
absl::Status Missing(absl::string_view key) {
  return absl::NotFoundError(
      absl::StrCat("gguf: metadata key '", key, "' is missing"));
}
absl::Status WrongType(absl::string_view key, const GgufValue& v,
                       absl::string_view want) {
  return absl::InvalidArgumentError(
      absl::StrCat("gguf: metadata key '", key, "' is ",
                   GgufValueTypeName(v.type), ", expected ", want));
}
}  // namespace

absl::StatusOr<int64_t> GgufFile::GetInt(absl::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (!v->is_integer()) return WrongType(key, *v, "an integer");
  if (!IsSignedType(v->type) &&
      v->u64 > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat("gguf: metadata key '", key, "' value is out of range"));
  }
  return v->i64;
}

absl::StatusOr<double> GgufFile::GetFloat(absl::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (v->is_float()) return v->f64;
  if (v->is_integer()) {
    return IsSignedType(v->type) ? static_cast<double>(v->i64)
                                 : static_cast<double>(v->u64);
  }
  return WrongType(key, *v, "a number");
}

absl::StatusOr<bool> GgufFile::GetBool(absl::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (v->type != GgufValueType::kBool) return WrongType(key, *v, "bool");
  return v->b;
}

absl::StatusOr<absl::string_view> GgufFile::GetString(
    absl::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (v->type != GgufValueType::kString) return WrongType(key, *v, "string");
  return v->str;
}

absl::StatusOr<const GgufValue*> GgufFile::GetArray(
    absl::string_view key, GgufValueType elem_type) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (v->type != GgufValueType::kArray || v->elem_type != elem_type) {
    return WrongType(key, *v,
                     absl::StrCat("array of ", GgufValueTypeName(elem_type)));
  }
  return v;
}

absl::StatusOr<int64_t> GgufFile::GetIntOr(absl::string_view key,
                                           int64_t fallback) const {
  if (Find(key) == nullptr) return fallback;
  return GetInt(key);
}
absl::StatusOr<double> GgufFile::GetFloatOr(absl::string_view key,
                                            double fallback) const {
  if (Find(key) == nullptr) return fallback;
  return GetFloat(key);
}
absl::StatusOr<bool> GgufFile::GetBoolOr(absl::string_view key,
                                         bool fallback) const {
  if (Find(key) == nullptr) return fallback;
  return GetBool(key);
}

std::span<const uint8_t> GgufFile::TensorData(
    const GgufTensorInfo& info) const {
  return bytes_.subspan(data_offset_ + info.offset, info.num_bytes);
}

absl::Status GgufFile::ReadTensorBytes(const GgufTensorInfo& info,
                                       uint64_t offset,
                                       std::span<uint8_t> out) const {
  if (offset > info.num_bytes || out.size() > info.num_bytes - offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bytes ", offset, "..", offset + out.size(), " of tensor '", info.name,
        "' are outside its ", info.num_bytes, " bytes"));
  }
  const uint64_t start = data_offset_ + info.offset + offset;
  if (mapping_ != nullptr) {
    const absl::Status s = mapping_->Read(start, out);
    if (!s.ok()) {
      return absl::Status(
          s.code(), absl::StrCat("tensor '", info.name, "': ", s.message()));
    }
    return s;
  }
  if (!out.empty()) std::memcpy(out.data(), bytes_.data() + start, out.size());
  return absl::OkStatus();
}

}  // namespace lumen::engine
