// Fused LIF / IF recurrence over a whole [T, N] sequence on the CPU: forward and BPTT backward, one pass each.
//
// Built on first use by dnmsnn/functional/cpp.py (torch.utils.cpp_extension) and called from
// dnmsnn/functional/fused.py, which documents the maths. Compiled with -ffp-contract=off: every
// multiply and add is rounded on its own, exactly like the PyTorch element-wise kernels of the
// reference path, so the forward potentials H and the spikes are bitwise those of the reference.
//
// Layout: x, H, spikes and gradients are [T, N] contiguous (N = batch x features of one step), the outputs
// allocated by the caller;
// the threshold is either one value or N values (already broadcast to one step's shape).
// Parallel over N (at::parallel_for: torch's OpenMP pool when cpp.py builds with -fopenmp, else serial),
// sequential over T within a chunk, inner loops over a contiguous run of neurons (vectorisable, branch-free
// selects); a neuron's arithmetic does not depend on the split, so neither do the results.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <type_traits>
#include <vector>

namespace {

enum Form : int64_t { kBeta = 0, kBetaReset = 1, kTau = 2, kIF = 3 };
enum Surr : int64_t { kExp = 0, kSigmoid = 1, kATan = 2, kTriangle = 3, kRect = 4, kFastSigmoid = 5 };

constexpr int64_t kBlock = 256;  // neurons per inner loop: the carried state stays in L1

template <typename S>
struct Params {
  int64_t form;
  S beta, tau, v_reset;
  bool zero_reset, strict;
};

// H = charge(V, x) for a run of n neurons: the reference's expressions, operation by operation
// (neuron.py: charge); one loop per form, so each one vectorises.
template <typename S>
inline void charge_run(const Params<S>& p, const S* __restrict__ v, const S* __restrict__ x, S* __restrict__ h,
                       int64_t n) {
  const S beta = p.beta, tau = p.tau, vr = p.v_reset;
  switch (p.form) {
    case kBeta:
      for (int64_t i = 0; i < n; ++i) h[i] = beta * v[i] + x[i];
      break;
    case kBetaReset:
      for (int64_t i = 0; i < n; ++i) h[i] = (vr + beta * (v[i] - vr)) + x[i];
      break;
    case kTau:
      for (int64_t i = 0; i < n; ++i) h[i] = v[i] + (x[i] - (v[i] - vr)) / tau;
      break;
    default:
      for (int64_t i = 0; i < n; ++i) h[i] = v[i] + x[i];
  }
}

// spike and reset of a run: s = H >= thr (> when Strict), V = s ? (v_reset | H - thr) : H
template <typename S, typename O, bool Strict, bool Zero, bool ThrScalar>
inline void fire_run(const S* __restrict__ h, const S* __restrict__ thr, S vr, O* __restrict__ s,
                     S* __restrict__ v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const S th = ThrScalar ? thr[0] : thr[i];
    const bool f = Strict ? (h[i] > th) : (h[i] >= th);
    s[i] = f ? O(1) : O(0);
    v[i] = f ? (Zero ? vr : h[i] - th) : h[i];
  }
}

// sg = f'(H - thr) of a run, one loop per surrogate
template <typename S, bool ThrScalar>
inline void surrogate_run(int64_t kind, S k, const S* __restrict__ h, const S* __restrict__ thr,
                          S* __restrict__ sg, int64_t n) {
#define DNMSNN_X (h[i] - (ThrScalar ? thr[0] : thr[i]))
  switch (kind) {
    case kExp:
      for (int64_t i = 0; i < n; ++i) sg[i] = std::exp(-std::abs(DNMSNN_X) / k);
      break;
    case kSigmoid:
      for (int64_t i = 0; i < n; ++i) {
        const S e = S(1) / (S(1) + std::exp(-(k * DNMSNN_X)));
        sg[i] = k * e * (S(1) - e);
      }
      break;
    case kATan:
      for (int64_t i = 0; i < n; ++i) {
        const S z = S(M_PI / 2.0) * k * DNMSNN_X;
        sg[i] = (k / S(2)) / (S(1) + z * z);
      }
      break;
    case kTriangle:
      for (int64_t i = 0; i < n; ++i) sg[i] = std::max(S(1) - std::abs(DNMSNN_X) / k, S(0)) / k;
      break;
    case kRect:
      for (int64_t i = 0; i < n; ++i) sg[i] = (std::abs(DNMSNN_X) < k / S(2) ? S(1) : S(0)) / k;
      break;
    default:
      for (int64_t i = 0; i < n; ++i) {
        const S d = S(1) + k * std::abs(DNMSNN_X);
        sg[i] = S(1) / (d * d);
      }
  }
#undef DNMSNN_X
}

