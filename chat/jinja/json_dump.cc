#include "chat/jinja/json_dump.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "absl/strings/str_cat.h"
#include "chat/jinja/py_text.h"

namespace lumen::chat::jinja {

namespace {

void AppendEscapedString(absl::string_view s, bool ensure_ascii,
                         std::string* out) {
  out->push_back('"');
  char buf[16];
  for (size_t pos = 0; pos < s.size();) {
    const unsigned char b = static_cast<unsigned char>(s[pos]);
    if (b < 0x80) {
      ++pos;
      switch (b) {
        case '"':
          out->append("\\\"");
          continue;
        case '\\':
          out->append("\\\\");
          continue;
        case '\n':
          out->append("\\n");
          continue;
        case '\r':
          out->append("\\r");
          continue;
        case '\t':
          out->append("\\t");
          continue;
        case '\b':
          out->append("\\b");
          continue;
        case '\f':
          out->append("\\f");
          continue;
        default:
          break;
      }
      if (b < 0x20 || (ensure_ascii && b == 0x7F)) {
        std::snprintf(buf, sizeof(buf), "\\u%04x", b);
        out->append(buf);
      } else {
        out->push_back(static_cast<char>(b));
      }
      continue;
    }
    const size_t start = pos;
    const char32_t c = DecodeUtf8(s, &pos);
    if (!ensure_ascii) {
      absl::StrAppend(out, s.substr(start, pos - start));
    } else if (c < 0x10000) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      out->append(buf);
    } else {
      const char32_t v = c - 0x10000;
      std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x",
                    static_cast<unsigned>(0xD800 + (v >> 10)),
                    static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
      out->append(buf);
    }
  }
  out->push_back('"');
}

void AppendFloat(double d, std::string* out) {
  if (std::isnan(d)) {
    out->append("NaN");
  } else if (std::isinf(d)) {
    out->append(d < 0 ? "-Infinity" : "Infinity");
  } else {
    out->append(PyFloatRepr(d));
  }
}

void NewLine(const JsonDumpOptions& o, int level, std::string* out) {
  out->push_back('\n');
  for (int i = 0; i < level; ++i) out->append(*o.indent);
}

void Dump(const Json& j, const JsonDumpOptions& o, int level,
          std::string* out) {
  switch (j.type()) {
    case Json::value_t::null:
      out->append("null");
      return;
    case Json::value_t::boolean:
      out->append(j.get<bool>() ? "true" : "false");
      return;
    case Json::value_t::number_integer:
      absl::StrAppend(out, j.get<int64_t>());
      return;
    case Json::value_t::number_unsigned:
      absl::StrAppend(out, j.get<uint64_t>());
      return;
    case Json::value_t::number_float:
      AppendFloat(j.get<double>(), out);
      return;
    case Json::value_t::string:
      AppendEscapedString(j.get_ref<const std::string&>(), o.ensure_ascii, out);
      return;
    case Json::value_t::array: {
      if (j.empty()) {
        out->append("[]");
        return;
      }
      out->push_back('[');
      bool first = true;
      for (const Json& e : j) {
        if (!first) out->append(o.item_separator);
        first = false;
        if (o.indent) NewLine(o, level + 1, out);
        Dump(e, o, level + 1, out);
      }
      if (o.indent) NewLine(o, level, out);
      out->push_back(']');
      return;
    }
    case Json::value_t::object: {
      if (j.empty()) {
        out->append("{}");
        return;
      }
      std::vector<std::pair<const std::string*, const Json*>> items;
      items.reserve(j.size());
      for (const auto& [key, value] : j.items())
        items.emplace_back(&key, &value);
      if (o.sort_keys) {
        std::stable_sort(
            items.begin(), items.end(),
            [](const auto& a, const auto& b) { return *a.first < *b.first; });
      }
      out->push_back('{');
      bool first = true;
      for (const auto& [key, value] : items) {
        if (!first) out->append(o.item_separator);
        first = false;
        if (o.indent) NewLine(o, level + 1, out);
        AppendEscapedString(*key, o.ensure_ascii, out);
        out->append(o.key_separator);
        Dump(*value, o, level + 1, out);
      }
      if (o.indent) NewLine(o, level, out);
      out->push_back('}');
      return;
    }
    default:
      out->append("null");
      return;
  }
}

}  // namespace

void DumpPythonJson(const Json& json, const JsonDumpOptions& options,
                    std::string* out) {
  Dump(json, options, 0, out);
}

}  // namespace lumen::chat::jinja
