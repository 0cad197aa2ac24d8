#include "engine/quant/k_tiles.h"

#include <cstdlib>
#include <cstring>

#include "engine/quant/quant_kernels.h"

namespace lumen::engine::quant {
namespace {

// Q4_K code v (0..255) of a block's 128 code bytes: values 64c..64c+31 are
// the low nibbles of bytes 32c.., values 64c+32.. their high nibbles.
struct Q4KCodes {
  static int QsByte(int v) { return 32 * (v / 64) + v % 32; }
  static int QsShift(int v) { return v % 64 < 32 ? 0 : 4; }
};

// Q6_K code v (0..63, before the -32): per 128-value half, values
// 32q + l take ql byte 64 * half + l (+ 32 for odd q), low nibble for
// q < 2, and bits 2q of qh byte 32 * half + l.
struct Q6KCodes {
  static int QlByte(int v) {
    const int q = v % 128 / 32;
    return 64 * (v / 128) + v % 32 + (q % 2) * 32;
  }
  static int QlShift(int v) { return v % 128 / 32 >= 2 ? 4 : 0; }
  static int QhByte(int v) { return 32 * (v / 128) + v % 32; }
  static int QhShift(int v) { return 2 * (v % 128 / 32); }
};

uint8_t Q6Code(const uint8_t* block, int v) {
  const uint8_t lo = (block[Q6KCodes::QlByte(v)] >> Q6KCodes::QlShift(v)) & 15;
  const uint8_t hi =
      (block[128 + Q6KCodes::QhByte(v)] >> Q6KCodes::QhShift(v)) & 3;
  return static_cast<uint8_t>(lo | hi << 4);
}

// Where byte i of row r's dword in group j lies (group j: R dwords).
int64_t GroupAt(int64_t rows, int64_t r, int j, int i) {
  return (j * rows + r) * 4 + i;
}

void Q4KToLane(const uint8_t* block, int64_t rows, int64_t r, uint8_t* span) {
  for (int k = 0; k < 4; ++k)
    std::memcpy(span + (k * rows + r) * 4, block + 4 * k, 4);
  const uint8_t* qs = block + 16;
  uint8_t* codes = span + 16 * rows;
  auto code = [&](int v) {
    return (qs[Q4KCodes::QsByte(v)] >> Q4KCodes::QsShift(v)) & 15;
  };
  for (int j = 0; j < 32; ++j) {
    for (int i = 0; i < 4; ++i) {
      codes[GroupAt(rows, r, j, i)] =
          static_cast<uint8_t>(code(8 * j + i) | code(8 * j + 4 + i) << 4);
    }
  }
}

void LaneToQ4K(const uint8_t* span, int64_t rows, int64_t r, uint8_t* block) {
  for (int k = 0; k < 4; ++k)
    std::memcpy(block + 4 * k, span + (k * rows + r) * 4, 4);
  uint8_t* qs = block + 16;
  std::memset(qs, 0, 128);
  const uint8_t* codes = span + 16 * rows;
  for (int v = 0; v < 256; ++v) {
    const uint8_t code =
        (codes[GroupAt(rows, r, v / 8, v % 4)] >> (v % 8 / 4 * 4)) & 15;
    qs[Q4KCodes::QsByte(v)] |=
        static_cast<uint8_t>(code << Q4KCodes::QsShift(v));
  }
}

// Q6_K tile span parts.
struct Q6KSpan {
  int64_t d, scales, low, high;  // byte offsets
  explicit Q6KSpan(int64_t rows)
      : d(0), scales(2 * rows), low(18 * rows), high(146 * rows) {}
};

void Q6KToLane(const uint8_t* block, int64_t rows, int64_t r, uint8_t* span) {
  const Q6KSpan at(rows);
  std::memcpy(span + at.d + 2 * r, block + 208, 2);
  for (int q = 0; q < 16; ++q) span[at.scales + q * rows + r] = block[192 + q];
  for (int j = 0; j < 32; ++j) {
    for (int i = 0; i < 4; ++i) {
      (span + at.low)[GroupAt(rows, r, j, i)] =
          static_cast<uint8_t>((Q6Code(block, 8 * j + i) & 15) |
                               (Q6Code(block, 8 * j + 4 + i) & 15) << 4);
    }
  }
  for (int p = 0; p < 16; ++p) {
    for (int i = 0; i < 4; ++i) {
      uint8_t b = 0;
      for (int k = 0; k < 4; ++k)
        b |= static_cast<uint8_t>((Q6Code(block, 16 * p + 4 * k + i) >> 4)
                                  << (2 * k));
      (span + at.high)[GroupAt(rows, r, p, i)] = b;
    }
  }
}

void LaneToQ6K(const uint8_t* span, int64_t rows, int64_t r, uint8_t* block) {
  const Q6KSpan at(rows);
  std::memset(block, 0, 192);
  std::memcpy(block + 208, span + at.d + 2 * r, 2);
  for (int q = 0; q < 16; ++q) block[192 + q] = span[at.scales + q * rows + r];
  for (int v = 0; v < 256; ++v) {
    const uint8_t lo =
        ((span + at.low)[GroupAt(rows, r, v / 8, v % 4)] >> (v % 8 / 4 * 4)) &
        15;
    const uint8_t hi = ((span + at.high)[GroupAt(rows, r, v / 16, v % 4)] >>
                        (2 * (v % 16 / 4))) &
                       3;
    block[Q6KCodes::QlByte(v)] |=
        static_cast<uint8_t>(lo << Q6KCodes::QlShift(v));
    block[128 + Q6KCodes::QhByte(v)] |=
        static_cast<uint8_t>(hi << Q6KCodes::QhShift(v));
  }
}

// Q8_0: the span's 8 GGUF blocks (34 bytes: fp16 d, 32 int8 codes). Four
// codes at a time: flipping each byte's top bit adds 128 to an int8 code.
constexpr uint32_t kCodeOffset = 0x80808080u;

void Q80ToLane(const uint8_t* blocks, int64_t rows, int64_t r, uint8_t* span) {
  uint8_t* codes = span + 16 * rows;
  for (int b = 0; b < 8; ++b) {
    std::memcpy(span + 2 * (b * rows + r), blocks + 34 * b, 2);
    for (int g = 0; g < 8; ++g) {
      uint32_t four;
      std::memcpy(&four, blocks + 34 * b + 2 + 4 * g, 4);
      four ^= kCodeOffset;
      std::memcpy(codes + GroupAt(rows, r, 8 * b + g, 0), &four, 4);
    }
  }
}

void LaneToQ80(const uint8_t* span, int64_t rows, int64_t r, uint8_t* blocks) {
  const uint8_t* codes = span + 16 * rows;
  for (int b = 0; b < 8; ++b) {
    std::memcpy(blocks + 34 * b, span + 2 * (b * rows + r), 2);
    for (int g = 0; g < 8; ++g) {
      uint32_t four;
      std::memcpy(&four, codes + GroupAt(rows, r, 8 * b + g, 0), 4);
      four ^= kCodeOffset;
      std::memcpy(blocks + 34 * b + 2 + 4 * g, &four, 4);
    }
  }
}

// A tiled type's span bytes per row and its converters between a row's
// GGUF span and its lane of a tile span.
struct TileCodec {
  int64_t span_bytes;
  void (*to_lane)(const uint8_t* block, int64_t rows, int64_t r, uint8_t* span);
  void (*from_lane)(const uint8_t* span, int64_t rows, int64_t r,
                    uint8_t* block);
};

TileCodec CodecOf(uint32_t type) {
  switch (type) {
    case kIdQ4_K:
      return {kQ4KBlockBytes, Q4KToLane, LaneToQ4K};
    case kIdQ6_K:
      return {kQ6KBlockBytes, Q6KToLane, LaneToQ6K};
    case kIdQ8_0:
      return {kQ8_0SpanBytes, Q80ToLane, LaneToQ80};
    default:  // callers check TiledType
      std::abort();
  }
}

}  // namespace

void TileRows(uint32_t type, uint8_t* w, int64_t N, int64_t K,
              uint8_t* scratch) {
  const TileCodec codec = CodecOf(type);
  const int64_t span_bytes = codec.span_bytes;
  const int64_t spans = K / 256, row_bytes = spans * span_bytes;
  for (int64_t n0 = 0; n0 < N; n0 += kInterleaveRows) {
    const int64_t rows = N - n0 < kInterleaveRows ? N - n0 : kInterleaveRows;
    uint8_t* tile = w + n0 * row_bytes;
    std::memcpy(scratch, tile, rows * row_bytes);
    for (int64_t s = 0; s < spans; ++s) {
      for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* block = scratch + r * row_bytes + s * span_bytes;
        codec.to_lane(block, rows, r, tile + s * rows * span_bytes);
      }
    }
  }
}

void UntileBlock(uint32_t type, const uint8_t* w, int64_t N, int64_t K,
                 int64_t row, int64_t s, uint8_t* block) {
  const TileCodec codec = CodecOf(type);
  const int64_t span_bytes = codec.span_bytes;
  const int64_t row_bytes = K / 256 * span_bytes;
  const int64_t n0 = row - row % kInterleaveRows;
  const int64_t rows = N - n0 < kInterleaveRows ? N - n0 : kInterleaveRows;
  const uint8_t* span = w + n0 * row_bytes + s * rows * span_bytes;
  codec.from_lane(span, rows, row % kInterleaveRows, block);
}

}  // namespace lumen::engine::quant
