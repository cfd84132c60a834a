// Matrix products and convolutions with a 0/1 (spike) operand on the CPU, without multiplications.
//
// Built into the same extension as lif_kernel.cpp (see cpp.py) and called from fused.py, which documents
// when each is used. For spikes s [R, K] (uint8, or float holding only 0 and 1), weights W [M, K] and
// gradients g [R, M]:
//
//   forward       y[r, :]  = b + sum_{j : s[r,j] = 1} W^T[j, :]        (y = s W^T + b)
//   weight grad   dW^T[j, :] = sum_{r : s[r,j] = 1} g[r, :]            (dW = g^T s)
//
// Two algorithms, chosen from the density of s (forward: per row of s, so a row's result never depends on the
// rest of the batch; weight gradient: per call):
//   * gather: add the selected rows (cost ~ number of spikes); used below kGatherDensity;
//   * four Russians: for every group of 4 columns of s (forward) or 4 rows (weight grad), a table of the
//     16 possible sums of the 4 rows is built once, and each output row adds one table entry per group,
//     i.e. K/4 additions per row whatever the density (used for dense 0/1 operands such as a rate-coded
//     input layer). Tables are built and read one block of kColBlock output columns at a time (L2-sized).
// Every sum runs over j (or r) in ascending order inside fixed groups, so the result does not depend on
// the number of threads; it equals the dense product up to float rounding (a different summation order).
// The other operand is read in whole vectors and blocks that end inside its rows (overlapping the block
// before when needed), so it is copied only when narrower than one block.
// Parallel over rows of s (forward) or columns of s (weight gradient): torch's OpenMP pool (at::parallel_for)
// when built with -fopenmp, else std::thread.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

typedef float Vec __attribute__((vector_size(64), aligned(4)));  // 16 floats; AVX-512, or 2-4 narrower ops
constexpr int64_t kVL = 16;
constexpr int64_t kMaxVecs = 16;   // gather: output columns per pass (256 floats in registers)
constexpr int64_t kColBlock = 64;  // four Russians: output columns per table block (4 vectors)
constexpr int64_t kBlockVecs = kColBlock / kVL;
// four Russians: groups whose tables are resident at once (measured best: forward 16 x 16 x 64 floats = 64 KB,
// weight gradient 128 x 16 x 64 floats = 512 KB; smaller slabs pay more for the partial sums' round trips)
constexpr int64_t kForwardGroups = 16;
constexpr int64_t kGradGroups = 128;
constexpr double kGatherDensity = 0.2;  // below: gather; above: four Russians (measured crossover ~0.25)

inline Vec load(const float* p) { Vec v; std::memcpy(&v, p, sizeof(Vec)); return v; }
inline void store(float* p, Vec v) { std::memcpy(p, &v, sizeof(Vec)); }

// Run f(begin, end) over [0, n) in contiguous parts of at least min_per_thread: torch's OpenMP pool when built
// with -fopenmp (cpp.py does so when torch runs libgomp: one runtime, its threads already awake), else up
// to at::get_num_threads() std::threads. Every part computes its rows alone, so the split never changes a value.
template <typename F>
void parallel_rows(int64_t n, int64_t min_per_thread, const F& f) {
#ifdef _OPENMP
  at::parallel_for(0, n, min_per_thread, f);
#else
  const int64_t want = std::min<int64_t>(at::get_num_threads(), std::max<int64_t>(1, n / std::max<int64_t>(1, min_per_thread)));
  if (want <= 1) { f(0, n); return; }
  std::vector<std::thread> pool;
  const int64_t step = (n + want - 1) / want;
  for (int64_t t = 1; t < want; ++t) {
    const int64_t b = t * step, e = std::min(n, b + step);
    if (b < e) pool.emplace_back([&f, b, e] { f(b, e); });
  }
  f(0, std::min(n, step));
  for (auto& th : pool) th.join();
#endif
}

// out[0:width] = init + sum_k base[idx[k] * stride + 0:width], NV vectors of 16 floats. With width >= 16 the
// last vector is taken at width - 16 (overlapping the one before it: the same columns, the same sums), so
// nothing outside [0, width) is read or written; narrower rows need base rows (and init) padded to 16 floats.
template <int NV>
void accumulate_rows(const int32_t* idx, int64_t n, const float* base, int64_t stride, const float* init,
                     float* out, int64_t width) {
  int64_t off[NV];
  for (int v = 0; v < NV; ++v) off[v] = v * kVL;
  if (width >= kVL) off[NV - 1] = width - kVL;
  Vec acc[NV];
  for (int v = 0; v < NV; ++v) acc[v] = init ? load(init + off[v]) : Vec{};
  for (int64_t k = 0; k < n; ++k) {
    const float* p = base + static_cast<int64_t>(idx[k]) * stride;
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[v] += load(p + off[v]);
  }
  if (width >= kVL) {
    for (int v = 0; v < NV; ++v) store(out + off[v], acc[v]);
  } else {
    float tmp[kVL];
    store(tmp, acc[0]);
    std::memcpy(out, tmp, sizeof(float) * width);
  }
}

