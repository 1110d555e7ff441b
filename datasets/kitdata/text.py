"""A synthetic language whose true entropy rate the kit knows exactly.

Every character carries two independent streams:

* a **letter** from ``LETTERS`` (8 letters). The letter at position ``t`` repeats the letter
  ``lag`` places back (``lag = 7``) with probability ``1 - eps``; otherwise (probability
  ``eps = 0.2``) it is drawn fresh and uniformly from the 8 letters (the fresh draw may
  happen to equal the old letter). The first ``lag`` letters are uniform and independent.
* a **case** (lower / upper) that follows a sticky two-state Markov chain: it keeps the
  case of the previous character with probability ``1 - flip`` (``flip = 0.1``) and
  switches otherwise. The first case is lower or upper with probability 1/2.

The character is the letter written in its case, so the alphabet has 16 characters,
e.g. ``"cAbhgdEcabhgdecaBHGD..."``.

A fresh letter may also be drawn from a non-uniform law ``fresh`` (a probability per
letter); the default is uniform. :func:`draw_language` draws a whole language (fresh law,
``eps``, ``flip``, ``lag``) from a random generator: a grader uses it to train and score
models on a language that is drawn anew for each grading, so knowing the default language
(whose sampler and exact conditionals ship with the kit) is worth nothing there.

Why the entropy rate is what :meth:`SyntheticLanguage.entropy_rate` says
-----------------------------------------------------------------------
The two streams are independent, so the entropy rate of the characters is the sum of the
two entropy rates. The letters form an order-``lag`` Markov chain whose conditional law
given the whole past depends on the letter ``lag`` back only::

    p(l_t = a | past) = (1 - eps) [a = l_{t-lag}] + eps / L,           L = 8

Its stationary law makes any ``lag`` consecutive letters i.i.d. uniform (if they are, the
next letter is uniform and independent of the ``lag - 1`` letters it keeps), and the
process starts in it. Hence the conditional entropy given the past is the same at every
``t >= lag``::

    h_letter = -(1 - eps + eps/L) ln(1 - eps + eps/L) - (L - 1) (eps/L) ln(eps/L)

The case chain is a binary Markov chain that switches with probability ``flip``::

    h_case = -(1 - flip) ln(1 - flip) - flip ln(flip)

    entropy_rate = h_letter + h_case          (= 0.8038 + 0.3251 = 1.1289 nats/char)

With a fresh law ``q`` the same argument holds with ``q`` in place of the uniform law
(``lag`` consecutive letters are i.i.d. ``q``), and::

    h_letter = sum_a q(a) H((1 - eps) [. = a] + eps q)

A **bigram** model (the next character given the previous one) cannot do better than
``H(X_t | X_{t-1}) = ln L + h_case = 2.4045`` nats/char, because for ``lag >= 2`` the
letter is independent of the previous character (the ``lag`` letters before it are i.i.d.);
only the case can be read from the previous character. A model that looks ``lag``
characters back (attention) can reach the entropy rate. Both numbers are exact, and
``tests/test_text_data.py`` checks them against Monte-Carlo estimates (the exact
log-probability of long samples) and, for a small language, against brute force on the
full Markov chain.

Sampling is reproducible bit for bit on every platform: random numbers come from a
counter-based hash (SplitMix64 of ``seed`` and the position), not from a library RNG
whose stream could change between versions. The fixed corpus (``load_corpus``) is
two samples with fixed seeds.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

LETTERS = "abcdefgh"
SPLITS = ("train", "heldout")
CORPUS_SIZES = {"train": 100_000, "heldout": 20_000}   # characters
CORPUS_SEEDS = {"train": 20_240_601, "heldout": 20_240_602}

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrap-around arithmetic is intended)."""
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


def _uniforms(seed: int, stream: int, n: int) -> np.ndarray:
    """n floats in [0, 1) from (seed, stream, position): same bits on every machine."""
    key = _splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64) ^ np.uint64(stream * 0x632BE59BD9B4E019 & 0xFFFFFFFFFFFFFFFF))
    with np.errstate(over="ignore"):
        bits = _splitmix64(key + np.arange(n, dtype=np.uint64) * np.uint64(0xD1B54A32D192ED03))
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _binary_entropy(p: float) -> float:
    return -sum(x * math.log(x) for x in (p, 1.0 - p) if x > 0)


