#include "engine/quant/q4k_tiles.h"

#include <cstring>

#include "engine/quant/quant_kernels.h"

namespace lumen::engine::quant {
namespace {

// Code v (0..255) of a block's 128 code bytes: values 64c..64c+31 are the
// low nibbles of bytes 32c.., values 64c+32.. their high nibbles.
uint8_t Code(const uint8_t* qs, int v) {
  const int c = v / 64, u = v % 64;
  const uint8_t b = qs[32 * c + u % 32];
  return u < 32 ? b & 0x0F : b >> 4;
}

void BlockToLane(const uint8_t* block, int64_t rows, int64_t r, uint8_t* span) {
  for (int k = 0; k < 4; ++k)
    std::memcpy(span + (k * rows + r) * 4, block + 4 * k, 4);
  const uint8_t* qs = block + 16;
  uint8_t* codes = span + 16 * rows;
  for (int j = 0; j < 32; ++j) {
    for (int i = 0; i < 4; ++i) {
      codes[(j * rows + r) * 4 + i] = static_cast<uint8_t>(
          Code(qs, 8 * j + i) | Code(qs, 8 * j + 4 + i) << 4);
    }
  }
}

void LaneToBlock(const uint8_t* span, int64_t rows, int64_t r, uint8_t* block) {
  for (int k = 0; k < 4; ++k)
    std::memcpy(block + 4 * k, span + (k * rows + r) * 4, 4);
  uint8_t* qs = block + 16;
  std::memset(qs, 0, 128);
  const uint8_t* codes = span + 16 * rows;
  for (int v = 0; v < 256; ++v) {
    const int j = v / 8, i = v % 4, high = (v % 8) / 4;
    const uint8_t code = (codes[(j * rows + r) * 4 + i] >> (4 * high)) & 0x0F;
    const int c = v / 64, u = v % 64;
    qs[32 * c + u % 32] |= static_cast<uint8_t>(u < 32 ? code : code << 4);
  }
}

}  // namespace

void TileQ4KRows(uint8_t* w, int64_t N, int64_t K, uint8_t* scratch) {
  const int64_t spans = K / 256, row_bytes = spans * kQ4KBlockBytes;
  for (int64_t n0 = 0; n0 < N; n0 += kInterleaveRows) {
    const int64_t rows = N - n0 < kInterleaveRows ? N - n0 : kInterleaveRows;
    uint8_t* tile = w + n0 * row_bytes;
    std::memcpy(scratch, tile, rows * row_bytes);
    for (int64_t s = 0; s < spans; ++s) {
      for (int64_t r = 0; r < rows; ++r) {
        BlockToLane(scratch + r * row_bytes + s * kQ4KBlockBytes, rows, r,
                    tile + s * rows * kQ4KBlockBytes);
      }
    }
  }
}

void UntileQ4KBlock(const uint8_t* w, int64_t N, int64_t K, int64_t row,
                    int64_t s, uint8_t* block) {
  const int64_t row_bytes = K / 256 * kQ4KBlockBytes;
  const int64_t n0 = row - row % kInterleaveRows;
  const int64_t rows = N - n0 < kInterleaveRows ? N - n0 : kInterleaveRows;
  LaneToBlock(w + n0 * row_bytes + s * rows * kQ4KBlockBytes, rows,
              row % kInterleaveRows, block);
}

}  // namespace lumen::engine::quant
