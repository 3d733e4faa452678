// The generator's decoder (the residual bottleneck, ResBlock2d × N: BN → ReLU → conv3×3 → BN →
// ReLU → conv3×3 plus the input; then the up blocks, nearest 2× → conv3×3 → BN → ReLU) as one
// native call: Winograd F(m×m, 3×3) with the transforms fused into the passes that load and
// store the maps, and the products as AVX2/FMA matrix products. ONNX Runtime runs each transform
// as separate grouped convs, transposes and reorders (about as long as the products themselves).
// An up block runs as one 3×3 conv of the small map with four outputs per channel, one per
// output phase (src/fomm/graph/blocks.ts, upBlockPhaseKernels); its epilogue interleaves the phases
// into the next up block's input. The last up block's phases are the output, for the final conv.
//
// Maps are kept blocked by 8 channels ([C/8][H][W][8]) so every transform step is one 8-wide
// vector operation across channels. The transform matrices, the transformed weights and the
// folded batch norms come from JavaScript (src/fomm/native/decoder.ts); nothing is built here.
#include "kernels.h"

#include <immintrin.h>

#include <algorithm>
#include <barrier>
#include <cstdint>
#include <thread>
#include <vector>

namespace fomm {

// Kernels are compiled for AVX2 + FMA; the module itself is not, so loading it on an older CPU is
// safe and supported() tells JavaScript to stay on ONNX Runtime.
#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace {

// Where an output transform puts its values.
struct Epilogue {
  enum Kind { Hidden, Residual, Interleave, Phases } kind;
  float *target;
  const Conv *next;  // Hidden, Interleave: the geometry of the padded map written
};

// Splits [0, count) evenly across threads.
inline void share(int count, int thread, int threads, int &begin, int &end) {
  begin = static_cast<int>(static_cast<int64_t>(count) * thread / threads);
  end = static_cast<int>(static_cast<int64_t>(count) * (thread + 1) / threads);
}

// padded[cb][y + 1][x + 1][lane] = relu(scale·x + shift) of a blocked, unpadded map, or a plain
// copy where scale is null.
void pad(const Conv &s, const float *map, const float *scale, const float *shift, float *padded, int thread, int threads) {
  int begin, end;
  share(s.in / kLanes, thread, threads, begin, end);
  const __m256 zero = _mm256_setzero_ps();
  for (int cb = begin; cb < end; cb++) {
    const __m256 a = scale ? _mm256_loadu_ps(scale + cb * kLanes) : _mm256_set1_ps(1.0f);
    const __m256 b = scale ? _mm256_loadu_ps(shift + cb * kLanes) : zero;
    for (int y = 0; y < s.height; y++) {
      const float *src = map + (static_cast<int64_t>(cb) * s.height + y) * s.width * kLanes;
      float *dst = padded + ((static_cast<int64_t>(cb) * s.paddedH + y + 1) * s.paddedW + 1) * kLanes;
      for (int x = 0; x < s.width; x++) {
        const __m256 value = _mm256_loadu_ps(src + x * kLanes);
        _mm256_storeu_ps(dst + x * kLanes, scale ? _mm256_max_ps(zero, _mm256_fmadd_ps(a, value, b)) : value);
      }
    }
  }
}

// Cook–Toom matrices from the points 0, ±p₁, ±p₂, …, ∞ (in that order) have a structure the
// transforms use to halve their multiply-adds: Bᵀ's row for 0 is even in its column index and
// the row for ∞ odd; the rows for +p and −p differ only in the sign of their odd columns
// (E + O and E − O). Aᵀ's column for 0 is (1, 0, …), the one for ∞ (…, 0, 1), and the columns
// for ±p differ only in the sign of their odd rows (x₊ + x₋ for even rows, x₊ − x₋ for odd).
// pairedStructure() (below, outside the AVX2 code: the binding calls it) checks exactly that
// before anything runs.

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
void inputTransform(const Conv &s, const float *padded, float *V, int thread, int threads) {
  const int blocks = s.in / kLanes;
  int begin, end;
  share(blocks * s.tiles, thread, threads, begin, end);
  __m256 bt[N][N];
  for (int i = 0; i < N; i++) for (int j = 0; j < N; j++) bt[i][j] = _mm256_set1_ps(s.BT[i * N + j]);
  const int64_t stride = static_cast<int64_t>(s.tilesPadded) * s.in;
  __m256 d[N][N], t[N][N];
  for (int item = begin; item < end; item++) {
    const int tile = item / blocks, cb = item % blocks;
    const int ty = tile / s.tilesX, tx = tile % s.tilesX;
    const float *base = padded + ((static_cast<int64_t>(cb) * s.paddedH + ty * s.m) * s.paddedW + tx * s.m) * kLanes;
    for (int a = 0; a < N; a++) for (int b = 0; b < N; b++) d[a][b] = _mm256_loadu_ps(base + (a * s.paddedW + b) * kLanes);
    for (int b = 0; b < N; b++) applyBT<N>(bt, [&](int a) { return d[a][b]; }, [&](int i, __m256 v) { t[i][b] = v; });
    float *out = V + static_cast<int64_t>(tile) * s.in + cb * kLanes;
    for (int i = 0; i < N; i++) {
      applyBT<N>(bt, [&](int b) { return t[i][b]; }, [&](int j, __m256 v) { _mm256_storeu_ps(out + (i * N + j) * stride, v); });
    }
  }
}

// C[6 × 16] = A[6 × K] · B[K × 16] with A's rows `lda` apart and B packed 16 wide: twelve
// accumulators in named registers (an array of them was kept in memory by GCC when not inlined,
// 31 instead of 79 GFLOPS a core), and B prefetched 4 KB ahead, which is the next rows of the
// same packed stream (~84 GFLOPS a core, peak 100 on this machine).
inline void microKernel(const float *a, int lda, const float *b, int K, float *c, int ldc) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda, *a4 = a + 4 * lda, *a5 = a + 5 * lda;
  for (int k = 0; k < K; k++) {
    _mm_prefetch(reinterpret_cast<const char *>(b + k * kCols + 1024), _MM_HINT_T0);
    const __m256 b0 = _mm256_loadu_ps(b + k * kCols), b1 = _mm256_loadu_ps(b + k * kCols + 8);
    __m256 x = _mm256_broadcast_ss(a0 + k);
    c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a1 + k);
    c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a2 + k);
    c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a3 + k);
    c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(a4 + k);
    c40 = _mm256_fmadd_ps(x, b0, c40), c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(a5 + k);
    c50 = _mm256_fmadd_ps(x, b0, c50), c51 = _mm256_fmadd_ps(x, b1, c51);
  }
  _mm256_storeu_ps(c, c00), _mm256_storeu_ps(c + 8, c01);
  _mm256_storeu_ps(c + ldc, c10), _mm256_storeu_ps(c + ldc + 8, c11);
  _mm256_storeu_ps(c + 2 * ldc, c20), _mm256_storeu_ps(c + 2 * ldc + 8, c21);
  _mm256_storeu_ps(c + 3 * ldc, c30), _mm256_storeu_ps(c + 3 * ldc + 8, c31);
  _mm256_storeu_ps(c + 4 * ldc, c40), _mm256_storeu_ps(c + 4 * ldc + 8, c41);
  _mm256_storeu_ps(c + 5 * ldc, c50), _mm256_storeu_ps(c + 5 * ldc + 8, c51);
}