@dataclass(frozen=True)
class SyntheticLanguage:
    """The letter-echo language (see the module docstring).

    Args:
        letters: the letters; the alphabet is ``letters + letters.upper()``.
        lag: how far back the echoed letter is (>= 2, so a bigram cannot see it).
        eps: probability that a letter is drawn fresh instead of echoed.
        flip: probability that the case switches from one character to the next.
    """

    letters: str = LETTERS
    lag: int = 7
    eps: float = 0.2
    flip: float = 0.1
    fresh: tuple | None = None     # law of a fresh letter, one probability per letter; None: uniform

    def __post_init__(self):
        if len(set(self.letters)) != len(self.letters) or not self.letters.islower():
            raise ValueError("letters must be distinct lower-case characters")
        if self.lag < 2:
            raise ValueError("lag must be >= 2")
        if not (0.0 < self.eps <= 1.0 and 0.0 < self.flip < 1.0):
            raise ValueError("need 0 < eps <= 1 and 0 < flip < 1")
        if self.fresh is not None:
            q = np.asarray(self.fresh, dtype=np.float64)
            if q.shape != (len(self.letters),) or not (q > 0).all() or abs(q.sum() - 1.0) > 1e-9:
                raise ValueError("fresh must hold one positive probability per letter, summing to 1")

    # ---- the alphabet -------------------------------------------------------------
    @property
    def alphabet(self) -> str:
        """All characters the language uses: lower-case letters, then upper-case."""
        return self.letters + self.letters.upper()

    @property
    def n_letters(self) -> int:
        return len(self.letters)

    # ---- exact information quantities (nats per character) -----------------------
    def fresh_probs(self) -> np.ndarray:
        """The law of a fresh letter (float64, (L,)): ``fresh``, or uniform."""
        if self.fresh is None:
            return np.full(self.n_letters, 1.0 / self.n_letters)
        return np.asarray(self.fresh, dtype=np.float64)

    def _echo_probs(self) -> tuple[float, float]:
        """(p of repeating the letter lag back, p of each of the other L - 1 letters), for a
        uniform fresh law."""
        other = self.eps / self.n_letters
        return 1.0 - self.eps + other, other

    def letter_entropy_rate(self) -> float:
        if self.fresh is None:
            same, other = self._echo_probs()
            return -same * math.log(same) - (self.n_letters - 1) * other * math.log(other)
        q = self.fresh_probs()
        rows = (1.0 - self.eps) * np.eye(self.n_letters) + self.eps * q[None, :]   # p(. | echoed a)
        return float(q @ -(rows * np.log(rows)).sum(1))

    def fresh_entropy(self) -> float:
        """``H(q)``: entropy of one letter (a fresh draw, or any letter under the stationary law)."""
        q = self.fresh_probs()
        return float(-(q * np.log(q)).sum())

    def case_entropy_rate(self) -> float:
        return _binary_entropy(self.flip)

    def entropy_rate(self) -> float:
        """True entropy rate ``lim H(X_1..X_n) / n`` in nats per character."""
        return self.letter_entropy_rate() + self.case_entropy_rate()

    def bigram_entropy(self) -> float:
        """``H(X_t | X_{t-1})`` under the stationary law: the best any bigram model can do."""
        return self.fresh_entropy() + self.case_entropy_rate()

    def window_entropy(self, block_size: int) -> float:
        """Best achievable mean NLL over the ``block_size`` targets of a training window.

        A window of ``block_size + 1`` characters has targets at indices 1..block_size;
        the first ``lag - 1`` of them cannot see the letter they echo (it lies before the
        window), so their floor is :meth:`bigram_entropy`; the rest can reach the entropy
        rate. This is the floor under a training-loss curve on such windows.
        """
        short = min(self.lag - 1, block_size)
        return (short * self.bigram_entropy() + (block_size - short) * self.entropy_rate()) / block_size

    def unigram_entropy(self) -> float:
        """``H(X_t)``: the best any model that ignores the past can do (the case is 1/2)."""
        return self.fresh_entropy() + math.log(2.0)

    # ---- sampling ----------------------------------------------------------------
    def sample(self, n_tokens: int, seed: int = 0) -> str:
        """A text of ``n_tokens`` characters drawn from the language (stationary from t = 0).

        The same ``(n_tokens, seed)`` gives the same text on every machine, and a longer
        sample with the same seed extends a shorter one.
        """
        n = int(n_tokens)
        if n < 0:
            raise ValueError("n_tokens must be >= 0")
        if n == 0:
            return ""
        L, lag = self.n_letters, self.lag
        fresh_u, letter_u, flip_u, case0_u = (_uniforms(seed, s, n) for s in range(4))
        t = np.arange(n)
        # A letter is fresh at t < lag and, after that, with probability eps; otherwise it
        # copies the letter lag back. Along each residue class t = r (mod lag) the letters
        # therefore equal the most recent fresh draw: a forward fill.
        fresh = (t < lag) | (fresh_u < self.eps)
        if self.fresh is None:
            draw = np.minimum((letter_u * L).astype(np.int64), L - 1)
        else:   # inverse of the fresh law's distribution function
            draw = np.minimum(np.searchsorted(np.cumsum(self.fresh_probs()), letter_u, side="right"), L - 1)
        letters = np.empty(n, dtype=np.int64)
        for r in range(min(lag, n)):
            idx = t[r::lag]
            is_fresh = fresh[idx]
            last_fresh = np.maximum.accumulate(np.where(is_fresh, np.arange(len(idx)), 0))
            letters[idx] = draw[idx][last_fresh]
        # Case: start lower/upper with p = 1/2, switch with probability flip at each step.
        flips = flip_u < self.flip
        flips[0] = False
        upper = (np.cumsum(flips) + (case0_u[0] < 0.5)) % 2 == 1
        codes = letters + L * upper
        alphabet = np.array(list(self.alphabet))
        return "".join(alphabet[codes].tolist())

    # ---- exact log-probabilities -------------------------------------------------------
    def token_nll(self, text: str) -> np.ndarray:
        """Exact ``-ln p(x_t | x_0..x_{t-1})`` for every character of ``text`` (float64, (n,)).

        Conditioned only on the characters of ``text`` before ``t``, as a perfect model
        reading this text (or this window of a longer text) from its first character
        would be: for ``t < lag`` the letter follows the fresh law (the letters it would echo are not
        in the text and are independent of those that are) and the first case is 1/2.
        Its mean over positions ``t >= lag`` is the entropy rate in expectation.
        """
        codes = self.encode(text)
        n = len(codes)
        L = self.n_letters
        letters, upper = codes % L, codes // L
        q = self.fresh_probs()
        nll = np.empty(n, dtype=np.float64)
        nll[: self.lag] = -np.log(q[letters[: self.lag]])
        if n > self.lag:
            echo = letters[self.lag:] == letters[: -self.lag]
            nll[self.lag:] = -np.log((1.0 - self.eps) * echo + self.eps * q[letters[self.lag:]])
        if n:
            nll[0] += math.log(2.0)
            switched = upper[1:] != upper[:-1]
            nll[1:] += np.where(switched, -math.log(self.flip), -math.log(1.0 - self.flip))
        return nll

    def log_prob(self, text: str) -> float:
        """Exact ``ln p(text)`` of a text read from its first character."""
        return -float(self.token_nll(text).sum())

    def encode(self, text: str) -> np.ndarray:
        """Characters -> indices into ``alphabet`` (int64). Raises on a foreign character."""
        lookup = {c: i for i, c in enumerate(self.alphabet)}
        try:
            return np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in the language's alphabet") from None


