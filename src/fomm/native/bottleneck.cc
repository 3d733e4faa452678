// The generator's residual bottleneck (ResBlock2d × N: BN → ReLU → conv3×3 → BN → ReLU →
// conv3×3, plus the input) as one native call: Winograd F(m×m, 3×3) with the transforms fused
// into the passes that load and store the maps, and the products as AVX2/FMA matrix products.
// ONNX Runtime runs each transform as separate grouped convs, transposes and reorders (about
// as long as the products themselves); here they are one pass each over an L2-sized block.
//
// Maps are kept blocked by 8 channels ([C/8][H][W][8]) so every transform step is one 8-wide
// vector operation across channels. The transform matrices, the transformed weights and the
// folded batch norms come from JavaScript (src/fomm/native-bottleneck.ts); nothing is built here.
#include <immintrin.h>
#include <node_api.h>

#include <algorithm>
#include <barrier>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

// Kernels are compiled for AVX2 + FMA; the module itself is not, so loading it on an older CPU is
// safe and supported() tells JavaScript to stay on ONNX Runtime.
#pragma GCC push_options
#pragma GCC target("avx2,fma")

constexpr int kLanes = 8;   // channels per vector
constexpr int kRows = 6;    // tiles per micro-kernel block
constexpr int kCols = 16;   // output channels per micro-kernel block

struct Shape {
  int channels, height, width, m, n, tilesY, tilesX, tiles, tilesPadded, paddedH, paddedW;
};

struct Block {
  const float *scale, *shift;  // norm1, applied before the first ReLU
  const float *u1, *bias1;     // conv1 with norm2 folded in; u packed [n²][C/16][C][16]
  const float *u2, *bias2;
};

struct Matrices {
  const float *BT;  // n × n
  const float *AT;  // m × n
};

// Splits [0, count) evenly across threads.
inline void share(int count, int thread, int threads, int &begin, int &end) {
  begin = static_cast<int>(static_cast<int64_t>(count) * thread / threads);
  end = static_cast<int>(static_cast<int64_t>(count) * (thread + 1) / threads);
}

// padded[cb][y + 1][x + 1][lane] = relu(scale·x + shift) of the residual stream (blocked, unpadded).
void normRelu(const Shape &s, const float *residual, const float *scale, const float *shift, float *padded, int thread, int threads) {
  int begin, end;
  share(s.channels / kLanes, thread, threads, begin, end);
  const __m256 zero = _mm256_setzero_ps();
  for (int cb = begin; cb < end; cb++) {
    const __m256 a = _mm256_loadu_ps(scale + cb * kLanes), b = _mm256_loadu_ps(shift + cb * kLanes);
    for (int y = 0; y < s.height; y++) {
      const float *src = residual + (static_cast<int64_t>(cb) * s.height + y) * s.width * kLanes;
      float *dst = padded + ((static_cast<int64_t>(cb) * s.paddedH + y + 1) * s.paddedW + 1) * kLanes;
      for (int x = 0; x < s.width; x++) {
        _mm256_storeu_ps(dst + x * kLanes, _mm256_max_ps(zero, _mm256_fmadd_ps(a, _mm256_loadu_ps(src + x * kLanes), b)));
      }
    }
  }
}

// Cook–Toom matrices from the points 0, ±p₁, ±p₂, …, ∞ (in that order) have a structure the
// transforms use to halve their multiply-adds: Bᵀ's row for 0 is even in its column index and
// the row for ∞ odd; the rows for +p and −p differ only in the sign of their odd columns
// (E + O and E − O). Aᵀ's column for 0 is (1, 0, …), the one for ∞ (…, 0, 1), and the columns
// for ±p differ only in the sign of their odd rows (x₊ + x₋ for even rows, x₊ − x₋ for odd).
// pairedStructure() checks exactly that before anything runs.
bool pairedStructure(const float *BT, const float *AT, int n) {
  const int m = n - 2;
  for (int a = 0; a < n; a++) {
    if (a % 2 == 1 && BT[a] != 0.0f) return false;
    if (a % 2 == 0 && BT[(n - 1) * n + a] != 0.0f) return false;
  }
  for (int i = 1; i < n - 1; i += 2) {
    for (int a = 0; a < n; a++) if (BT[(i + 1) * n + a] != (a % 2 ? -BT[i * n + a] : BT[i * n + a])) return false;
  }
  for (int i = 0; i < m; i++) {
    if (AT[i * n] != (i == 0 ? 1.0f : 0.0f) || AT[i * n + n - 1] != (i == m - 1 ? 1.0f : 0.0f)) return false;
    for (int j = 1; j < n - 1; j += 2) if (AT[i * n + j + 1] != (i % 2 ? -AT[i * n + j] : AT[i * n + j])) return false;
  }
  return true;
}

