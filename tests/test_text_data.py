"""kitdata.text: the synthetic language's exact entropy claims, its sampler and its corpus."""
import itertools
import math

import numpy as np
import pytest

import kitdata.text as kt
from kitdata.text import LANGUAGE, SyntheticLanguage


# ----------------------------------------------------------------------------- closed forms
def test_default_numbers():
    assert LANGUAGE.alphabet == "abcdefghABCDEFGH"
    assert LANGUAGE.letter_entropy_rate() == pytest.approx(0.8042607159, abs=1e-9)
    assert LANGUAGE.case_entropy_rate() == pytest.approx(0.3250829734, abs=1e-9)
    assert LANGUAGE.entropy_rate() == pytest.approx(1.1293436893, abs=1e-9)
    assert LANGUAGE.bigram_entropy() == pytest.approx(math.log(8) + 0.3250829734, abs=1e-9)
    assert LANGUAGE.unigram_entropy() == pytest.approx(math.log(16))
    # The gap a suite relies on: a bigram stays far above the entropy rate.
    assert LANGUAGE.bigram_entropy() - LANGUAGE.entropy_rate() > 1.2
    assert kt.entropy_rate() == LANGUAGE.entropy_rate()


def _brute_force(lang: SyntheticLanguage):
    """Entropy rate and bigram conditional entropy from the full Markov chain.

    State = (last `lag` letters, last case). The stationary law is found numerically
    (power iteration), independent of the closed-form argument.
    """
    L, lag = lang.n_letters, lang.lag
    states = [(w, c) for w in itertools.product(range(L), repeat=lag) for c in (0, 1)]
    index = {s: i for i, s in enumerate(states)}
    P = np.zeros((len(states), len(states)))
    cond = {}                                      # state -> {(letter, case): prob}
    for (w, c) in states:
        dist = {}
        for a in range(L):
            q = lang.fresh[a] if lang.fresh is not None else 1 / L
            pa = (1 - lang.eps) * (a == w[0]) + lang.eps * q
            for c2 in (0, 1):
                pc = lang.flip if c2 != c else 1 - lang.flip
                dist[(a, c2)] = pa * pc
                P[index[(w, c)], index[(w[1:] + (a,), c2)]] += pa * pc
        cond[(w, c)] = dist
    pi = np.random.default_rng(0).dirichlet(np.ones(len(states)))   # start away from uniform
    for _ in range(5000):
        pi = pi @ P
    h = sum(pi[index[s]] * -sum(p * math.log(p) for p in cond[s].values()) for s in states)
    # Joint law of (previous character, next character) under the stationary law.
    joint = {}
    for s in states:
        prev = (s[0][-1], s[1])
        for nxt, p in cond[s].items():
            joint[(prev, nxt)] = joint.get((prev, nxt), 0.0) + pi[index[s]] * p
    marg = {}
    for (prev, _), p in joint.items():
        marg[prev] = marg.get(prev, 0.0) + p
    h_bigram = -sum(p * math.log(p / marg[prev]) for (prev, _), p in joint.items() if p > 0)
    return h, h_bigram, pi


@pytest.mark.parametrize("lag", [2, 3])
def test_closed_form_matches_brute_force(lag):
    lang = SyntheticLanguage(letters="abc", lag=lag, eps=0.3, flip=0.2)
    h, h_bigram, pi = _brute_force(lang)
    assert h == pytest.approx(lang.entropy_rate(), abs=1e-9)
    assert h_bigram == pytest.approx(lang.bigram_entropy(), abs=1e-9)
    # The stationary law is uniform, as the card argues (so the process starts in it).
    assert np.allclose(pi, 1.0 / len(pi), atol=1e-9)