using AccumulateFn = void (*)(const int32_t*, int64_t, const float*, int64_t, const float*, float*, int64_t);

AccumulateFn accumulate_for(int64_t vecs) {
  static const AccumulateFn table[kMaxVecs + 1] = {
      nullptr, accumulate_rows<1>, accumulate_rows<2>, accumulate_rows<3>, accumulate_rows<4>,
      accumulate_rows<5>, accumulate_rows<6>, accumulate_rows<7>, accumulate_rows<8>, accumulate_rows<9>,
      accumulate_rows<10>, accumulate_rows<11>, accumulate_rows<12>, accumulate_rows<13>,
      accumulate_rows<14>, accumulate_rows<15>, accumulate_rows<16>};
  return table[vecs];
}

// out[0:M] = init + sum over the listed rows of base, a pass of up to kMaxVecs vectors at a time (a last pass
// narrower than one vector is moved back to end at M: rows of base need no padding when M >= 16)
void accumulate_listed(const int32_t* idx, int64_t n, const float* base, int64_t stride, const float* init,
                       float* out, int64_t M) {
  for (int64_t c = 0; c < M; c += kMaxVecs * kVL) {
    int64_t c0 = c, width = std::min(kMaxVecs * kVL, M - c);
    if (width < kVL && M >= kVL) c0 = M - kVL, width = kVL;
    accumulate_for((width + kVL - 1) / kVL)(idx, n, base + c0, stride, init ? init + c0 : nullptr, out + c0, width);
  }
}

// Start of the kColBlock-wide column block that begins at c: moved back to end at M when it would run past
// M (needs M >= kColBlock; narrower operands are padded by the caller)
inline int64_t block_start(int64_t c, int64_t M) { return std::min(c, M - kColBlock); }

// ---- operands: s as 0/1 bytes or 0/1 floats -------------------------------------------------------------

// Count the ones of s (n values); -1 if s holds anything but 0 and 1. Branch-free blocks, so it vectorises.
template <typename In>
int64_t count_binary(const In* s, int64_t n) {
  int64_t ones = 0;
  constexpr int64_t kBlock = 4096;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    int32_t block_ones = 0, bad = 0;
    for (int64_t i = b; i < e; ++i) {
      const In x = s[i];
      block_ones += static_cast<int32_t>(x == In(1));
      bad |= static_cast<int32_t>((x != In(0)) & (x != In(1)));
    }
    if (bad) return -1;
    ones += block_ones;
  }
  return ones;
}

// bits[j] = (s[j] != 0) for one row of K values (vectorises)
template <typename In>
inline void row_bits(const In* s, int64_t K, uint8_t* bits) {
  for (int64_t j = 0; j < K; ++j) bits[j] = static_cast<uint8_t>(s[j] != In(0));
}

// ---- forward -------------------------------------------------------------------------------------------

// tab[g][p][0:kColBlock] = sum_{i in bits(p)} rows[first + (4g + i) * step][c0 : c0 + kColBlock], for g in [0, G)
// (rows beyond `count` are zero); `row(i)` gives the pointer to padded row i.
template <typename RowFn>
void build_tables(int64_t G, int64_t count, const RowFn& row, int64_t c0, float* tab) {
  for (int64_t g = 0; g < G; ++g) {
    float* t = tab + g * 16 * kColBlock;
    std::memset(t, 0, sizeof(float) * kColBlock);
    for (int p = 1; p < 16; ++p) {
      const int low = __builtin_ctz(p);
      const int64_t i = 4 * g + low;
      const float* prev = t + (p & (p - 1)) * kColBlock;
      float* cur = t + p * kColBlock;
      if (i < count) {
        const float* src = row(i) + c0;
        for (int v = 0; v < kBlockVecs; ++v) store(cur + v * kVL, load(prev + v * kVL) + load(src + v * kVL));
      } else {
        std::memcpy(cur, prev, sizeof(float) * kColBlock);
      }
    }
  }
}

