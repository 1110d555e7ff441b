"""Cost of the sample-quality metrics: ``python benchmarks/bench_metrics.py [--threads 2]``.

Prints (1) FID-lite for 2,000 generated vs 2,000 real digit samples, features of both sides
included (target: < 0.5 s on 2 cores), and (2) every metric's time at 1k, 2k and 4k samples
with the growth factor per doubling (~2 = linear, ~4 = quadratic). For the two-sample digit
metrics both sides have N samples; memorisation compares N samples with the 1,497 training
digits; the 2-D metrics use N samples of ring8 / two moons. Best of `--repeats` runs.
"""
import argparse
import os
import sys

if __name__ == "__main__":  # thread count must be set before numpy loads its BLAS
    _t = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "2"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = _t

import time  # noqa: E402

import numpy as np  # noqa: E402

from kitdata import digits, metrics, toy2d  # noqa: E402


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def digit_samples(n, seed):
    """n distinct digit-like images: resampled digits with light noise."""
    x, _ = digits.load_digits("train")
    rng = np.random.default_rng(seed)
    return np.clip(x[rng.integers(0, len(x), n)] + 0.05 * rng.standard_normal((n, 64)), 0, 1).astype(np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", default="2", help="BLAS threads (default 2)")
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    metrics.fid_lite(digit_samples(10, 0))          # load weights and held-out statistics once
    metrics.memorisation_fraction(digit_samples(10, 0))

    fake, real = digit_samples(2000, 1), digit_samples(2000, 2)
    t = best_of(lambda: metrics.fid_lite(fake, real), a.repeats)
    print(f"FID-lite, 2,000 vs 2,000 digits, features included: {t * 1e3:.1f} ms "
          f"(target < 500 ms; {a.threads} BLAS threads) -> {'OK' if t < 0.5 else 'TOO SLOW'}")

    ring, moons = toy2d.ring8(), toy2d.TwoMoons()
    cases = {
        "fid_lite (N vs N)": lambda s, r, p2: metrics.fid_lite(s, r),
        "kid (N vs N)": lambda s, r, p2: metrics.kid(s, r),
        "precision_recall (N vs N)": lambda s, r, p2: metrics.precision_recall(s, r),
        "density_coverage (N vs N)": lambda s, r, p2: metrics.density_coverage(s, r),
        "memorisation_fraction (N vs 1,497)": lambda s, r, p2: metrics.memorisation_fraction(s),
        "mode_coverage (ring8)": lambda s, r, p2: metrics.mode_coverage(p2, ring),
        "mean_log_density (ring8)": lambda s, r, p2: metrics.mean_log_density(p2, ring),
        "mean_log_density (two moons)": lambda s, r, p2: metrics.mean_log_density(p2, moons),
    }
    sizes = (1000, 2000, 4000)
    data = {n: (digit_samples(n, 3), digit_samples(n, 4), ring.sample(n, generator=5)) for n in sizes}
    print(f"\n{'metric':38s}" + "".join(f"{n:>10,d}" for n in sizes) + "   growth per doubling")
    for name, fn in cases.items():
        ts = [best_of(lambda: fn(*data[n]), max(1, a.repeats // 2)) for n in sizes]
        growth = " ".join(f"x{b / a_:.1f}" for a_, b in zip(ts, ts[1:]))
        print(f"{name:38s}" + "".join(f"{t * 1e3:8.1f}ms" for t in ts) + f"   {growth}")
    print("\nExpected: features, FID (D = 32 fixed), memorisation and the 2-D metrics are linear in N;"
          "\nKID and the k-NN metrics build N x N matrices, so they are quadratic (x4 per doubling)"
          "\nonce the N^2 term dominates.")


if __name__ == "__main__":
    main()