// one backward step of a run: gH = gS sg + gV dV/dH; gx = gH dH/dx; gV <- gH dH/dV (0 without temporal
// gradient); the threshold gradient accumulates -gS sg + gV dV/dthr. out may be g itself (in place).
template <typename S, bool Strict, bool Zero, bool Detach, bool ThrScalar, bool WantThr, bool Temporal>
inline void grad_run(const S* g, const S* __restrict__ h, const S* __restrict__ thr,
                     const S* __restrict__ sg, S vr, S dh_dv, S dh_dx, S* __restrict__ gv, S* __restrict__ gt,
                     S* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const S th = ThrScalar ? thr[0] : thr[i];
    const S s = (Strict ? (h[i] > th) : (h[i] >= th)) ? S(1) : S(0);
    S gh = g[i] * sg[i];
    S dvdh, dvdthr;
    if (Zero) {
      dvdh = S(1) - s;
      dvdthr = S(0);
      if (!Detach) {
        dvdh = dvdh + (vr - h[i]) * sg[i];
        dvdthr = -((vr - h[i]) * sg[i]);
      }
    } else {
      dvdh = Detach ? S(1) : S(1) - th * sg[i];
      dvdthr = Detach ? -s : th * sg[i] - s;
    }
    if (WantThr) gt[i] = gt[i] - gh + gv[i] * dvdthr;
    gh = gh + gv[i] * dvdh;
    out[i] = gh * dh_dx;
    gv[i] = Temporal ? gh * dh_dv : S(0);
  }
}

template <typename S, typename O, bool Strict, bool Zero, bool ThrScalar>
void forward_impl(const S* __restrict__ x, const S* __restrict__ thr, O* __restrict__ spikes, S* __restrict__ h_out,
                  int64_t T, int64_t N, const Params<S>& p) {
  at::parallel_for(0, N, kBlock, [&](int64_t begin, int64_t end) {
    S v[kBlock];
    S hbuf[kBlock];
    for (int64_t b0 = begin; b0 < end; b0 += kBlock) {
      const int64_t n = std::min(kBlock, end - b0);
      const S* th = ThrScalar ? thr : thr + b0;
      for (int64_t i = 0; i < n; ++i) v[i] = p.v_reset;
      for (int64_t t = 0; t < T; ++t) {
        S* h = h_out ? h_out + t * N + b0 : hbuf;
        charge_run<S>(p, v, x + t * N + b0, h, n);
        fire_run<S, O, Strict, Zero, ThrScalar>(h, th, p.v_reset, spikes + t * N + b0, v, n);
      }
    }
  });
}

// 1 when a run of n values holds NaN or Inf (x - x is 0 for every finite x, NaN otherwise); vectorises
template <typename S>
inline int32_t nonfinite_run(const S* __restrict__ x, int64_t n) {
  int32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) bad |= static_cast<int32_t>(x[i] - x[i] != S(0));
  return bad;
}