// For the n items i (rows of the forward, columns of s in the weight gradient), whose table indices are
// idx[i * idx_stride + g]: part[i] (kColBlock floats) = (first ? init, or 0 without init : part[i])
// + sum_{g < ng} tab[g][idx[i * idx_stride + g]]. Two items at a time: twice the independent additions in
// flight. Float stores and loads are exact, so slab after slab adds in the same order as one pass would.
inline void add_table_lookups(const uint8_t* idx, int64_t idx_stride, int64_t n, int64_t ng, const float* tab,
                              bool first, const float* init, float* part) {
  for (int64_t i = 0; i < n; i += 2) {
    const bool two = i + 1 < n;
    const uint8_t* na = idx + i * idx_stride;
    const uint8_t* nb = two ? na + idx_stride : na;
    float* pa = part + i * kColBlock;
    float* pb = two ? pa + kColBlock : pa;
    Vec a[kBlockVecs], b[kBlockVecs];
    for (int v = 0; v < kBlockVecs; ++v) {
      if (first) {
        a[v] = b[v] = init ? load(init + v * kVL) : Vec{};
      } else {
        a[v] = load(pa + v * kVL);
        b[v] = load(pb + v * kVL);
      }
    }
    for (int64_t g = 0; g < ng; ++g) {
      const float* ea = tab + (g * 16 + na[g]) * kColBlock;
      const float* eb = tab + (g * 16 + nb[g]) * kColBlock;
      for (int v = 0; v < kBlockVecs; ++v) { a[v] += load(ea + v * kVL); b[v] += load(eb + v * kVL); }
    }
    for (int v = 0; v < kBlockVecs; ++v) {
      store(pa + v * kVL, a[v]);
      if (two) store(pb + v * kVL, b[v]);
    }
  }
}

// y[r, :] for the listed rows r = dense[i], whose 4-column nibbles are nib[i * G ...]. Per block of kColBlock
// output columns, the groups are taken kForwardGroups at a time (their tables stay near the core); the partial
// sums wait in `part` between slabs (order of additions: bias, then group 0, 1, ...).
inline void four_russians_rows(const uint8_t* nib, const std::vector<int64_t>& dense, int64_t G, int64_t K,
                               const float* wt, int64_t stride, const float* bias, float* y, int64_t M) {
  std::vector<float> tab(static_cast<size_t>(std::min(kForwardGroups, G) * 16 * kColBlock));
  const int64_t n = static_cast<int64_t>(dense.size());
  std::vector<float> part(static_cast<size_t>(n * kColBlock));
  for (int64_t c = 0; c < M; c += kColBlock) {
    const int64_t c0 = block_start(c, stride);
    for (int64_t g0 = 0; g0 < G; g0 += kForwardGroups) {
      const int64_t ng = std::min(kForwardGroups, G - g0);
      build_tables(ng, K - 4 * g0, [&](int64_t i) { return wt + (4 * g0 + i) * stride; }, c0, tab.data());
      add_table_lookups(nib + g0, G, n, ng, tab.data(), g0 == 0, bias ? bias + c0 : nullptr, part.data());
    }
    const int64_t width = std::min(kColBlock, M - c0);  // < kColBlock only when the rows are padded (M < 64)
    for (int64_t i = 0; i < n; ++i) std::memcpy(y + dense[i] * M + c0, part.data() + i * kColBlock, sizeof(float) * width);
  }
}

// Per row: fewer than kGatherDensity ones -> gather, else four Russians. The choice depends on the row alone,
// so a row gives bitwise the same result whatever else is in the batch (one step or all T steps at once).
template <typename In>
void forward_rows(const In* s, int64_t R, int64_t K, const float* wt, int64_t stride, const float* bias, float* y,
                  int64_t M) {
  const int64_t G = (K + 3) / 4;
  parallel_rows(R, 64, [&](int64_t r0, int64_t r1) {
    std::vector<uint8_t> bits(static_cast<size_t>(4 * G), 0), nib;
    std::vector<int32_t> idx(K);
    std::vector<int64_t> dense;
    for (int64_t r = r0; r < r1; ++r) {
      row_bits(s + r * K, K, bits.data());
      int64_t n = 0;
      for (int64_t j = 0; j < K; ++j) n += bits[j];
      if (static_cast<double>(n) < kGatherDensity * static_cast<double>(K)) {
        n = 0;
        for (int64_t j = 0; j < K; ++j) { idx[n] = static_cast<int32_t>(j); n += bits[j]; }
        accumulate_listed(idx.data(), n, wt, stride, bias, y + r * M, M);
      } else {
        dense.push_back(r);
        nib.resize(dense.size() * G);
        uint8_t* o = nib.data() + (dense.size() - 1) * G;
        const uint8_t* bt = bits.data();
        for (int64_t g = 0; g < G; ++g)
          o[g] = static_cast<uint8_t>(bt[4 * g] | (bt[4 * g + 1] << 1) | (bt[4 * g + 2] << 2) | (bt[4 * g + 3] << 3));
      }
    }
    if (!dense.empty()) four_russians_rows(nib.data(), dense, G, K, wt, stride, bias, y, M);
  });
}

