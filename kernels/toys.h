// Pseudo-experiments for the window scan's global significance: the look-elsewhere effect.
//
// The expectation in bin k of the score at luminosity L (fb^-1): the background
//   mu_k = L sum_c sigma_c w_ck / W_c      (the SM classes of the scan, as b of kernels/scan.h)
// and an injected signal of cross-section sigma_S, s_k = sigma_S L w_An,k / W_An (the anomaly's share).
// Toy i of stream j (0: background only; one stream per injected signal) draws n_k ~ Poisson(mu_k + s_k)
// from Philox counters (kernels/poisson.h: seed; bin k, toy i, stream j): the CPU and CUDA twins draw the
// same toys.
//
// Local test statistic of a window [lo, hi), observed N = sum n_k against expected B = sum mu_k:
//   t = -ln P(X >= N), X ~ Poisson(B), when N > B;  t = 0 otherwise
// the p-value of an excess in a counting experiment: exact where counts are small (a Gaussian Z is not)
// and the statistic of BumpHunter, so that the two compare one to one. A toy's statistic is the largest t
// over the eligible windows of the scan that found R_max (kernels/scan.h: min_width, min simulated
// background events, B > 0): the trials factor of exactly that scan.
//
// Exact and fast. With q(n) = n ln(n / B) + B - n and w(n) = sign(n - B) sqrt(2 q(n)), the Poisson tail
// lies between two normal tails (Short 2013, Theorem 1):
//   Phibar(w(N)) <= P(X >= N) <= Phibar(w(N - 1))
// so t is bracketed by increasing functions of w(N - 1) and w(N). One pass computes q(N) of every window
// (a logarithm each) and each row's largest; only the windows whose w(N) reaches the top window's
// w(N - 1) can hold the largest t -- a handful -- and only they get the exact tail (Boost.Math's
// incomplete gamma function).
#pragma once
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/hd.h"
#include "kernels/poisson.h"
#include "kernels/scan.h"

namespace aware {

// q(N) = N ln(N / B) + B - N of an excess N > B, written so that the cancellation of its two large terms
// costs about 2 eps / x relative (x = (N - B) / B), not eps N / q. Both twins.
AWARE_HD double excess_q(double n, double b) {
  const double d = n - b;
  return n * log1p(d / b) - d;
}

// The pruning threshold on q(N) of a toy whose top window (largest q(N)) has n events over b: the top
// window's q(N - 1), less a slack for q's rounding (about 1e-12 relative: a window in too many costs one
// exact evaluation, a window missed a wrong maximum); -infinity when N - 1 is no excess (every window
// with an excess is then a candidate).
AWARE_HD double candidate_threshold(long long n, double b) {
  if (!(double(n - 1) > b)) return -HUGE_VAL;
  const double q = excess_q(double(n - 1), b);
  return q - 1e-9 * fmax(1.0, fabs(q));
}

// What toys are drawn from and scanned against; made once on the host.
struct ToyModel {
  int bins = 0;
  double luminosity = 0;                 // fb^-1
  std::vector<double> background;        // mu_k, events
  std::vector<double> background_prefix; // bins + 1 entries: B of [lo, hi) is prefix[hi] - prefix[lo]
  std::vector<double> signal_share;      // w_An,k / W_An (sums to 1)
  std::vector<int> first_hi;             // per lo: the smallest hi of an eligible window (bins + 1: none)
  std::vector<int> last_hi;              // per lo: the largest (bins; hi of a fixed window)
  // Per background class c and bin k: its share of mu_k and the simulated events behind it, for toys
  // that also resample the simulated background (ToyDraws::resample_background).
  std::vector<std::vector<double>> class_background;
  std::vector<std::vector<int64_t>> class_events;
  int64_t windows = 0;                   // eligible windows in all
};
ToyModel toy_model(const ScanGrid& grid, const ScanSettings& settings, double luminosity);
// A model whose only window is [lo, hi) (a window fixed in advance: no trials factor).
ToyModel fixed_window_model(const ToyModel& scanned, int lo, int hi);

// t of one window (N observed, B expected).
double local_statistic(int64_t observed, double expected);

// The largest t of one toy and the window that gives it (ties: smallest (lo, hi)). t = 0 and lo = hi = -1
// when no eligible window holds an excess.
struct ToyMax {
  double t = 0;
  int lo = -1, hi = -1;
  int64_t observed = 0;
  double expected = 0;
};

struct ToyDraws {
  uint64_t seed = 1;
  uint32_t stream = 0;       // 0: background only; j > 0: the j-th injected signal
  double signal_fb = 0;      // sigma_S; 0: none
  int64_t first = 0;         // toys [first, first + count)
  int64_t count = 0;
  // The finite simulated background: each toy first redraws every class's simulated events per bin,
  // n'_ck ~ Poisson(n_ck), and draws its counts around mu'_k = sum_c mu_ck n'_ck / n_ck, while the scan
  // still compares with the nominal mu_k: how much the simulation's own fluctuations widen the largest
  // t. CPU only (its per-toy means need transcendentals on the device).
  bool resample_background = false;
};

// The Poisson constants of every bin's mean: mu_k + s_k, with mu_k redrawn from the simulation for toy
// `toy` when the draws resample it. Computed on the host for both twins (the GPU uploads them).
std::vector<PoissonConstants> toy_constants(const ToyModel& model, const ToyDraws& draws, int64_t toy = 0);
// The counts n_k of toy `toy` (bins entries).
void draw_toy(const ToyModel& model, const ToyDraws& draws, int64_t toy, std::span<int64_t> counts);
// The largest t of the scan of given counts.
ToyMax scan_counts(const ToyModel& model, std::span<const int64_t> counts);
// draw_toy then scan_counts for each toy, in parallel over toys (OpenMP).
std::vector<ToyMax> run_toys(const ToyModel& model, const ToyDraws& draws);

// The global p-value of a local statistic t against background-only toys' maxima: the fraction of toys
// whose largest t is at least t, its binomial error, and the one-sided Gaussian significance
// Z = Phibar^-1(p). No toy at or above t: p = 0 and `p_upper` is its 95% upper limit, 3.0 / toys.
struct GlobalP {
  int64_t toys = 0, at_or_above = 0;
  double p = 0, p_error = 0, p_upper = 0;
  double z = 0;  // +infinity when p = 0 (see z_lower)
  double z_lower = 0;  // Z of p_upper: the significance is at least this
};
GlobalP global_p(std::span<const double> sorted_background_t, double t);
// Z = Phibar^-1(p), one-sided; p in (0, 1].
double z_of_p(double p);
// Z of p = e^-t, for any t >= 0 (past p's underflow, from the normal tail's asymptotic series).
double z_of_t(double t);

}  // namespace aware

#if defined(AWARE_CUDA)  // the CUDA twin, kernels/cuda/toys.cu
namespace aware::cuda {
// The same toys, drawn and scanned on the GPU (the exact t of each toy's few candidates on the host,
// with the CPU's function): the same maxima, windows included, as aware::run_toys.
std::vector<ToyMax> run_toys(const ToyModel& model, const ToyDraws& draws);
}  // namespace aware::cuda
#endif