// y = Bᵀ·x for one column x (length N), out(i, yᵢ).
template <int N, typename In, typename Out>
inline void applyBT(const __m256 (&bt)[N][N], In x, Out out) {
  __m256 e = _mm256_mul_ps(bt[0][0], x(0));
  for (int a = 2; a < N; a += 2) e = _mm256_fmadd_ps(bt[0][a], x(a), e);
  out(0, e);
  for (int i = 1; i < N - 1; i += 2) {
    __m256 even = _mm256_mul_ps(bt[i][0], x(0)), odd = _mm256_mul_ps(bt[i][1], x(1));
    for (int a = 2; a < N; a += 2) even = _mm256_fmadd_ps(bt[i][a], x(a), even);
    for (int a = 3; a < N; a += 2) odd = _mm256_fmadd_ps(bt[i][a], x(a), odd);
    out(i, _mm256_add_ps(even, odd));
    out(i + 1, _mm256_sub_ps(even, odd));
  }
  __m256 o = _mm256_mul_ps(bt[N - 1][1], x(1));
  for (int a = 3; a < N; a += 2) o = _mm256_fmadd_ps(bt[N - 1][a], x(a), o);
  out(N - 1, o);
}

// y = Aᵀ·x for one column x (length N), out(i, yᵢ) for i < N − 2.
template <int N, typename In, typename Out>
inline void applyAT(const __m256 (&at)[N - 2][N], In x, Out out) {
  constexpr int R = N - 2, P = (N - 2) / 2;
  __m256 sum[P], diff[P];
  for (int k = 0; k < P; k++) {
    const __m256 plus = x(2 * k + 1), minus = x(2 * k + 2);
    sum[k] = _mm256_add_ps(plus, minus);
    diff[k] = _mm256_sub_ps(plus, minus);
  }
  for (int i = 0; i < R; i++) {
    const __m256(&folded)[P] = i % 2 ? diff : sum;
    __m256 acc = i == 0 ? x(0) : i == R - 1 ? x(N - 1) : _mm256_setzero_ps();
    for (int k = 0; k < P; k++) acc = _mm256_fmadd_ps(at[i][2 * k + 1], folded[k], acc);
    out(i, acc);
  }
}

// V[f][tile][c] = (Bᵀ·d·B)[f] for every tile and 8-channel block of the padded map; channel
// blocks inner, so consecutive items fill consecutive halves of V's cache lines.
template <int N>
void inputTransform(const Shape &s, const Matrices &mx, const float *padded, float *V, int thread, int threads) {
  const int blocks = s.channels / kLanes;
  int begin, end;
  share(blocks * s.tiles, thread, threads, begin, end);
  __m256 bt[N][N];
  for (int i = 0; i < N; i++) for (int j = 0; j < N; j++) bt[i][j] = _mm256_set1_ps(mx.BT[i * N + j]);
  const int64_t stride = static_cast<int64_t>(s.tilesPadded) * s.channels;
  __m256 d[N][N], t[N][N];
  for (int item = begin; item < end; item++) {
    const int tile = item / blocks, cb = item % blocks;
    const int ty = tile / s.tilesX, tx = tile % s.tilesX;
    const float *base = padded + ((static_cast<int64_t>(cb) * s.paddedH + ty * s.m) * s.paddedW + tx * s.m) * kLanes;
    for (int a = 0; a < N; a++) for (int b = 0; b < N; b++) d[a][b] = _mm256_loadu_ps(base + (a * s.paddedW + b) * kLanes);
    for (int b = 0; b < N; b++) applyBT<N>(bt, [&](int a) { return d[a][b]; }, [&](int i, __m256 v) { t[i][b] = v; });
    float *out = V + static_cast<int64_t>(tile) * s.channels + cb * kLanes;
    for (int i = 0; i < N; i++) {
      applyBT<N>(bt, [&](int b) { return t[i][b]; }, [&](int j, __m256 v) { _mm256_storeu_ps(out + (i * N + j) * stride, v); });
    }
  }
}