// ---- weight gradient -----------------------------------------------------------------------------------

template <typename In>
void weight_grad_gather(const In* s, int64_t R, int64_t K, const float* g, int64_t stride, float* dwt, int64_t M) {
  parallel_rows(K, 16, [&](int64_t j0, int64_t j1) {
    const int64_t J = j1 - j0;
    std::vector<int32_t> start(J + 1, 0);
    for (int64_t r = 0; r < R; ++r) {
      const In* row = s + r * K;
      for (int64_t j = j0; j < j1; ++j) start[j - j0 + 1] += (row[j] != In(0));
    }
    for (int64_t j = 0; j < J; ++j) start[j + 1] += start[j];
    std::vector<int32_t> rows(start[J]);
    std::vector<int32_t> pos(start.begin(), start.end() - 1);
    for (int64_t r = 0; r < R; ++r) {
      const In* row = s + r * K;
      for (int64_t j = j0; j < j1; ++j)
        if (row[j] != In(0)) rows[pos[j - j0]++] = static_cast<int32_t>(r);
    }
    for (int64_t j = 0; j < J; ++j)
      accumulate_listed(rows.data() + start[j], start[j + 1] - start[j], g, stride, nullptr, dwt + (j0 + j) * M, M);
  });
}

template <typename In>
void weight_grad_four_russians(const In* s, int64_t R, int64_t K, const float* g, int64_t stride, float* dwt,
                               int64_t M) {
  const int64_t Q = (R + 3) / 4;  // groups of 4 rows of s (and of g)
  parallel_rows(K, 16, [&](int64_t j0, int64_t j1) {
    const int64_t J = j1 - j0;
    // nibT[j * Q + q] = bits s[4q .. 4q+3, j] (bit i = row 4q+i): built row-group by row-group into
    // nibQ [Q, J] (sequential), then transposed in tiles
    std::vector<uint8_t> nibQ(static_cast<size_t>(Q * J), 0), bits(static_cast<size_t>(J));
    for (int64_t r = 0; r < R; ++r) {
      row_bits(s + r * K + j0, J, bits.data());
      uint8_t* o = nibQ.data() + (r >> 2) * J;
      const int sh = static_cast<int>(r & 3);
      for (int64_t j = 0; j < J; ++j) o[j] |= static_cast<uint8_t>(bits[j] << sh);
    }
    std::vector<uint8_t> nibT(static_cast<size_t>(J * Q));
    constexpr int64_t kTile = 64;
    for (int64_t qb = 0; qb < Q; qb += kTile)
      for (int64_t jb = 0; jb < J; jb += kTile)
        for (int64_t j = jb; j < std::min(J, jb + kTile); ++j)
          for (int64_t q = qb; q < std::min(Q, qb + kTile); ++q) nibT[j * Q + q] = nibQ[q * J + j];
    std::vector<float> tab(static_cast<size_t>(std::min(kGradGroups, Q) * 16 * kColBlock)), part(static_cast<size_t>(J * kColBlock));
    for (int64_t c = 0; c < M; c += kColBlock) {
      const int64_t c0 = block_start(c, stride);
      for (int64_t q0 = 0; q0 < Q; q0 += kGradGroups) {
        const int64_t nq = std::min(kGradGroups, Q - q0);
        build_tables(nq, R - 4 * q0, [&](int64_t i) { return g + (4 * q0 + i) * stride; }, c0, tab.data());
        add_table_lookups(nibT.data() + q0, Q, J, nq, tab.data(), q0 == 0, nullptr, part.data());
      }
      const int64_t width = std::min(kColBlock, M - c0);
      for (int64_t j = 0; j < J; ++j) std::memcpy(dwt + (j0 + j) * M + c0, part.data() + j * kColBlock, sizeof(float) * width);
    }
  });
}

// This thread's scratch memory `slot`, at least n values of T, reused across calls and valid until the slot's next
// use on this thread. Slots: 0 the spike matmuls' transposed weight, 1 their transposed weight gradient (see
// scratch_tensor), 2 the spike convolution's window patterns, 3 its row bits.
enum ScratchSlot : int { kSlotWeightT = 0, kSlotGradT = 1, kSlotPatterns = 2, kSlotRowBits = 3 };

template <typename T>
T* thread_scratch(int slot, int64_t n) {
  thread_local std::vector<uint64_t> buf[4];
  const size_t words = static_cast<size_t>((n * static_cast<int64_t>(sizeof(T)) + 7) / 8);
  if (buf[slot].size() < words) buf[slot].resize(words);
  return reinterpret_cast<T*>(buf[slot].data());
}