@pytest.mark.parametrize("lag", [2, 3])
def test_closed_form_matches_brute_force_with_a_drawn_fresh_law(lag):
    """The graded variants draw the fresh-letter law: the closed forms must hold for it too,
    and the stationary law is then i.i.d. fresh letters (times a uniform case)."""
    lang = SyntheticLanguage(letters="abc", lag=lag, eps=0.3, flip=0.2, fresh=(0.5, 0.3, 0.2))
    h, h_bigram, pi = _brute_force(lang)
    assert h == pytest.approx(lang.entropy_rate(), abs=1e-9)
    assert h_bigram == pytest.approx(lang.bigram_entropy(), abs=1e-9)
    L = lang.n_letters
    states = [(w, c) for w in itertools.product(range(L), repeat=lag) for c in (0, 1)]
    iid = np.array([0.5 * np.prod([lang.fresh[a] for a in w]) for w, _ in states])
    assert np.allclose(pi, iid, atol=1e-9)


def test_drawn_languages_differ_from_the_public_one_and_repeat_by_seed():
    drawn = [kt.draw_language(np.random.default_rng(seed)) for seed in range(30)]
    assert all(d.lag != LANGUAGE.lag and d.fresh is not None for d in drawn)
    assert len({(d.lag, d.eps) for d in drawn}) == 30
    assert kt.draw_language(np.random.default_rng(3)) == drawn[3]
    for d in drawn:   # the suite's gap: the best bigram stays well above the entropy rate
        assert d.bigram_entropy() - d.entropy_rate() > 0.5


def test_entropy_rate_of_a_drawn_language_matches_monte_carlo():
    lang = kt.draw_language(np.random.default_rng(1))
    text = lang.sample(200_000, seed=4)
    nll = lang.token_nll(text)[lang.lag:]
    se = nll.std(ddof=1) / math.sqrt(len(nll))
    assert abs(nll.mean() - lang.entropy_rate()) < 4 * se and se < 5e-3


# ----------------------------------------------------------------------------- Monte Carlo
def test_entropy_rate_matches_monte_carlo():
    """Per-character NLL of a long sample under the true process -> the entropy rate.
    After the first `lag` characters the terms are i.i.d. (they depend only on the i.i.d.
    echo and switch events), so the standard error is exact."""
    text = LANGUAGE.sample(400_000, seed=11)
    nll = LANGUAGE.token_nll(text)[LANGUAGE.lag:]
    se = nll.std(ddof=1) / math.sqrt(len(nll))
    assert abs(nll.mean() - LANGUAGE.entropy_rate()) < 4 * se
    assert se < 3e-3                                 # the test has teeth: 4 SE < 0.012 nats
    # log_prob is the sum of token_nll: -ln p(text)/n -> h as well.
    assert -LANGUAGE.log_prob(text) / len(text) == pytest.approx(LANGUAGE.entropy_rate(), abs=0.01)


def test_bigram_limit_matches_plug_in_estimate():
    text = LANGUAGE.sample(300_000, seed=5)
    codes = LANGUAGE.encode(text)
    V = len(LANGUAGE.alphabet)
    counts = np.bincount(codes[:-1] * V + codes[1:], minlength=V * V).reshape(V, V).astype(float)
    cond = counts / counts.sum(1, keepdims=True)
    mask = counts > 0
    plug_in = -(counts[mask] * np.log(cond[mask])).sum() / counts.sum()
    # Plug-in bias is about (V^2 - V) / (2N) ~ 4e-4 nats; sampling noise ~ 3e-3.
    assert plug_in == pytest.approx(LANGUAGE.bigram_entropy(), abs=0.01)
    # And far above what the letter echo allows.
    assert plug_in > LANGUAGE.entropy_rate() + 1.2


def test_sampler_rates():
    lang = LANGUAGE
    text = lang.sample(200_000, seed=3)
    codes = lang.encode(text)
    letters, upper = codes % lang.n_letters, codes // lang.n_letters
    echo = (letters[lang.lag:] == letters[:-lang.lag]).mean()
    switch = (upper[1:] != upper[:-1]).mean()
    q = 1 - lang.eps + lang.eps / lang.n_letters
    assert echo == pytest.approx(q, abs=4 * math.sqrt(q * (1 - q) / len(codes)))
    assert switch == pytest.approx(lang.flip, abs=4 * math.sqrt(lang.flip * (1 - lang.flip) / len(codes)))
    freq = np.bincount(codes, minlength=16) / len(codes)
    assert np.abs(freq - 1 / 16).max() < 0.01


