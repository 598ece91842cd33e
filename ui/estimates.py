"""A run's test estimates as the pages show them: saved with the run (vae_core/runs/evaluations.py), computed by
the background evaluator, or computed here when cheap.

The background evaluator is one process of its own at the lowest priority: a server draws every session's page
in threads of one process under one interpreter lock, and an IWAE bound computed in one of those threads took
its share of that lock from every page being drawn (bench/load.py). It computes, one at a time, what a page
waits for (ui/deferred.py) and what a toggle flip will ask for next (ui/family.py).
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections import OrderedDict
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import streamlit as st

from ui.state import APP_THREADS, config_mtime, find_run_images, load_run_cached
from vae_core.model.evaluate import EvalMetrics
from vae_core.runs.evaluations import evaluate_loaded, evaluate_run, evaluator_process, read_evaluation

log = logging.getLogger(__name__)

KEPT_RESULTS = 256  # estimates the evaluator keeps for the pages (a few KB each, with their per-image values)
Key = tuple[str, float, int, int]  # path, its save time, n_images, iwae_k


def evaluate_cached(path: str, mtime: float, n_images: int, iwae_k: int) -> EvalMetrics:
    """The run evaluated on the first n_images of the images the pages show, with a spinner while it computes."""
    with st.spinner("Evaluating on test images…"):  # shown only past half a second: a cache hit shows nothing
        return _evaluate(path, mtime, n_images, iwae_k)


@st.cache_data(max_entries=32, show_spinner=False)
def _evaluate(path: str, mtime: float, n_images: int, iwae_k: int) -> EvalMetrics:
    """Cached because an IWAE bound with large k takes seconds; keyed on the run's save time. Saved with the run,
    or computed by the background evaluator, it is read, not computed again."""
    run = load_run_cached(path, mtime)
    images = find_run_images(run).test.images[:n_images]
    found = read_evaluation(run.path, images, iwae_k) or load_evaluator().result((path, mtime, n_images, iwae_k))
    if found is not None:
        return found
    return evaluate_loaded(run, images, iwae_k)


@st.cache_data(max_entries=256, show_spinner=False)
def saved_estimate(path: str, mtime: float, n_images: int, iwae_k: int) -> bool:
    """Whether the run saved this estimate for the images its pages show (cached: it hashes the weights)."""
    run = load_run_cached(path, mtime)
    return read_evaluation(run.path, find_run_images(run).test.images[:n_images], iwae_k) is not None




@st.cache_resource
def load_evaluator() -> "Evaluator":
    """Cached: one background evaluator per server, shared by every session (it holds no one's data)."""
    return Evaluator()


class Evaluator:
    """Computes estimates in a process of its own, one at a time, in the order asked; keeps the last results."""

    def __init__(self) -> None:
        self._order = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vae-lab-evaluator")  # waits on it
        self._process: ProcessPoolExecutor | None = None
        self._asked: dict[Key, Future] = {}
        self._results: OrderedDict[Key, EvalMetrics] = OrderedDict()
        self._lock = threading.Lock()

    def warm(self, paths: list[str], requests: list[tuple[int, int]]) -> None:
        """Each (n_images, iwae_k) of each run, in the background."""
        for path in paths:
            for n, k in requests:
                self._ask((path, config_mtime(path), n, k))

    def ready(self, path: str, n: int, k: int) -> bool:
        """Whether this estimate is computed (or could not be: the page then says why); asked for if it was not."""
        return self._ask((path, config_mtime(path), n, k)).done()

    def result(self, key: Key) -> EvalMetrics | None:
        with self._lock:
            return self._results.get(key)

    def _ask(self, key: Key) -> Future:
        with self._lock:
            if key not in self._asked:
                self._asked[key] = self._order.submit(self._compute, key)
            return self._asked[key]

    def _compute(self, key: Key) -> None:
        if not threading.main_thread().is_alive():  # the server is exiting: what it was asked for is moot
            return
        try:
            metrics = self._pool().submit(evaluate_run, *key).result()
        except BrokenProcessPool:  # its process was killed: the next estimate starts another
            self._process = None
            log.warning("the background evaluator's process ended; %s is computed on its page", key)
            return
        except Exception:  # a run that cannot be evaluated says why on its page, which computes it there
            log.debug("background estimate of %s failed", key, exc_info=True)
            return
        with self._lock:
            self._results[key] = metrics
            while len(self._results) > KEPT_RESULTS:
                self._results.popitem(last=False)

    def _pool(self) -> ProcessPoolExecutor:
        if self._process is None:  # spawn: a fresh interpreter, not a fork of a server's threads
            self._process = ProcessPoolExecutor(1, multiprocessing.get_context("spawn"), evaluator_process,
                                                (APP_THREADS, os.getpid()))
        return self._process