// ---- convolution with a 0/1 input ----------------------------------------------------------------------
//
// Stride 1, dilation 1, one group, zero padding (ph, pw), "four Russians" along the kernel rows: a 0/1 input row
// seen through a window of Kw taps has one of 2^Kw patterns p (bit kx set when the input under tap kx is 1), so
//   tab[ci, ky, p, :] = sum_{kx in p, ascending} W[:, ci, ky, kx]        (built once per call, channels padded
//                                                                          to Cp, a multiple of 16, with zeros)
//   out[n, oy, ox, :] = b + sum_{ci, ky : 0 <= iy < H} tab[ci, ky, p(n, ci, iy, ox), :],   iy = oy + ky - ph
// -- Ci * Kh vector additions per output pixel in registers, whatever the density, where the dense product
// takes Ci * Kh * Kw multiply-adds; each output value's sum runs in a fixed order (thread-count independent).
// Measured against oneDNN (chunked, channels-last, 1 thread): 1 -> 20 channels 5x5 on 28x28 2.6x faster (the
// output is written once, straight into place), 20 -> 50 5x5 1.6x, 64 -> 64 3x3 1.0-1.5x. The weight gradient is
// left to oneDNN (binning the output gradient by pattern, dW = sum over patterns containing kx of the bins, measured
// 25-29 ms against oneDNN's 31 ms for LeNet's first layer: not worth a second kernel).

struct ConvGeometry {
  int64_t Ci, H, W, Kh, Kw, ph, pw, Ho, Wo, Co, Cp;
  int64_t sN, sC, sH, sW;  // input strides (elements)
  int64_t patterns() const { return int64_t(1) << Kw; }
};

// pat[(ci * H + iy) * Wo + ox] = Cp x the window pattern of input row (ci, iy) at output column ox, for image n
// (the pattern's offset into its table row).
template <typename In>
void window_patterns(const In* s, int64_t n, const ConvGeometry& g, int32_t* pat, uint8_t* bits) {
  const int64_t Wp = g.W + 2 * g.pw;
  std::memset(bits, 0, static_cast<size_t>(Wp));
  for (int64_t ci = 0; ci < g.Ci; ++ci)
    for (int64_t iy = 0; iy < g.H; ++iy) {
      const In* row = s + n * g.sN + ci * g.sC + iy * g.sH;
      for (int64_t ix = 0; ix < g.W; ++ix) bits[g.pw + ix] = static_cast<uint8_t>(row[ix * g.sW] != In(0));
      int32_t* out = pat + (ci * g.H + iy) * g.Wo;
      uint32_t p = 0;  // taps 0 .. Kw-2 of the window at ox (bit Kw-1 is always clear here)
      for (int64_t kx = 0; kx < g.Kw - 1; ++kx) p |= uint32_t(bits[kx]) << kx;
      for (int64_t ox = 0; ox < g.Wo; ++ox) {
        p |= uint32_t(bits[ox + g.Kw - 1]) << (g.Kw - 1);
        out[ox] = static_cast<int32_t>(p * g.Cp);
        p >>= 1;
      }
    }
}

// Channels [c0, min(c0 + 16 NV, Co)) of one pixel's Co values at dst from the NV vectors v.
template <int NV>
inline void store_pixel(float* dst, int64_t c0, int64_t Co, const Vec* v) {
  const int64_t n = std::min<int64_t>(NV * kVL, Co - c0);
  for (int i = 0; i < NV; ++i) {
    if ((i + 1) * kVL <= n) {
      store(dst + c0 + i * kVL, v[i]);
    } else {
      float tail[kVL];
      store(tail, v[i]);
      for (int64_t c = i * kVL; c < n; ++c) dst[c0 + c] = tail[c - i * kVL];
    }
  }
}

constexpr int64_t kMaxConvRows = 1024;  // Ci * Kh: the (ci, ky) table rows summed per output pixel

// The table rows and pattern rows that output row oy sums: rows r = (ci, ky) with 0 <= oy + ky - ph < H.
inline int64_t rows_of(const ConvGeometry& g, int64_t oy, const int32_t* pat, const float* tab, int64_t c0,
                       const float** tb, const int32_t** pr) {
  const int64_t ky0 = std::max<int64_t>(0, g.ph - oy), ky1 = std::min<int64_t>(g.Kh, g.H + g.ph - oy);
  int64_t R = 0;
  for (int64_t ci = 0; ci < g.Ci; ++ci)
    for (int64_t ky = ky0; ky < ky1; ++ky, ++R) {
      tb[R] = tab + (ci * g.Kh + ky) * g.patterns() * g.Cp + c0;
      pr[R] = pat + (ci * g.H + oy + ky - g.ph) * g.Wo;
    }
  return R;
}

