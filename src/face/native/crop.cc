// The face models' input crops (src/face/face-models.ts's cropBilinear) in C++: TensorFlow's
// bilinear crop_and_resize of a frame or of a face crop, optionally of the frame turned upright
// first (tfjs's rotateWithOffset, in float32 as its wasm kernel), then divided (the frame's /255).
// The same operations in the same precision, built with -ffp-contract=off so no multiply-add is
// fused: the values equal the JavaScript loop's bit for bit (test/face-models.test.ts). Three or
// four crops a detection; in JavaScript they took ~10 ms of each frame's detection here.
#include <node_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../../native/args.h"

namespace {

using reenact::ArgError;
using reenact::integer;
using reenact::number;
using reenact::typed;

struct Turn {
  const float *colCos, *colSin, *rowCos, *rowSin;
  float cx, cy;
};

// tfjs's rotateWithOffset: pixel (col, row) of the turned image is the image's pixel nearest to
// (col, row) turned about (cx, cy), rounded half away from zero; -1 outside the image.
long turnedAt(const Turn &turn, int row, int col, int imageWidth, int imageHeight) {
  const float u = (turn.colCos[col] - turn.rowSin[row]) + turn.cx;
  const float v = (turn.colSin[col] + turn.rowCos[row]) + turn.cy;
  const double x = u < 0 ? -std::floor(0.5 - static_cast<double>(u)) : std::floor(static_cast<double>(u) + 0.5);
  const double y = v < 0 ? -std::floor(0.5 - static_cast<double>(v)) : std::floor(static_cast<double>(v) + 0.5);
  if (!(x >= 0 && x < imageWidth && y >= 0 && y < imageHeight)) return -1;
  return (static_cast<long>(y) * imageWidth + static_cast<long>(x)) * 3;
}

template <typename Pixel>
REENACT_HOT_LOOP void crop(const Pixel *pixels, int imageWidth, int imageHeight, const double *box, int height,
                           int width, float *out, double divisor, const Turn *turn) {
  const double y1 = box[0], x1 = box[1], y2 = box[2], x2 = box[3];
  const double yScale = height > 1 ? ((y2 - y1) * (imageHeight - 1)) / (height - 1) : 0;
  const double xScale = width > 1 ? ((x2 - x1) * (imageWidth - 1)) / (width - 1) : 0;
  const long rowStride = static_cast<long>(imageWidth) * 3;
  std::vector<long> lefts(width), rights(width);
  std::vector<double> xLerps(width);
  for (int x = 0; x < width; x++) {
    const double inX = width > 1 ? x1 * (imageWidth - 1) + x * xScale : 0.5 * (x1 + x2) * (imageWidth - 1);
    const bool outside = inX < 0 || inX > imageWidth - 1;
    lefts[x] = outside ? -1 : static_cast<long>(std::floor(inX));
    rights[x] = outside ? -1 : static_cast<long>(std::ceil(inX));
    xLerps[x] = inX - std::floor(inX);
  }
  // A turned image's pixel offsets, a source row at a time over the columns the crop reads:
  // successive output rows mostly read the same two source rows, so each position is turned once.
  long colMin = imageWidth, colMax = -1;
  for (int x = 0; x < width; x++)
    if (lefts[x] >= 0) colMin = std::min(colMin, lefts[x]), colMax = std::max(colMax, rights[x]);
  const size_t span = colMax >= colMin ? static_cast<size_t>(colMax - colMin + 1) : 0;
  long cachedRows[2] = {-1, -1};
  std::vector<long> cached[2] = {std::vector<long>(turn ? span : 0), std::vector<long>(turn ? span : 0)};
  int recent = 0;
  const auto turnedRow = [&](long row) -> const long * {
    for (int slot = 0; slot < 2; slot++)
      if (cachedRows[slot] == row) return cached[recent = slot].data();
    recent ^= 1;
    cachedRows[recent] = row;
    for (long col = colMin; col <= colMax; col++)
      cached[recent][col - colMin] = turnedAt(*turn, static_cast<int>(row), static_cast<int>(col), imageWidth, imageHeight);
    return cached[recent].data();
  };
  const auto value = [&](long offset, int c) -> double {
    return offset < 0 ? 0.0 : static_cast<double>(pixels[offset + c]);
  };
  for (int y = 0; y < height; y++) {
    float *row = out + static_cast<long>(y) * width * 3;
    const double inY = height > 1 ? y1 * (imageHeight - 1) + y * yScale : 0.5 * (y1 + y2) * (imageHeight - 1);
    if (inY < 0 || inY > imageHeight - 1) {
      for (int i = 0; i < width * 3; i++) row[i] = 0;
      continue;
    }
    const long top = static_cast<long>(std::floor(inY));
    const long bottom = static_cast<long>(std::ceil(inY));
    const double yLerp = inY - top;
    const long *topTurned = turn ? turnedRow(top) : nullptr;
    const long *bottomTurned = turn ? turnedRow(bottom) : nullptr;
    const auto at = [&](const long *turned, long row, long col) -> long {
      return turned ? turned[col - colMin] : row * rowStride + col * 3;
    };
    for (int x = 0; x < width; x++) {
      float *o = row + x * 3;
      const long left = lefts[x];
      if (left < 0) {
        o[0] = o[1] = o[2] = 0;
        continue;
      }
      const long right = rights[x];
      const double xLerp = xLerps[x];
      const long topLeftAt = at(topTurned, top, left), topRightAt = at(topTurned, top, right);
      const long bottomLeftAt = at(bottomTurned, bottom, left), bottomRightAt = at(bottomTurned, bottom, right);
      for (int c = 0; c < 3; c++) {
        const double topLeft = value(topLeftAt, c), topRight = value(topRightAt, c);
        const double bottomLeft = value(bottomLeftAt, c), bottomRight = value(bottomRightAt, c);
        const double upper = topLeft + (topRight - topLeft) * xLerp;
        const double lower = bottomLeft + (bottomRight - bottomLeft) * xLerp;
        // Stored as float32 (the crop's Float32Array), then divided and stored again, as in JavaScript.
        const float sampled = static_cast<float>(upper + (lower - upper) * yLerp);
        o[c] = static_cast<float>(static_cast<double>(sampled) / divisor);
      }
    }
  }
}

// crop(pixels: Uint8Array | Float32Array, imageWidth, imageHeight, box: Float64Array [y1, x1, y2, x2],
//      height, width, out: Float32Array, divisor[, colCos, colSin, rowCos, rowSin: Float32Array, cx, cy])
napi_value Crop(napi_env env, napi_callback_info info) {
  size_t argc = 14;
  napi_value args[14];
  napi_get_cb_info(env, info, &argc, args, nullptr, nullptr);
  return reenact::checked(env, [&] {
    if (argc != 8 && argc != 14) throw ArgError{"crop takes 8 arguments, or 14 with a turn"};
    bool isTyped = false;
    napi_is_typedarray(env, args[0], &isTyped);
    napi_typedarray_type type = napi_uint8_array;
    if (isTyped) napi_get_typedarray_info(env, args[0], &type, nullptr, nullptr, nullptr, nullptr);
    size_t pixelLength, boxLength, outLength;
    const bool bytes = type == napi_uint8_array;
    const uint8_t *bytePixels = nullptr;
    const float *floatPixels = nullptr;
    const char *kinds = "Uint8Array or Float32Array";
    if (bytes) bytePixels = typed<uint8_t>(env, args[0], napi_uint8_array, kinds, "pixels", &pixelLength);
    else floatPixels = typed<float>(env, args[0], napi_float32_array, kinds, "pixels", &pixelLength);
    const int imageWidth = integer(env, args[1], "imageWidth");
    const int imageHeight = integer(env, args[2], "imageHeight");
    const auto *box = typed<double>(env, args[3], napi_float64_array, "Float64Array", "box", &boxLength);
    const int height = integer(env, args[4], "height");
    const int width = integer(env, args[5], "width");
    auto *out = typed<float>(env, args[6], napi_float32_array, "Float32Array", "out", &outLength);
    const double divisor = number(env, args[7], "divisor");
    if (imageWidth <= 0 || imageHeight <= 0 || height <= 0 || width <= 0) throw ArgError{"sizes must be positive"};
    if (pixelLength != static_cast<size_t>(imageWidth) * imageHeight * 3)
      throw ArgError{"pixels must hold imageWidth x imageHeight RGB values"};
    if (boxLength != 4) throw ArgError{"box must hold y1, x1, y2, x2"};
    for (int i = 0; i < 4; i++)
      if (!std::isfinite(box[i])) throw ArgError{"box must hold finite numbers"};
    if (outLength != static_cast<size_t>(width) * height * 3) throw ArgError{"out must hold width x height RGB values"};
    if (!(divisor > 0)) throw ArgError{"divisor must be positive"};
    Turn turn{};
    if (argc == 14) {
      size_t colCosLength, colSinLength, rowCosLength, rowSinLength;
      turn.colCos = typed<float>(env, args[8], napi_float32_array, "Float32Array", "colCos", &colCosLength);
      turn.colSin = typed<float>(env, args[9], napi_float32_array, "Float32Array", "colSin", &colSinLength);
      turn.rowCos = typed<float>(env, args[10], napi_float32_array, "Float32Array", "rowCos", &rowCosLength);
      turn.rowSin = typed<float>(env, args[11], napi_float32_array, "Float32Array", "rowSin", &rowSinLength);
      turn.cx = static_cast<float>(number(env, args[12], "cx"));
      turn.cy = static_cast<float>(number(env, args[13], "cy"));
      if (colCosLength != static_cast<size_t>(imageWidth) || colSinLength != static_cast<size_t>(imageWidth) ||
          rowCosLength != static_cast<size_t>(imageHeight) || rowSinLength != static_cast<size_t>(imageHeight))
        throw ArgError{"a turn's products must hold one value per column and per row"};
    }
    const Turn *turned = argc == 14 ? &turn : nullptr;
    if (bytes) crop(bytePixels, imageWidth, imageHeight, box, height, width, out, divisor, turned);
    else crop(floatPixels, imageWidth, imageHeight, box, height, width, out, divisor, turned);
  });
}

napi_value Init(napi_env env, napi_value exports) {
  reenact::exportFunction(env, exports, "crop", Crop);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