// The same recurrence with k x k average pooling (stride k) of the spikes, for steps laid out [B, Hgt, Wid, C]
// (channels-last images, Hgt and Wid multiples of k): a work item is one band of k image rows (k*Wid*C
// neurons, contiguous), so its spikes are pooled while still in L1 and never written out:
//   pooled[t, b, i, j, c] = (sum_{a < k, e < k} s[t, b, k i + a, k j + e, c]) / k^2   (row-major window order)
// Returns whether x held NaN or Inf (checked in passing: the caller then needs no pass of its own over x).
template <typename S, bool Strict, bool Zero>
bool forward_pool_impl(const S* __restrict__ x, S thr, S* __restrict__ pooled, S* __restrict__ h_out, int64_t T,
                       int64_t B, int64_t Hgt, int64_t Wid, int64_t C, int64_t k, const Params<S>& p) {
  const int64_t N = B * Hgt * Wid * C, band = k * Wid * C, bands = B * (Hgt / k), Wo = Wid / k;
  const int64_t M = bands * Wo * C;  // pooled values per step
  const S area = static_cast<S>(k * k);
  std::atomic<bool> nonfinite{false};
  at::parallel_for(0, bands, 1, [&](int64_t begin, int64_t end) {
    std::vector<S> v(band), hbuf(band), sbuf(band);
    int32_t bad = 0;
    for (int64_t q = begin; q < end; ++q) {
      const int64_t b0 = q * band;
      for (int64_t i = 0; i < band; ++i) v[i] = p.v_reset;
      for (int64_t t = 0; t < T; ++t) {
        S* h = h_out ? h_out + t * N + b0 : hbuf.data();
        charge_run<S>(p, v.data(), x + t * N + b0, h, band);
        bad |= nonfinite_run(x + t * N + b0, band);
        fire_run<S, S, Strict, Zero, true>(h, &thr, p.v_reset, sbuf.data(), v.data(), band);
        S* out = pooled + t * M + q * Wo * C;
        for (int64_t j = 0; j < Wo; ++j) {
          S* o = out + j * C;
          for (int64_t c = 0; c < C; ++c) o[c] = S(0);
          for (int64_t a = 0; a < k; ++a)
            for (int64_t e = 0; e < k; ++e) {
              const S* src = sbuf.data() + (a * Wid + j * k + e) * C;
              for (int64_t c = 0; c < C; ++c) o[c] = o[c] + src[c];
            }
          for (int64_t c = 0; c < C; ++c) o[c] = o[c] / area;
        }
      }
    }
    if (bad) nonfinite = true;
  });
  return nonfinite;
}

// dL/dspikes given as the gradient of their k x k average pooling (stride k): for the neurons laid out [B, Hgt, Wid,
// C] per step, dL/ds[t, b, y, x, c] = gp[t, ((b * (Hgt/k) + y/k) * (Wid/k) + x/k) * C + c] / k^2 (the pooling's
// derivative, computed per block instead of as a [T, N] tensor)
struct PooledGrad {
  int64_t Hgt, Wid, C, k;
  int64_t index(int64_t j) const {  // pooled index of neuron j of a step
    const int64_t c = j % C, x = (j / C) % Wid, y = (j / (C * Wid)) % Hgt, b = j / (C * Wid * Hgt);
    return ((b * (Hgt / k) + y / k) * (Wid / k) + x / k) * C + c;
  }
  int64_t per_step(int64_t N) const { return N / (k * k); }
};

// gs: dL/dspikes [T, N], or with `pooled` the pooling's gradient [T, N / k^2]
template <typename S, bool Strict, bool Zero, bool Detach, bool ThrScalar, bool WantThr, bool Temporal>
void backward_impl(const S* gs, const S* __restrict__ H, const S* __restrict__ thr, S* gx,
                   S* __restrict__ gthr, int64_t T, int64_t N, const Params<S>& p, int64_t surr, S surr_param,
                   S dh_dv, S dh_dx, const PooledGrad* pooled) {
  at::parallel_for(0, N, kBlock, [&](int64_t begin, int64_t end) {
    S gv[kBlock];
    S gt[kBlock];
    S sg[kBlock];
    S gbuf[kBlock];
    // the block's neurons as runs of one pixel's channels: gbuf[run_at[r] .. + run_len[r]) comes from the
    // contiguous pooled values starting at run_src[r] (T-independent, found once per block)
    int64_t run_at[kBlock], run_src[kBlock], run_len[kBlock], runs = 0;
    const S area = pooled ? static_cast<S>(pooled->k * pooled->k) : S(1);
    const int64_t M = pooled ? pooled->per_step(N) : N;
    for (int64_t b0 = begin; b0 < end; b0 += kBlock) {
      const int64_t n = std::min(kBlock, end - b0);
      const S* th = ThrScalar ? thr : thr + b0;
      for (int64_t i = 0; i < n; ++i) gv[i] = gt[i] = S(0);
      if (pooled) {
        runs = 0;
        for (int64_t i = 0; i < n; ++runs) {
          const int64_t len = std::min(pooled->C - (b0 + i) % pooled->C, n - i);
          run_at[runs] = i, run_src[runs] = pooled->index(b0 + i), run_len[runs] = len;
          i += len;
        }
      }
      for (int64_t t = T - 1; t >= 0; --t) {
        const S* h = H + t * N + b0;
        const S* g = gs + t * N + b0;
        if (pooled) {
          for (int64_t r = 0; r < runs; ++r) {
            const S* from = gs + t * M + run_src[r];
            S* to = gbuf + run_at[r];
            for (int64_t i = 0; i < run_len[r]; ++i) to[i] = from[i] / area;
          }
          g = gbuf;
        }
        surrogate_run<S, ThrScalar>(surr, surr_param, h, th, sg, n);
        grad_run<S, Strict, Zero, Detach, ThrScalar, WantThr, Temporal>(g, h, th, sg, p.v_reset, dh_dv, dh_dx, gv,
                                                                         gt, gx + t * N + b0, n);
      }
      if (WantThr)
        for (int64_t i = 0; i < n; ++i) gthr[b0 + i] = gt[i];
    }
  });
}