// Output pixels ox .. ox + PX - 1 of row oy (values pre-scaled pattern offsets p * Cp in pat).
template <int NV, int PX>
inline void conv_block(int64_t R, const float* const* tb, const int32_t* const* pr, int64_t ox, const float* bias,
                       int64_t c0, int64_t Co, float* o) {
  Vec acc[PX][NV];
  for (int j = 0; j < PX; ++j)
    for (int v = 0; v < NV; ++v) acc[j][v] = load(bias + c0 + v * kVL);
  for (int64_t r = 0; r < R; ++r) {
    const float* t = tb[r];
    const int32_t* q = pr[r] + ox;
    for (int j = 0; j < PX; ++j)
      for (int v = 0; v < NV; ++v) acc[j][v] += load(t + q[j] + v * kVL);
  }
  for (int j = 0; j < PX; ++j) store_pixel<NV>(o + (ox + j) * Co, c0, Co, acc[j]);
}

template <int NV>
void conv_pixels(const ConvGeometry& g, const int32_t* pat, const float* tab, const float* bias, int64_t c0, float* o) {
  constexpr int PX = NV <= 2 ? 4 : 2;
  const float* tb[kMaxConvRows];
  const int32_t* pr[kMaxConvRows];
  for (int64_t oy = 0; oy < g.Ho; ++oy) {
    const int64_t R = rows_of(g, oy, pat, tab, c0, tb, pr);
    float* orow = o + oy * g.Wo * g.Co;
    int64_t ox = 0;
    for (; ox + PX <= g.Wo; ox += PX) conv_block<NV, PX>(R, tb, pr, ox, bias, c0, g.Co, orow);
    for (; ox < g.Wo; ++ox) conv_block<NV, 1>(R, tb, pr, ox, bias, c0, g.Co, orow);
  }
}

// f<NV>(c0) for the channel chunks [c0, c0 + 16 NV) that cover Cp, NV <= 4
template <typename F>
void for_channel_chunks(int64_t Cp, const F& f) {
  for (int64_t c0 = 0; c0 < Cp; c0 += 4 * kVL) {
    switch (std::min<int64_t>(4, (Cp - c0) / kVL)) {
      case 1: f(std::integral_constant<int, 1>(), c0); break;
      case 2: f(std::integral_constant<int, 2>(), c0); break;
      case 3: f(std::integral_constant<int, 3>(), c0); break;
      default: f(std::integral_constant<int, 4>(), c0); break;
    }
  }
}

template <typename In>
void conv_forward(const In* s, int64_t N, const ConvGeometry& g, const float* tab, const float* bias, float* out) {
  parallel_rows(N, 4, [&](int64_t n0, int64_t n1) {
    int32_t* pat = thread_scratch<int32_t>(kSlotPatterns, g.Ci * g.H * g.Wo);
    uint8_t* bits = thread_scratch<uint8_t>(kSlotRowBits, g.W + 2 * g.pw);
    for (int64_t n = n0; n < n1; ++n) {
      window_patterns(s, n, g, pat, bits);
      float* o = out + n * g.Ho * g.Wo * g.Co;
      for_channel_chunks(g.Cp, [&](auto nv, int64_t c0) { conv_pixels<decltype(nv)::value>(g, pat, tab, bias, c0, o); });
    }
  });
}

// ---- entry points --------------------------------------------------------------------------------------

void check_spikes(const at::Tensor& s) {
  TORCH_CHECK(s.dim() == 2 && s.is_contiguous() && s.device().is_cpu(), "spikes must be a contiguous CPU [R, K] tensor");
  TORCH_CHECK(s.scalar_type() == at::kByte || s.scalar_type() == at::kFloat, "spikes must be uint8 or float32");
}

// m [rows, M] (float32) as a contiguous tensor whose rows hold at least `min_width` floats (zero padded, a
// copy) -- the kernels read whole vectors and column blocks; m itself when it needs nothing.
at::Tensor readable_rows(const at::Tensor& m, int64_t min_width) {
  const int64_t M = m.size(1);
  if (M >= min_width) return m.contiguous();
  at::Tensor out = at::zeros({m.size(0), min_width}, m.options());
  out.narrow(1, 0, M).copy_(m);
  return out;
}

// dst [cols, rows] (row stride dst_stride) = src [rows, cols]^T (row stride src_stride), in 32 x 32 tiles,
// parallel over column tiles: ATen's strided copy of a transposed weight took 0.2-0.6 ms per layer.
void transpose_into(const float* src, int64_t rows, int64_t cols, int64_t src_stride, float* dst, int64_t dst_stride) {
  constexpr int64_t kTile = 32;
  const int64_t col_tiles = (cols + kTile - 1) / kTile;
  parallel_rows(col_tiles, 4, [&](int64_t t0, int64_t t1) {
    for (int64_t ct = t0; ct < t1; ++ct) {
      const int64_t c0 = ct * kTile, c1 = std::min(cols, c0 + kTile);
      for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
        const int64_t r1 = std::min(rows, r0 + kTile);
        for (int64_t c = c0; c < c1; ++c)
          for (int64_t r = r0; r < r1; ++r) dst[c * dst_stride + r] = src[r * src_stride + c];
      }
    }
  });
}

