// The decoder's kernels as the N-API binding (binding.cc) calls them: the shapes and weights of
// one decode (Request), where its buffers lie in the caller's workspace (Workspace), and decode
// itself (kernels.cc).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace fomm {

constexpr int kLanes = 8;   // channels per vector
constexpr int kRows = 6;    // tiles per micro-kernel block
constexpr int kCols = 16;   // output channels per micro-kernel block

// One 3×3 conv's geometry: a map of `height` × `width`, padded by 1 and out to whole m×m tiles.
struct Conv {
  int in, out, height, width, m, n, tilesY, tilesX, tiles, tilesPadded, paddedH, paddedW;
  const float *BT;  // n × n
  const float *AT;  // m × n

  Conv(int in, int out, int height, int width, int m, const float *BT, const float *AT)
      : in(in), out(out), height(height), width(width), m(m), n(m + 2), tilesY((height + m - 1) / m), tilesX((width + m - 1) / m),
        tiles(tilesY * tilesX), tilesPadded((tiles + kRows - 1) / kRows * kRows), paddedH(tilesY * m + 2), paddedW(tilesX * m + 2), BT(BT), AT(AT) {}
  int64_t paddedSize() const { return static_cast<int64_t>(in) * paddedH * paddedW; }
  int64_t inputFreqSize() const { return static_cast<int64_t>(n) * n * tilesPadded * in; }
  int64_t outputFreqSize() const { return static_cast<int64_t>(n) * n * tilesPadded * out; }
};

struct ResBlock {
  const float *scale, *shift;  // norm1, applied before the first ReLU
  const float *u1, *bias1;     // conv1 with norm2 folded in; u packed [n²][C/16][C][16]
  const float *u2, *bias2;
};

struct UpBlock {
  int in, out;            // out = 4 × the block's channels, (phase, channel)
  const float *u, *bias;  // u packed [n²][out/16][in][16]
};

// One decode: the bottleneck's conv geometry, then one per up block, with their weights.
struct Request {
  std::vector<Conv> convs;  // the bottleneck's, then one per up block
  std::vector<ResBlock> blocks;
  std::vector<UpBlock> upWeights;
  int threads;
  size_t inputSize, outputSize;
};

// Where decode's buffers lie in the caller's workspace (floats, 64-byte aligned offsets). The
// padded maps' borders must start zero and stay zero: only interiors are ever written, so a
// workspace zeroed once serves every call with the same shapes.
struct Workspace {
  int64_t residual, V, M, hidden, total;
  std::vector<int64_t> upInputs;

  explicit Workspace(const Request &r) {
    const Conv &bottleneck = r.convs[0];
    const bool hasBlocks = !r.blocks.empty();
    int64_t freqSize = hasBlocks ? std::max(bottleneck.inputFreqSize(), bottleneck.outputFreqSize()) : 0;
    for (size_t i = 1; i < r.convs.size(); i++) freqSize = std::max({freqSize, r.convs[i].inputFreqSize(), r.convs[i].outputFreqSize()});
    total = 0;
    auto take = [&](int64_t size) {
      const int64_t offset = total;
      total += (size + 15) / 16 * 16;
      return offset;
    };
    residual = take(static_cast<int64_t>(bottleneck.in) * bottleneck.height * bottleneck.width);
    V = take(freqSize);
    M = take(freqSize);
    hidden = take(hasBlocks ? bottleneck.paddedSize() : 0);
    for (size_t i = 1; i < r.convs.size(); i++) upInputs.push_back(take(r.convs[i].paddedSize()));
  }
};

// The bottleneck on `input` (NCHW, channels × height × width), then the up blocks; `output` is
// the bottleneck's output (NCHW) without up blocks, else the last up block's phases (NCHW).
void decode(const Request &r, const float *input, float *output, float *workspace);

// Whether BT (n × n) and AT ((n − 2) × n) have the paired structure of Cook–Toom matrices of the
// points 0, ±p…, ∞ that the transforms rely on (see kernels.cc).
bool pairedStructure(const float *BT, const float *AT, int n);

// Whether this CPU has the AVX2 and FMA the kernels are compiled for.
bool cpuSupported();

}  // namespace fomm
