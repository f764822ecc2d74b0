"""bayes_pool_many fits each distinct call once and returns every call's result in order."""
from __future__ import annotations

import numpy as np

from meta.models import bayes_many
from meta.models.bayes import bayes_pool


def counting(monkeypatch) -> list:
    fitted = []
    original = bayes_many._fit_one

    def fit_one(call):
        fitted.append(call)
        return original(call)

    monkeypatch.setattr(bayes_many, "_fit_one", fit_one)
    return fitted


def test_calls_with_the_same_inputs_are_fitted_once_and_results_keep_the_order_of_the_calls(monkeypatch):
    fitted = counting(monkeypatch)
    y, v = np.array([-6.0, 3.0]), np.array([3.9, 6.2]) ** 2
    a = ((y, v, 5.0), dict(level=95.0, delta=2.0))
    b = ((y, v, 10.0), dict(level=95.0, delta=2.0))
    same_as_a = ((y.copy(), v.copy(), 5.0), dict(delta=2.0, level=95.0))  # new arrays, keywords in another order
    results = bayes_many.bayes_pool_many([a, b, same_as_a, b])
    assert len(fitted) == 2
    assert [repr(r) for r in results] == [repr(bayes_pool(*c[0], **c[1])) for c in (a, b, a, b)]


def test_inputs_that_differ_in_one_bit_or_one_keyword_are_fitted_apart(monkeypatch):
    fitted = counting(monkeypatch)
    y, v = np.array([-6.0, 3.0]), np.array([3.9, 6.2]) ** 2
    y_next = y.copy()
    y_next[1] = np.nextafter(y[1], np.inf)
    calls = [((y, v, 5.0), {}), ((y_next, v, 5.0), {}), ((y, v, np.nextafter(5.0, 0.0)), {}),
             ((y, v, 5.0), dict(tau_prior="halfcauchy")), ((y, v, 5.0), dict(delta=0.0)),
             ((y[:1], v[:1], 5.0), {}), ((list(y), list(v), 5.0), {}), ((list(y), list(v), 5.0), {})]
    results = bayes_many.bayes_pool_many(calls)
    assert len(fitted) == len(calls)  # the lists have no exact key: each is fitted on its own
    assert len({repr(r) for r in results[:6]}) == 6


def test_a_call_fitted_before_in_the_run_is_taken_from_known_and_the_new_fits_are_added_to_it(monkeypatch):
    fitted = counting(monkeypatch)
    y, v = np.array([-6.0, 3.0]), np.array([3.9, 6.2]) ** 2
    a = ((y, v, 5.0), dict(level=95.0, delta=2.0))
    b = ((y, v, 10.0), dict(level=95.0, delta=2.0))
    known = {}
    first = bayes_many.bayes_pool_many([a], known=known)
    again = bayes_many.bayes_pool_many([b, ((y.copy(), v.copy(), 5.0), dict(a[1])), b], known=known)
    assert len(fitted) == 2 and len(known) == 2
    assert again[1] is first[0] and again[0] is again[2]
    assert repr(again[0]) == repr(bayes_pool(*b[0], **b[1]))