// A float32 [rows, cols] tensor on this thread's scratch memory `slot` (kSlotWeightT or kSlotGradT), valid until the
// next use of the slot on this thread; above kScratchMax values a fresh allocation.
// Allocating these anew on every call (an online rule calls once per time step) let glibc's heap grow with the
// number of calls, so peak memory grew with T.
constexpr int64_t kScratchMax = int64_t(1) << 22;  // 16 MB per slot and thread at most

at::Tensor scratch_tensor(int slot, int64_t rows, int64_t cols, bool zero) {
  const int64_t n = rows * cols;
  if (n > kScratchMax) return zero ? at::zeros({rows, cols}, at::kFloat) : at::empty({rows, cols}, at::kFloat);
  at::Tensor t = at::from_blob(thread_scratch<float>(slot, n), {rows, cols}, at::kFloat);
  if (zero) t.zero_();
  return t;
}

// W^T [K, max(M, min_width)] of a float32 weight W [M, K] (columns beyond M zero), on scratch slot 0
at::Tensor transposed_weight(const at::Tensor& weight, int64_t min_width) {
  const at::Tensor w = weight.contiguous();
  const int64_t M = w.size(0), K = w.size(1), width = std::max(M, min_width);
  at::Tensor wt = scratch_tensor(kSlotWeightT, K, width, width > M);
  transpose_into(w.data_ptr<float>(), M, K, K, wt.data_ptr<float>(), width);
  return wt;
}

template <typename F>
auto with_spikes(const at::Tensor& s, const F& f) {
  return s.scalar_type() == at::kByte ? f(s.data_ptr<uint8_t>()) : f(s.data_ptr<float>());
}

}  // namespace

// Ones in the 0/1 tensor s (uint8 or float32, contiguous), or -1 if it holds any other value.
int64_t spike_count(const at::Tensor& s) {
  TORCH_CHECK(s.is_contiguous() && s.device().is_cpu(), "spikes must be a contiguous CPU tensor");
  TORCH_CHECK(s.scalar_type() == at::kByte || s.scalar_type() == at::kFloat, "spikes must be uint8 or float32");
  return with_spikes(s, [&](auto p) { return count_binary(p, s.numel()); });
}

// y = s W^T (+ b) for 0/1 spikes s [R, K] (`ones`, from spike_count, is checked only), W [M, K] float32.
at::Tensor spike_linear(const at::Tensor& s, int64_t ones, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                        at::Tensor out) {
  check_spikes(s);
  TORCH_CHECK(ones >= 0, "spike_linear needs a 0/1 operand (spike_count >= 0)");
  TORCH_CHECK(weight.dim() == 2 && weight.scalar_type() == at::kFloat && weight.size(1) == s.size(1),
              "weight must be float32 [M, K]");
  TORCH_CHECK(out.dim() == 2 && out.is_contiguous() && out.size(0) == s.size(0) && out.size(1) == weight.size(0) &&
                  out.scalar_type() == at::kFloat, "out must be contiguous float32 [R, M]");
  const int64_t R = s.size(0), K = s.size(1), M = weight.size(0);
  const at::Tensor wt = transposed_weight(weight, kColBlock);
  at::Tensor b;
  if (bias.has_value() && bias->defined()) b = readable_rows(bias->reshape({1, M}).to(at::kFloat), kColBlock);
  const float* bp = b.defined() ? b.data_ptr<float>() : nullptr;
  with_spikes(s, [&](auto p) {
    forward_rows(p, R, K, wt.data_ptr<float>(), wt.size(1), bp, out.data_ptr<float>(), M);
    return 0;
  });
  return out;
}

// dW = g^T s [M, K] for gradients g [R, M] float32 and 0/1 spikes s [R, K] with `ones` ones.
at::Tensor spike_weight_grad(const at::Tensor& g, const at::Tensor& s, int64_t ones) {
  check_spikes(s);
  TORCH_CHECK(g.dim() == 2 && g.scalar_type() == at::kFloat && g.size(0) == s.size(0), "grad must be float32 [R, M]");
  const int64_t R = s.size(0), K = s.size(1), M = g.size(1);
  const bool gather = static_cast<double>(ones) < kGatherDensity * static_cast<double>(R) * static_cast<double>(K);
  const at::Tensor gp = readable_rows(g, gather ? kVL : kColBlock);
  at::Tensor dwt = scratch_tensor(kSlotGradT, K, M, false);
  with_spikes(s, [&](auto p) {
    if (gather)
      weight_grad_gather(p, R, K, gp.data_ptr<float>(), gp.size(1), dwt.data_ptr<float>(), M);
    else
      weight_grad_four_russians(p, R, K, gp.data_ptr<float>(), gp.size(1), dwt.data_ptr<float>(), M);
    return 0;
  });
  at::Tensor dw = at::empty({M, K}, g.options());
  transpose_into(dwt.data_ptr<float>(), K, M, M, dw.data_ptr<float>(), K);
  return dw;
}