LANGUAGE = SyntheticLanguage()

# The ranges draw_language draws from. The default language's lag (7) is left out, so that
# its exact conditionals predict the wrong echo on every drawn language; lags of 9 and more
# are left out too (a 2-layer TinyGPT does not always find them within a few hundred steps).
DRAWN_LAGS = (3, 4, 5, 6, 8)
DRAWN_EPS = (0.12, 0.32)
DRAWN_FLIP = (0.05, 0.2)
DRAWN_FRESH_CONCENTRATION = 2.0


def draw_language(rng) -> SyntheticLanguage:
    """A language drawn from ``rng`` (a ``numpy.random.Generator``): the same letters, a
    fresh-letter law from a symmetric Dirichlet(2) (redrawn until no letter is below a
    quarter of the uniform 1/L), ``eps`` and ``flip`` uniform in DRAWN_EPS and DRAWN_FLIP,
    ``lag`` from DRAWN_LAGS. Its exact entropy rate, token NLLs and sampler are the class's."""
    L = len(LETTERS)
    while True:
        q = rng.dirichlet(np.full(L, DRAWN_FRESH_CONCENTRATION))
        if q.min() >= 0.25 / L:
            break
    q = q / q.sum()
    return SyntheticLanguage(letters=LETTERS, lag=int(rng.choice(DRAWN_LAGS)),
                             eps=float(rng.uniform(*DRAWN_EPS)), flip=float(rng.uniform(*DRAWN_FLIP)),
                             fresh=tuple(float(x) for x in q))


@functools.lru_cache(maxsize=2)
def load_corpus(split: str = "train") -> str:
    """The kit's fixed corpus of the default language.

    Args:
        split: "train" (100,000 characters) or "heldout" (20,000 characters).
    Returns:
        str: one sample of :data:`LANGUAGE` with a fixed seed per split.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return LANGUAGE.sample(CORPUS_SIZES[split], seed=CORPUS_SEEDS[split])


def entropy_rate() -> float:
    """Entropy rate of the default language, nats per character."""
    return LANGUAGE.entropy_rate()


def cross_entropy_gap(model_nll, floor=None, language: SyntheticLanguage = LANGUAGE) -> float:
    """How many nats per token a model is above the best any model could do.

    Args:
        model_nll: the model's per-token negative log-likelihoods in nats (array-like or
            tensor, any shape; averaged), or already their mean (a float).
        floor: the true process's NLL on the *same* tokens (``language.token_nll`` of the
            same windows, same positions), array-like or float. Comparing on the same
            tokens removes most of the sampling noise. If None, the entropy rate is used,
            which is right in expectation for tokens with at least ``lag`` characters
            of context.
    Returns:
        mean(model_nll) - mean(floor): >= 0 up to sampling noise for any model that does
        not see the token it predicts.
    """
    from ._util import as_numpy

    m = float(np.mean(as_numpy(model_nll)))
    f = language.entropy_rate() if floor is None else float(np.mean(as_numpy(floor)))
    return m - f