// runtime flags -> template instance
template <typename F>
void with_flag(bool flag, F&& f) {
  if (flag)
    f(std::true_type{});
  else
    f(std::false_type{});
}

template <typename S>
Params<S> make_params(int64_t form, double beta, double tau, double v_reset, bool zero_reset, bool strict) {
  Params<S> p;
  p.form = form;
  p.beta = static_cast<S>(beta);
  p.tau = static_cast<S>(tau);
  p.v_reset = static_cast<S>(v_reset);
  p.zero_reset = zero_reset;
  p.strict = strict;
  return p;
}

void check_inputs(const at::Tensor& x, const at::Tensor& thr) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 2 && x.is_contiguous(), "x must be a contiguous CPU [T, N] tensor");
  TORCH_CHECK(thr.device().is_cpu() && thr.is_contiguous() && thr.scalar_type() == x.scalar_type(),
              "threshold must be a contiguous CPU tensor of x's dtype");
  TORCH_CHECK(thr.numel() == 1 || thr.numel() == x.size(1), "threshold must hold 1 or N values");
}

// Whether the optional H output is given; if so it must be a contiguous [T, N] tensor of x's dtype.
bool checked_h(const c10::optional<at::Tensor>& h, const at::Tensor& x) {
  const bool want_h = h.has_value() && h->defined();
  if (want_h)
    TORCH_CHECK(h->sizes() == x.sizes() && h->is_contiguous() && h->scalar_type() == x.scalar_type(),
                "H must be a contiguous [T, N] tensor of x's dtype");
  return want_h;
}

// Writes the spikes (x's dtype or uint8 0/1) into `spikes` and, when given, the potentials H into `h`; both
// [T, N] contiguous, allocated by the caller (dnmsnn reuses their memory between calls).
void lif_forward(const at::Tensor& x, const at::Tensor& thr, int64_t form, double beta, double tau, double v_reset,
                 bool zero_reset, bool strict, const at::Tensor& spikes, const c10::optional<at::Tensor>& h) {
  check_inputs(x, thr);
  const int64_t T = x.size(0), N = x.size(1);
  TORCH_CHECK(spikes.sizes() == x.sizes() && spikes.is_contiguous() &&
                  (spikes.scalar_type() == x.scalar_type() || spikes.scalar_type() == at::kByte),
              "spikes must be a contiguous [T, N] tensor of x's dtype or uint8");
  const bool want_h = checked_h(h, x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "dnmsnn_lif_forward", [&] {
    const auto p = make_params<scalar_t>(form, beta, tau, v_reset, zero_reset, strict);
    with_flag(strict, [&](auto St) {
      with_flag(zero_reset, [&](auto Z) {
        with_flag(thr.numel() == 1, [&](auto Sc) {
          constexpr bool st = decltype(St)::value, z = decltype(Z)::value, sc = decltype(Sc)::value;
          scalar_t* hp = want_h ? h->data_ptr<scalar_t>() : nullptr;
          if (spikes.scalar_type() == at::kByte)
            forward_impl<scalar_t, uint8_t, st, z, sc>(x.data_ptr<scalar_t>(), thr.data_ptr<scalar_t>(),
                                                      spikes.data_ptr<uint8_t>(), hp, T, N, p);
          else
            forward_impl<scalar_t, scalar_t, st, z, sc>(x.data_ptr<scalar_t>(), thr.data_ptr<scalar_t>(),
                                                       spikes.data_ptr<scalar_t>(), hp, T, N, p);
        });
      });
    });
  });
}