def test_token_nll_by_hand():
    lang = SyntheticLanguage(letters="ab", lag=2, eps=0.5, flip=0.25)
    # "aBaB": letters a b a b (both echoes), cases l U l U (three switches).
    nll = lang.token_nll("aBaB")
    same, other = 1 - 0.5 + 0.25, 0.25
    expected = [math.log(2) + math.log(2),
                math.log(2) - math.log(0.25),
                -math.log(same) - math.log(0.25),
                -math.log(same) - math.log(0.25)]
    assert np.allclose(nll, expected)
    assert lang.token_nll("aAbb")[2] == pytest.approx(-math.log(other) - math.log(0.25))   # no echo, a switch
    assert lang.token_nll("aAbb")[3] == pytest.approx(-math.log(other) - math.log(0.75))   # no echo, no switch
    assert lang.token_nll("abab")[3] == pytest.approx(-math.log(same) - math.log(0.75))    # echo, no switch
    with pytest.raises(ValueError):
        lang.token_nll("abc")
    assert lang.token_nll("").shape == (0,)


def test_window_entropy():
    T = 32
    expected = ((LANGUAGE.lag - 1) * LANGUAGE.bigram_entropy() + (T - LANGUAGE.lag + 1) * LANGUAGE.entropy_rate()) / T
    assert LANGUAGE.window_entropy(T) == pytest.approx(expected)
    # It is the expectation of token_nll over the targets of windows: check by Monte Carlo.
    text = LANGUAGE.sample(33 * 3000, seed=9)
    means = [LANGUAGE.token_nll(text[i:i + 33])[1:].mean() for i in range(0, len(text), 33)]
    assert np.mean(means) == pytest.approx(expected, abs=4 * np.std(means) / math.sqrt(len(means)))


# ----------------------------------------------------------------------------- sampler and corpus
def test_sample_is_reproducible_and_extends():
    a = LANGUAGE.sample(5000, seed=42)
    assert a == LANGUAGE.sample(5000, seed=42)
    assert LANGUAGE.sample(1000, seed=42) == a[:1000]
    assert a != LANGUAGE.sample(5000, seed=43)
    assert set(a) <= set(LANGUAGE.alphabet)
    assert LANGUAGE.sample(0) == ""
    assert len(LANGUAGE.sample(3, seed=1)) == 3       # shorter than lag


def test_corpus_is_fixed():
    train, held = kt.load_corpus("train"), kt.load_corpus("heldout")
    assert (len(train), len(held)) == (100_000, 20_000)
    # Pinned bytes: the corpus must never change silently (thresholds are calibrated on it).
    assert train[:40] == "CAACdefEGdcdEFEGFCGEfegfcgefegfcaefegfca"
    assert train[:60] != held[:60]
    with pytest.raises(ValueError):
        kt.load_corpus("test")


def test_cross_entropy_gap():
    held = kt.load_corpus("heldout")[:3300]
    floor = LANGUAGE.token_nll(held)
    assert kt.cross_entropy_gap(floor, floor) == pytest.approx(0.0)
    assert kt.cross_entropy_gap(floor + 0.25, floor) == pytest.approx(0.25)
    assert kt.cross_entropy_gap(2.0) == pytest.approx(2.0 - LANGUAGE.entropy_rate())


def test_invalid_parameters():
    for kwargs in ({"lag": 1}, {"eps": 0.0}, {"flip": 1.0}, {"letters": "aa"}, {"letters": "AB"}):
        with pytest.raises(ValueError):
            SyntheticLanguage(**kwargs)