// M[f] = V[f] · U[f] for every frequency f: [tiles × in] · [in × out], 6 × 16 register blocks.
void products(const Conv &s, const float *V, const float *U, float *M, int thread, int threads) {
  const int freqs = s.n * s.n;
  int begin, end;
  share(freqs, thread, threads, begin, end);
  for (int f = begin; f < end; f++) {
    const float *v = V + static_cast<int64_t>(f) * s.tilesPadded * s.in;
    const float *u = U + static_cast<int64_t>(f) * s.in * s.out;
    float *result = M + static_cast<int64_t>(f) * s.tilesPadded * s.out;
    for (int t0 = 0; t0 < s.tilesPadded; t0 += kRows) {
      for (int kb = 0; kb < s.out / kCols; kb++) {
        microKernel(v + static_cast<int64_t>(t0) * s.in, s.in, u + static_cast<int64_t>(kb) * s.in * kCols, s.in, result + static_cast<int64_t>(t0) * s.out + kb * kCols, s.out);
      }
    }
  }
}

// Transposes 8 vectors of 8 (rows[i][j] ↔ rows[j][i]) in place.
inline void transpose8x8(__m256 (&rows)[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(rows[0], rows[1]), t1 = _mm256_unpackhi_ps(rows[0], rows[1]);
  const __m256 t2 = _mm256_unpacklo_ps(rows[2], rows[3]), t3 = _mm256_unpackhi_ps(rows[2], rows[3]);
  const __m256 t4 = _mm256_unpacklo_ps(rows[4], rows[5]), t5 = _mm256_unpackhi_ps(rows[4], rows[5]);
  const __m256 t6 = _mm256_unpacklo_ps(rows[6], rows[7]), t7 = _mm256_unpackhi_ps(rows[6], rows[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  rows[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  rows[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  rows[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  rows[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  rows[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  rows[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  rows[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  rows[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Y = Aᵀ·M·A + bias per tile, then the epilogue: ReLU into the next conv's padded input
// (Hidden), added onto the blocked residual stream in place (Residual), ReLU into the next up
// block's padded input at the phase's interleaved position (Interleave), or ReLU into the NCHW
// phases output (Phases).
template <int N>
void outputTransform(const Conv &s, const float *M, const float *bias, const Epilogue &e, int thread, int threads) {
  constexpr int R = N - 2;
  const int blocks = s.out / kLanes;
  int begin, end;
  share(blocks * s.tiles, thread, threads, begin, end);
  __m256 at[R][N];
  for (int i = 0; i < R; i++) for (int j = 0; j < N; j++) at[i][j] = _mm256_set1_ps(s.AT[i * N + j]);
  const __m256 zero = _mm256_setzero_ps();
  const int64_t stride = static_cast<int64_t>(s.tilesPadded) * s.out;
  const int64_t plane = static_cast<int64_t>(s.height) * s.width;
  const int phaseChannels = s.out / 4;
  __m256 v[N][N], t[R][N];
  alignas(32) float lanes[kLanes];
  for (int item = begin; item < end; item++) {
    const int tile = item / blocks, cb = item % blocks;
    const int ty = tile / s.tilesX, tx = tile % s.tilesX;
    const float *in = M + static_cast<int64_t>(tile) * s.out + cb * kLanes;
    for (int i = 0; i < N; i++) for (int j = 0; j < N; j++) v[i][j] = _mm256_loadu_ps(in + (i * N + j) * stride);
    for (int j = 0; j < N; j++) applyAT<N>(at, [&](int i) { return v[i][j]; }, [&](int p, __m256 value) { t[p][j] = value; });
    const __m256 b = _mm256_loadu_ps(bias + cb * kLanes);
    const int rows = std::min(R, s.height - ty * R), cols = std::min(R, s.width - tx * R);
    // Interleave: this block's phase and its channel block in the next map.
    const int phase = cb * kLanes / std::max(phaseChannels, 1), nextBlock = cb * kLanes % std::max(phaseChannels, 1) / kLanes;
    __m256 row[R];
    for (int p = 0; p < rows; p++) {
      const int y = ty * R + p;
      applyAT<N>(at, [&](int j) { return t[p][j]; }, [&](int q, __m256 value) { row[q] = _mm256_add_ps(value, b); });
      switch (e.kind) {
        case Epilogue::Hidden: {
          float *dst = e.target + ((static_cast<int64_t>(cb) * e.next->paddedH + y + 1) * e.next->paddedW + tx * R + 1) * kLanes;
          for (int q = 0; q < cols; q++) _mm256_storeu_ps(dst + q * kLanes, _mm256_max_ps(zero, row[q]));
          break;
        }
        case Epilogue::Residual: {
          float *dst = e.target + ((static_cast<int64_t>(cb) * s.height + y) * s.width + tx * R) * kLanes;
          for (int q = 0; q < cols; q++) _mm256_storeu_ps(dst + q * kLanes, _mm256_add_ps(_mm256_loadu_ps(dst + q * kLanes), row[q]));
          break;
        }
        case Epilogue::Interleave: {
          const int yy = 2 * y + (phase >> 1);
          float *dst = e.target + ((static_cast<int64_t>(nextBlock) * e.next->paddedH + yy + 1) * e.next->paddedW + 2 * tx * R + (phase & 1) + 1) * kLanes;
          for (int q = 0; q < cols; q++) _mm256_storeu_ps(dst + 2 * q * kLanes, _mm256_max_ps(zero, row[q]));
          break;
        }
        case Epilogue::Phases: {
          // Channel-blocked vectors to NCHW rows: a whole row of 8 is one 8×8 transpose and eight
          // contiguous stores; a partial row is written value by value.
          float *dst = e.target + static_cast<int64_t>(cb) * kLanes * plane + static_cast<int64_t>(y) * s.width + tx * R;
          for (int q = 0; q < cols; q++) row[q] = _mm256_max_ps(zero, row[q]);
          if constexpr (R == kLanes) {
            if (cols == kLanes) {
              transpose8x8(row);
              for (int l = 0; l < kLanes; l++) _mm256_storeu_ps(dst + l * plane, row[l]);
              break;
            }
          }
          for (int q = 0; q < cols; q++) {
            _mm256_store_ps(lanes, row[q]);
            for (int l = 0; l < kLanes; l++) dst[l * plane + q] = lanes[l];
          }
          break;
        }
      }
    }
  }
}

// NCHW → [C/8][H][W][8].
void toBlocked(int channels, int64_t plane, const float *nchw, float *blocked, int thread, int threads) {
  int begin, end;
  share(channels, thread, threads, begin, end);
  for (int c = begin; c < end; c++) {
    float *dst = blocked + static_cast<int64_t>(c / kLanes) * plane * kLanes + c % kLanes;
    const float *src = nchw + c * plane;
    for (int64_t i = 0; i < plane; i++) dst[i * kLanes] = src[i];
  }
}

// [C/8][H][W][8] → NCHW.
void fromBlocked(int channels, int64_t plane, const float *blocked, float *nchw, int thread, int threads) {
  int begin, end;
  share(channels, thread, threads, begin, end);
  for (int c = begin; c < end; c++) {
    const float *src = blocked + static_cast<int64_t>(c / kLanes) * plane * kLanes + c % kLanes;
    float *dst = nchw + c * plane;
    for (int64_t i = 0; i < plane; i++) dst[i] = src[i * kLanes];
  }
}

// One conv: input transform, products, output transform, with barriers between the passes.
template <int N>
void conv(const Conv &s, const float *padded, float *V, const float *U, float *M, const float *bias, const Epilogue &e, std::barrier<> &sync, int thread, int threads) {
  inputTransform<N>(s, padded, V, thread, threads);
  sync.arrive_and_wait();
  products(s, V, U, M, thread, threads);
  sync.arrive_and_wait();
  outputTransform<N>(s, M, bias, e, thread, threads);
  sync.arrive_and_wait();
}

void convAny(const Conv &s, const float *padded, float *V, const float *U, float *M, const float *bias, const Epilogue &e, std::barrier<> &sync, int thread, int threads) {
  if (s.n == 10) conv<10>(s, padded, V, U, M, bias, e, sync, thread, threads);
  else conv<6>(s, padded, V, U, M, bias, e, sync, thread, threads);
}

}  // namespace

void decode(const Request &r, const float *input, float *output, float *workspace) {
  const Conv &bottleneck = r.convs[0];
  const Conv *ups = r.convs.data() + 1;
  const size_t upCount = r.convs.size() - 1;
  const int threads = r.threads;
  const int64_t plane = static_cast<int64_t>(bottleneck.height) * bottleneck.width;
  const Workspace layout(r);
  float *residual = workspace + layout.residual, *V = workspace + layout.V, *M = workspace + layout.M, *hidden = workspace + layout.hidden;
  std::barrier sync(threads);
  auto work = [&](int thread) {
    toBlocked(bottleneck.in, plane, input, residual, thread, threads);
    sync.arrive_and_wait();
    for (const ResBlock &block : r.blocks) {
      pad(bottleneck, residual, block.scale, block.shift, hidden, thread, threads);
      sync.arrive_and_wait();
      convAny(bottleneck, hidden, V, block.u1, M, block.bias1, {Epilogue::Hidden, hidden, &bottleneck}, sync, thread, threads);
      convAny(bottleneck, hidden, V, block.u2, M, block.bias2, {Epilogue::Residual, residual, nullptr}, sync, thread, threads);
    }
    if (upCount == 0) {
      fromBlocked(bottleneck.in, plane, residual, output, thread, threads);
      return;
    }
    pad(ups[0], residual, nullptr, nullptr, workspace + layout.upInputs[0], thread, threads);
    sync.arrive_and_wait();
    for (size_t i = 0; i < upCount; i++) {
      const bool last = i + 1 == upCount;
      const Epilogue e = last ? Epilogue{Epilogue::Phases, output, nullptr} : Epilogue{Epilogue::Interleave, workspace + layout.upInputs[i + 1], &ups[i + 1]};
      convAny(ups[i], workspace + layout.upInputs[i], V, r.upWeights[i].u, M, r.upWeights[i].bias, e, sync, thread, threads);
    }
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

}  // namespace fomm