// Spikes of x [T, B*Hgt*Wid*C] (steps laid out [B, Hgt, Wid, C]) pooled k x k into `pooled`
// [T, B*(Hgt/k)*(Wid/k)*C]; H into `h` when given. One threshold value. Returns whether x held NaN or Inf (then
// the outputs are meaningless and the caller raises).
bool lif_pool_forward(const at::Tensor& x, const at::Tensor& thr, int64_t form, double beta, double tau,
                      double v_reset, bool zero_reset, bool strict, int64_t B, int64_t Hgt, int64_t Wid, int64_t C,
                      int64_t k, const at::Tensor& pooled, const c10::optional<at::Tensor>& h) {
  check_inputs(x, thr);
  TORCH_CHECK(thr.numel() == 1, "the pooled forward takes one threshold value");
  TORCH_CHECK(k >= 1 && Hgt % k == 0 && Wid % k == 0 && x.size(1) == B * Hgt * Wid * C,
              "x must hold [B, Hgt, Wid, C] steps with Hgt and Wid multiples of k");
  const int64_t T = x.size(0);
  TORCH_CHECK(pooled.dim() == 2 && pooled.size(0) == T && pooled.size(1) == x.size(1) / (k * k) &&
                  pooled.is_contiguous() && pooled.scalar_type() == x.scalar_type(),
              "pooled must be a contiguous [T, N / k^2] tensor of x's dtype");
  const bool want_h = checked_h(h, x);
  bool nonfinite = false;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "dnmsnn_lif_pool_forward", [&] {
    const auto p = make_params<scalar_t>(form, beta, tau, v_reset, zero_reset, strict);
    with_flag(strict, [&](auto St) {
      with_flag(zero_reset, [&](auto Z) {
        nonfinite = forward_pool_impl<scalar_t, decltype(St)::value, decltype(Z)::value>(
            x.data_ptr<scalar_t>(), thr.data_ptr<scalar_t>()[0], pooled.data_ptr<scalar_t>(),
            want_h ? h->data_ptr<scalar_t>() : nullptr, T, B, Hgt, Wid, C, k, p);
      });
    });
  });
  return nonfinite;
}