// The geometry of a stride-1 convolution of s [N, Ci, H, W] (uint8 / float32 0/1, any strides) with a kernel of
// Kh x Kw (Kw <= kMaxConvKw) and zero padding (ph, pw) into Co channels.
constexpr int64_t kMaxConvKw = 10;

ConvGeometry conv_geometry(const at::Tensor& s, int64_t Kh, int64_t Kw, int64_t ph, int64_t pw, int64_t Co) {
  TORCH_CHECK(s.dim() == 4 && s.device().is_cpu(), "spike conv input must be a CPU [N, Ci, H, W] tensor");
  TORCH_CHECK(s.scalar_type() == at::kByte || s.scalar_type() == at::kFloat, "spikes must be uint8 or float32");
  TORCH_CHECK(Kh > 0 && Kw > 0 && Kw <= kMaxConvKw && s.size(1) * Kh <= kMaxConvRows && ph >= 0 && pw >= 0 && Co > 0,
              "invalid convolution geometry (needs Kw <= 10 and Ci * Kh <= 1024)");
  ConvGeometry g{s.size(1), s.size(2), s.size(3), Kh, Kw, ph, pw, s.size(2) + 2 * ph - Kh + 1, s.size(3) + 2 * pw - Kw + 1,
                 Co, (Co + kVL - 1) / kVL * kVL, s.stride(0), s.stride(1), s.stride(2), s.stride(3)};
  TORCH_CHECK(g.Ho > 0 && g.Wo > 0, "the kernel is larger than the padded input");
  return g;
}

// out [N, Ho, Wo, Co] (contiguous, float32) = conv2d(s, W, b) for 0/1 spikes s; W [Co, Ci, Kh, Kw] float32.
at::Tensor spike_conv2d(const at::Tensor& s, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                        int64_t ph, int64_t pw, at::Tensor out) {
  TORCH_CHECK(weight.dim() == 4 && weight.scalar_type() == at::kFloat && weight.size(1) == s.size(1),
              "weight must be float32 [Co, Ci, Kh, Kw] matching the input's channels");
  const ConvGeometry g = conv_geometry(s, weight.size(2), weight.size(3), ph, pw, weight.size(0));
  TORCH_CHECK(out.dim() == 4 && out.is_contiguous() && out.scalar_type() == at::kFloat && out.size(0) == s.size(0) &&
                  out.size(1) == g.Ho && out.size(2) == g.Wo && out.size(3) == g.Co,
              "out must be contiguous float32 [N, Ho, Wo, Co]");
  // tab[ci, ky, p, c] = sum over the set bits kx of p, ascending, of W[c, ci, ky, kx]: entry p = entry (p without its
  // highest bit) + the highest bit's tap, which adds the taps in ascending order
  const int64_t P = g.patterns();
  at::Tensor tab = at::zeros({g.Ci, g.Kh, P, g.Cp}, at::kFloat);
  const at::Tensor wt = weight.permute({1, 2, 3, 0}).contiguous();  // [Ci, Kh, Kw, Co]
  const float* wp = wt.data_ptr<float>();
  float* tp = tab.data_ptr<float>();
  for (int64_t r = 0; r < g.Ci * g.Kh; ++r)
    for (int64_t p = 1; p < P; ++p) {
      int64_t top = 0;
      while ((p >> (top + 1)) != 0) ++top;
      const float* prev = tp + (r * P + (p & ~(int64_t(1) << top))) * g.Cp;
      const float* w = wp + (r * g.Kw + top) * g.Co;
      float* dst = tp + (r * P + p) * g.Cp;
      for (int64_t c = 0; c < g.Co; ++c) dst[c] = prev[c] + w[c];
    }
  at::Tensor b = at::zeros({g.Cp}, at::kFloat);
  if (bias.has_value() && bias->defined()) b.narrow(0, 0, g.Co).copy_(*bias);
  with_spikes(s, [&](auto p) {
    conv_forward(p, s.size(0), g, tp, b.data_ptr<float>(), out.data_ptr<float>());
    return 0;
  });
  return out;
}