// M[f] = V[f] · U[f] for every frequency f: [tiles × C] · [C × C], 6 × 16 register blocks.
void products(const Shape &s, const float *V, const float *U, float *M, int thread, int threads) {
  const int freqs = s.n * s.n, c = s.channels;
  int begin, end;
  share(freqs, thread, threads, begin, end);
  for (int f = begin; f < end; f++) {
    const float *v = V + static_cast<int64_t>(f) * s.tilesPadded * c;
    const float *u = U + static_cast<int64_t>(f) * c * c;
    float *out = M + static_cast<int64_t>(f) * s.tilesPadded * c;
    for (int t0 = 0; t0 < s.tilesPadded; t0 += kRows) {
      const float *rows = v + static_cast<int64_t>(t0) * c;
      for (int kb = 0; kb < c / kCols; kb++) {
        const float *panel = u + static_cast<int64_t>(kb) * c * kCols;
        __m256 acc[kRows][2];
        for (int r = 0; r < kRows; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        for (int k = 0; k < c; k++) {
          const __m256 b0 = _mm256_loadu_ps(panel + k * kCols), b1 = _mm256_loadu_ps(panel + k * kCols + 8);
          for (int r = 0; r < kRows; r++) {
            const __m256 a = _mm256_broadcast_ss(rows + r * c + k);
            acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
          }
        }
        for (int r = 0; r < kRows; r++) {
          float *dst = out + static_cast<int64_t>(t0 + r) * c + kb * kCols;
          _mm256_storeu_ps(dst, acc[r][0]);
          _mm256_storeu_ps(dst + 8, acc[r][1]);
        }
      }
    }
  }
}

// Y = Aᵀ·M·A + bias per tile, then either ReLU into the next conv's padded input (hidden) or
// added onto the residual stream in place (residual).
template <int N>
void outputTransform(const Shape &s, const Matrices &mx, const float *M, const float *bias, float *padded, float *residual, int thread, int threads) {
  constexpr int R = N - 2;
  const int blocks = s.channels / kLanes;
  int begin, end;
  share(blocks * s.tiles, thread, threads, begin, end);
  __m256 at[R][N];
  for (int i = 0; i < R; i++) for (int j = 0; j < N; j++) at[i][j] = _mm256_set1_ps(mx.AT[i * N + j]);
  const __m256 zero = _mm256_setzero_ps();
  const int64_t stride = static_cast<int64_t>(s.tilesPadded) * s.channels;
  __m256 v[N][N], t[R][N];
  for (int item = begin; item < end; item++) {
    const int tile = item / blocks, cb = item % blocks;
    const int ty = tile / s.tilesX, tx = tile % s.tilesX;
    const float *in = M + static_cast<int64_t>(tile) * s.channels + cb * kLanes;
    for (int i = 0; i < N; i++) for (int j = 0; j < N; j++) v[i][j] = _mm256_loadu_ps(in + (i * N + j) * stride);
    for (int j = 0; j < N; j++) applyAT<N>(at, [&](int i) { return v[i][j]; }, [&](int p, __m256 value) { t[p][j] = value; });
    const __m256 b = _mm256_loadu_ps(bias + cb * kLanes);
    const int rows = std::min(R, s.height - ty * R), cols = std::min(R, s.width - tx * R);
    for (int p = 0; p < rows; p++) {
      const int y = ty * R + p;
      applyAT<N>(at, [&](int j) { return t[p][j]; }, [&](int q, __m256 value) {
        if (q >= cols) return;
        const int x = tx * R + q;
        const __m256 out = _mm256_add_ps(value, b);
        if (residual) {
          float *dst = residual + ((static_cast<int64_t>(cb) * s.height + y) * s.width + x) * kLanes;
          _mm256_storeu_ps(dst, _mm256_add_ps(_mm256_loadu_ps(dst), out));
        } else {
          _mm256_storeu_ps(padded + ((static_cast<int64_t>(cb) * s.paddedH + y + 1) * s.paddedW + x + 1) * kLanes, _mm256_max_ps(zero, out));
        }
      });
    }
  }
}

// NCHW ↔ [C/8][H][W][8].
void toBlocked(const Shape &s, const float *nchw, float *blocked, int thread, int threads) {
  int begin, end;
  share(s.channels, thread, threads, begin, end);
  const int64_t plane = static_cast<int64_t>(s.height) * s.width;
  for (int c = begin; c < end; c++) {
    float *dst = blocked + static_cast<int64_t>(c / kLanes) * plane * kLanes + c % kLanes;
    const float *src = nchw + c * plane;
    for (int64_t i = 0; i < plane; i++) dst[i * kLanes] = src[i];
  }
}

void fromBlocked(const Shape &s, const float *blocked, float *nchw, int thread, int threads) {
  int begin, end;
  share(s.channels, thread, threads, begin, end);
  const int64_t plane = static_cast<int64_t>(s.height) * s.width;
  for (int c = begin; c < end; c++) {
    const float *src = blocked + static_cast<int64_t>(c / kLanes) * plane * kLanes + c % kLanes;
    float *dst = nchw + c * plane;
    for (int64_t i = 0; i < plane; i++) dst[i] = src[i * kLanes];
  }
}

template <int N>
void run(const Shape &s, const Matrices &mx, const std::vector<Block> &blocks, const float *input, float *output, int threads) {
  const int64_t mapSize = static_cast<int64_t>(s.channels) * s.height * s.width;
  const int64_t freqSize = static_cast<int64_t>(s.n) * s.n * s.tilesPadded * s.channels;
  std::vector<float> residual(mapSize);
  // Zero borders (and padding tiles) stay zero: only interiors and real tiles are written.
  std::vector<float> padded(static_cast<int64_t>(s.channels) * s.paddedH * s.paddedW, 0.0f);
  std::vector<float> V(freqSize, 0.0f), M(freqSize);
  std::barrier sync(threads);
  auto work = [&](int thread) {
    toBlocked(s, input, residual.data(), thread, threads);
    sync.arrive_and_wait();
    for (const Block &block : blocks) {
      normRelu(s, residual.data(), block.scale, block.shift, padded.data(), thread, threads);
      sync.arrive_and_wait();
      inputTransform<N>(s, mx, padded.data(), V.data(), thread, threads);
      sync.arrive_and_wait();
      products(s, V.data(), block.u1, M.data(), thread, threads);
      sync.arrive_and_wait();
      outputTransform<N>(s, mx, M.data(), block.bias1, padded.data(), nullptr, thread, threads);
      sync.arrive_and_wait();
      inputTransform<N>(s, mx, padded.data(), V.data(), thread, threads);
      sync.arrive_and_wait();
      products(s, V.data(), block.u2, M.data(), thread, threads);
      sync.arrive_and_wait();
      outputTransform<N>(s, mx, M.data(), block.bias2, nullptr, residual.data(), thread, threads);
      sync.arrive_and_wait();
    }
    fromBlocked(s, residual.data(), output, thread, threads);
  };
  std::vector<std::thread> helpers;
  for (int t = 1; t < threads; t++) helpers.emplace_back(work, t);
  work(0);
  for (auto &h : helpers) h.join();
}

#pragma GCC pop_options

bool cpuSupported() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// --- N-API ---------------------------------------------------------------------------------

struct ArgError {
  std::string message;
};

float *floats(napi_env env, napi_value value, size_t expected, const char *name) {
  bool isTyped = false;
  napi_is_typedarray(env, value, &isTyped);
  if (!isTyped) throw ArgError{std::string(name) + " must be a Float32Array"};
  napi_typedarray_type type;
  size_t length;
  void *data;
  napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr);
  if (type != napi_float32_array) throw ArgError{std::string(name) + " must be a Float32Array"};
  if (length != expected) throw ArgError{std::string(name) + " has " + std::to_string(length) + " values, expected " + std::to_string(expected)};
  return static_cast<float *>(data);
}