// Writes dL/dx into `gx` ([T, N], allocated by the caller; it may be grad_s itself) and returns dL/dthreshold
// per neuron [N] summed over T (an empty tensor unless want_thr). With pool = {Hgt, Wid, C, k} (steps laid out
// [B, Hgt, Wid, C]), grad_s is the gradient of the spikes' k x k average pooling, [T, N / k^2] (see PooledGrad).
at::Tensor lif_backward(const at::Tensor& grad_s, const at::Tensor& h, const at::Tensor& thr, int64_t form,
                        double beta, double tau, double v_reset, bool zero_reset, bool strict, bool detach_reset,
                        int64_t surr, double surr_param, bool temporal, double dh_dv, double dh_dx, bool want_thr,
                        const at::Tensor& gx, const std::vector<int64_t>& pool) {
  check_inputs(h, thr);
  TORCH_CHECK(pool.empty() || pool.size() == 4, "pool must be empty or {Hgt, Wid, C, k}");
  PooledGrad pg{};
  if (!pool.empty()) {
    pg = PooledGrad{pool[0], pool[1], pool[2], pool[3]};
    TORCH_CHECK(pg.k >= 1 && pg.Hgt % pg.k == 0 && pg.Wid % pg.k == 0 && h.size(1) % (pg.Hgt * pg.Wid * pg.C) == 0,
                "pool geometry does not fit H");
    TORCH_CHECK(grad_s.dim() == 2 && grad_s.size(0) == h.size(0) && grad_s.size(1) == pg.per_step(h.size(1)) &&
                    grad_s.is_contiguous() && grad_s.scalar_type() == h.scalar_type(),
                "pooled grad must be contiguous [T, N / k^2] of H's dtype");
    TORCH_CHECK(!gx.is_same(grad_s), "grad_x cannot overwrite a pooled grad");
  } else {
    TORCH_CHECK(grad_s.sizes() == h.sizes() && grad_s.is_contiguous() && grad_s.scalar_type() == h.scalar_type(),
                "grad must be contiguous and shaped like H");
  }
  TORCH_CHECK(gx.sizes() == h.sizes() && gx.is_contiguous() && gx.scalar_type() == h.scalar_type(),
              "grad_x must be contiguous and shaped like H");
  const int64_t T = h.size(0), N = h.size(1);
  at::Tensor gthr = want_thr ? at::empty({N}, h.options()) : at::empty({0}, h.options());
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "dnmsnn_lif_backward", [&] {
    const auto p = make_params<scalar_t>(form, beta, tau, v_reset, zero_reset, strict);
    with_flag(strict, [&](auto St) {
      with_flag(zero_reset, [&](auto Z) {
        with_flag(detach_reset, [&](auto D) {
          with_flag(thr.numel() == 1, [&](auto Sc) {
            with_flag(want_thr, [&](auto W) {
              with_flag(temporal, [&](auto Tm) {
                backward_impl<scalar_t, decltype(St)::value, decltype(Z)::value, decltype(D)::value,
                              decltype(Sc)::value, decltype(W)::value, decltype(Tm)::value>(
                    grad_s.data_ptr<scalar_t>(), h.data_ptr<scalar_t>(), thr.data_ptr<scalar_t>(),
                    gx.data_ptr<scalar_t>(), want_thr ? gthr.data_ptr<scalar_t>() : nullptr, T, N, p, surr,
                    static_cast<scalar_t>(surr_param), static_cast<scalar_t>(dh_dv), static_cast<scalar_t>(dh_dx),
                    pool.empty() ? nullptr : &pg);
              });
            });
          });
        });
      });
    });
  });
  return gthr;
}

}  // namespace

// spike_matmul.cpp
int64_t spike_count(const at::Tensor& s);
at::Tensor spike_linear(const at::Tensor& s, int64_t ones, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                        at::Tensor out);
at::Tensor spike_weight_grad(const at::Tensor& g, const at::Tensor& s, int64_t ones);
at::Tensor spike_conv2d(const at::Tensor& s, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                        int64_t ph, int64_t pw, at::Tensor out);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "dnmsnn CPU kernels: fused LIF/IF sequences, spike matmuls and convolutions";
  m.def("lif_forward", &lif_forward, "fused LIF/IF forward over [T, N] into preallocated spikes (and H)");
  m.def("lif_pool_forward", &lif_pool_forward, "fused LIF/IF forward with k x k average pooling of the spikes; "
        "returns whether x held NaN or Inf");
  m.def("lif_backward", &lif_backward, "fused LIF/IF BPTT backward over [T, N] into a preallocated grad_x (from the "
        "gradient of k x k pooled spikes with pool = {Hgt, Wid, C, k})", py::arg("grad_s"), py::arg("h"), py::arg("thr"),
        py::arg("form"), py::arg("beta"), py::arg("tau"), py::arg("v_reset"), py::arg("zero_reset"), py::arg("strict"),
        py::arg("detach_reset"), py::arg("surr"), py::arg("surr_param"), py::arg("temporal"), py::arg("dh_dv"),
        py::arg("dh_dx"), py::arg("want_thr"), py::arg("gx"), py::arg("pool") = std::vector<int64_t>{});
  m.def("spike_count", &spike_count, "ones in a 0/1 tensor, or -1 if it holds another value");
  m.def("spike_linear", &spike_linear, "s W^T + b for 0/1 spikes s [R, K], into out [R, M]");
  m.def("spike_weight_grad", &spike_weight_grad, "g^T s [M, K] for 0/1 spikes s [R, K]");
  m.def("spike_conv2d", &spike_conv2d, "stride-1 conv2d of 0/1 spikes s [N, Ci, H, W] into out [N, Ho, Wo, Co]");
}
