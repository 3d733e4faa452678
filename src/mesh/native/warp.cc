// The mesh model's piecewise-affine warp (src/mesh/warp.ts) in C++: the same loop, operation for
// operation in double precision (the blend in integers), built with -ffp-contract=off so that no
// multiply-add is fused, which makes its pixels those of the JavaScript loop, byte for byte
// (test/mesh-warp.test.ts).
// About half of a 586x586 frame's pixels move; JavaScript takes ~30-60 ns a pixel for them.
#include <node_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../../native/args.h"

namespace {

using reenact::ArgError;
using reenact::integer;
using reenact::typed;

// warp.ts's STILL: vertices moving less than this (px) count as fixed.
constexpr double kStill = 1e-3;

// mask (one byte per pixel) and values (one per triangle) may be null: see warp.ts's layers.
REENACT_HOT_LOOP void warp(const uint8_t *data, int width, int height, const double *from, const double *to, const uint32_t *triangles,
          size_t triangleValues, uint8_t *out, uint8_t *mask, const uint8_t *values) {
  const int maxX = width - 1;
  const int maxY = height - 1;
  const int rowStride = width * 3;
  const double eps = 1e-6;
  for (size_t t = 0; t < triangleValues; t += 3) {
    const size_t i0 = triangles[t] * 2, i1 = triangles[t + 1] * 2, i2 = triangles[t + 2] * 2;
    const uint8_t layer = values ? values[t / 3] : 0;
    const double x0 = to[i0], y0 = to[i0 + 1], x1 = to[i1], y1 = to[i1 + 1], x2 = to[i2], y2 = to[i2 + 1];
    const double u0 = from[i0], v0 = from[i0 + 1], u1 = from[i1], v1 = from[i1 + 1], u2 = from[i2], v2 = from[i2 + 1];
    if (std::abs(x0 - u0) < kStill && std::abs(y0 - v0) < kStill && std::abs(x1 - u1) < kStill &&
        std::abs(y1 - v1) < kStill && std::abs(x2 - u2) < kStill && std::abs(y2 - v2) < kStill)
      continue;
    // A vertex that is not a finite number draws nothing (NaN would index the image at random).
    if (!std::isfinite(x0 + y0 + x1 + y1 + x2 + y2 + u0 + v0 + u1 + v1 + u2 + v2)) continue;
    const double dx1 = x1 - x0, dy1 = y1 - y0, dx2 = x2 - x0, dy2 = y2 - y0;
    const double det = dx1 * dy2 - dx2 * dy1;
    if (std::abs(det) < 1e-9) continue;
    const double inv = 1 / det;
    const double l1x = dy2 * inv, l1y = -dx2 * inv, l1c = -(l1x * x0 + l1y * y0);
    const double l2x = -dy1 * inv, l2y = dx1 * inv, l2c = -(l2x * x0 + l2y * y0);
    const double du1 = u1 - u0, du2 = u2 - u0, dv1 = v1 - v0, dv2 = v2 - v0;
    const double ux = l1x * du1 + l2x * du2, uy = l1y * du1 + l2y * du2, uc = u0 - 0.5 + l1c * du1 + l2c * du2;
    const double vx = l1x * dv1 + l2x * dv2, vy = l1y * dv1 + l2y * dv2, vc = v0 - 0.5 + l1c * dv1 + l2c * dv2;
    const double rowStart = std::max(0.0, std::ceil(std::min({y0, y1, y2}) - 0.5 - eps));
    const double rowEnd = std::min<double>(maxY, std::floor(std::max({y0, y1, y2}) - 0.5 + eps));
    const double colStart = std::max(0.0, std::ceil(std::min({x0, x1, x2}) - 0.5 - eps));
    const double colEnd = std::min<double>(maxX, std::floor(std::max({x0, x1, x2}) - 0.5 + eps));
    for (double row = rowStart; row <= rowEnd; row++) {
      const double cy = row + 0.5;
      const double r1 = l1y * cy + l1c;
      const double r2 = l2y * cy + l2c;
      double xMin = colStart + 0.5;
      double xMax = colEnd + 0.5;
      if (l1x > 0) xMin = std::max(xMin, (-eps - r1) / l1x);
      else if (l1x < 0) xMax = std::min(xMax, (-eps - r1) / l1x);
      if (l2x > 0) xMin = std::max(xMin, (-eps - r2) / l2x);
      else if (l2x < 0) xMax = std::min(xMax, (-eps - r2) / l2x);
      const double l12x = l1x + l2x;
      if (l12x > 0) xMax = std::min(xMax, (1 + eps - r1 - r2) / l12x);
      else if (l12x < 0) xMin = std::max(xMin, (1 + eps - r1 - r2) / l12x);
      if (!(xMin <= xMax + 2)) continue;
      const double first = std::max(colStart, std::ceil(xMin - 0.5) - 1);
      const double last = std::min(colEnd, std::floor(xMax - 0.5) + 1);
      const double cx = first + 0.5;
      double l1 = l1x * cx + r1;
      double l2 = l2x * cx + r2;
      double u = ux * cx + uy * cy + uc;
      double v = vx * cx + vy * cy + vc;
      size_t o = (static_cast<size_t>(row) * width + static_cast<size_t>(first)) * 3;
      for (double col = first; col <= last; col++, l1 += l1x, l2 += l2x, u += ux, v += vx, o += 3) {
        if (l1 < -eps || l2 < -eps || l1 + l2 > 1 + eps) continue;
        const double sx = u < 0 ? 0 : u > maxX ? maxX : u;
        const double sy = v < 0 ? 0 : v > maxY ? maxY : v;
        const int ix = static_cast<int>(sx);
        const int iy = static_cast<int>(sy);
        const int fx = static_cast<int>((sx - ix) * 256 + 0.5);
        const int fy = static_cast<int>((sy - iy) * 256 + 0.5);
        const size_t p00 = (static_cast<size_t>(iy) * width + ix) * 3;
        const size_t p01 = ix < maxX ? p00 + 3 : p00;
        const size_t p10 = iy < maxY ? p00 + rowStride : p00;
        const size_t p11 = ix < maxX ? p10 + 3 : p10;
        const int w00 = (256 - fx) * (256 - fy), w01 = fx * (256 - fy), w10 = (256 - fx) * fy, w11 = fx * fy;
        for (int c = 0; c < 3; c++)
          out[o + c] = static_cast<uint8_t>(
              (w00 * data[p00 + c] + w01 * data[p01 + c] + w10 * data[p10 + c] + w11 * data[p11 + c] + 32768) >> 16);
        if (layer) mask[o / 3] = layer;
      }
    }
  }
}

// warp(source: Uint8Array, width, height, from: Float64Array, to: Float64Array, triangles: Uint32Array,
//      out: Uint8Array[, mask: Uint8Array, values: Uint8Array])
napi_value Warp(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value args[9];
  napi_get_cb_info(env, info, &argc, args, nullptr, nullptr);
  return reenact::checked(env, [&] {
    if (argc != 7 && argc != 9) throw ArgError{"warp takes 7 arguments, or 9 with mask and values"};
    size_t sourceLength, fromLength, toLength, triangleLength, outLength;
    const auto *data = typed<uint8_t>(env, args[0], napi_uint8_array, "Uint8Array", "source", &sourceLength);
    const int width = integer(env, args[1], "width");
    const int height = integer(env, args[2], "height");
    const auto *from = typed<double>(env, args[3], napi_float64_array, "Float64Array", "from", &fromLength);
    const auto *to = typed<double>(env, args[4], napi_float64_array, "Float64Array", "to", &toLength);
    const auto *triangles = typed<uint32_t>(env, args[5], napi_uint32_array, "Uint32Array", "triangles", &triangleLength);
    auto *out = typed<uint8_t>(env, args[6], napi_uint8_array, "Uint8Array", "out", &outLength);
    if (width <= 0 || height <= 0) throw ArgError{"width and height must be positive"};
    const size_t pixels = static_cast<size_t>(width) * height * 3;
    if (sourceLength != pixels || outLength != pixels) throw ArgError{"source and out must hold width x height RGB pixels"};
    if (fromLength != toLength || fromLength % 2 != 0) throw ArgError{"from and to must hold the same x, y pairs"};
    if (triangleLength % 3 != 0) throw ArgError{"triangles must hold vertex triples"};
    for (size_t i = 0; i < triangleLength; i++)
      if (triangles[i] >= fromLength / 2) throw ArgError{"a triangle names a vertex that does not exist"};
    uint8_t *mask = nullptr;
    const uint8_t *values = nullptr;
    if (argc == 9) {
      size_t maskLength, valueLength;
      mask = typed<uint8_t>(env, args[7], napi_uint8_array, "Uint8Array", "mask", &maskLength);
      values = typed<uint8_t>(env, args[8], napi_uint8_array, "Uint8Array", "values", &valueLength);
      if (maskLength != pixels / 3) throw ArgError{"mask must hold a byte per pixel"};
      if (valueLength < triangleLength / 3) throw ArgError{"values must hold a byte per triangle"};
    }
    warp(data, width, height, from, to, triangles, triangleLength, out, mask, values);
  });
}

napi_value Init(napi_env env, napi_value exports) {
  reenact::exportFunction(env, exports, "warp", Warp);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