int integer(napi_env env, napi_value value, const char *name) {
  int32_t result;
  if (napi_get_value_int32(env, value, &result) != napi_ok) throw ArgError{std::string(name) + " must be a number"};
  return result;
}

napi_value property(napi_env env, napi_value object, const char *name) {
  napi_value result;
  napi_get_named_property(env, object, name, &result);
  return result;
}

// bottleneck(input, output, { channels, height, width, m, threads, BT, AT }, blocks[])
// where every block is { scale, shift, u1, bias1, u2, bias2 }.
napi_value Bottleneck(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  try {
    if (!cpuSupported()) throw ArgError{"this CPU has no AVX2/FMA"};
    if (argc != 4) throw ArgError{"bottleneck takes (input, output, shape, blocks)"};
    Shape s{};
    s.channels = integer(env, property(env, argv[2], "channels"), "channels");
    s.height = integer(env, property(env, argv[2], "height"), "height");
    s.width = integer(env, property(env, argv[2], "width"), "width");
    s.m = integer(env, property(env, argv[2], "m"), "m");
    const int threads = integer(env, property(env, argv[2], "threads"), "threads");
    if (s.channels <= 0 || s.channels % kCols != 0) throw ArgError{"channels must be a positive multiple of 16"};
    if (s.height <= 0 || s.width <= 0) throw ArgError{"height and width must be positive"};
    if (s.m != 4 && s.m != 8) throw ArgError{"m must be 4 or 8"};
    if (threads < 1 || threads > 256) throw ArgError{"threads must be 1 to 256"};
    s.n = s.m + 2;
    s.tilesY = (s.height + s.m - 1) / s.m;
    s.tilesX = (s.width + s.m - 1) / s.m;
    s.tiles = s.tilesY * s.tilesX;
    s.tilesPadded = (s.tiles + kRows - 1) / kRows * kRows;
    s.paddedH = s.tilesY * s.m + 2;
    s.paddedW = s.tilesX * s.m + 2;
    const size_t c = s.channels, freqs = static_cast<size_t>(s.n) * s.n;
    const size_t mapSize = c * s.height * s.width;
    const float *input = floats(env, argv[0], mapSize, "input");
    float *output = floats(env, argv[1], mapSize, "output");
    Matrices mx{floats(env, property(env, argv[2], "BT"), freqs, "BT"), floats(env, property(env, argv[2], "AT"), static_cast<size_t>(s.m) * s.n, "AT")};
    if (!pairedStructure(mx.BT, mx.AT, s.n)) throw ArgError{"BT and AT must be Cook-Toom matrices of the points 0, +-p..., infinity"};
    uint32_t count;
    if (napi_get_array_length(env, argv[3], &count) != napi_ok) throw ArgError{"blocks must be an array"};
    std::vector<Block> blocks;
    for (uint32_t i = 0; i < count; i++) {
      napi_value b;
      napi_get_element(env, argv[3], i, &b);
      blocks.push_back({
          floats(env, property(env, b, "scale"), c, "scale"), floats(env, property(env, b, "shift"), c, "shift"),
          floats(env, property(env, b, "u1"), freqs * c * c, "u1"), floats(env, property(env, b, "bias1"), c, "bias1"),
          floats(env, property(env, b, "u2"), freqs * c * c, "u2"), floats(env, property(env, b, "bias2"), c, "bias2"),
      });
    }
    if (s.n == 10) run<10>(s, mx, blocks, input, output, threads);
    else run<6>(s, mx, blocks, input, output, threads);
  } catch (const ArgError &e) {
    napi_throw_type_error(env, nullptr, e.message.c_str());
  }
  return nullptr;
}

napi_value Supported(napi_env env, napi_callback_info) {
  napi_value result;
  napi_get_boolean(env, cpuSupported(), &result);
  return result;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"bottleneck", nullptr, Bottleneck, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"supported", nullptr, Supported, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 2, props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
