"""A test helper: run work(k) on several Python threads at once, and report the first failure."""

from __future__ import annotations

import threading


def in_threads(work, n_threads):
    """Run work(k) for k < n_threads on threads started together; re-raise the first failure."""
    start, failures = threading.Barrier(n_threads), []

    def run(k):
        try:
            start.wait()
            work(k)
        except BaseException as exc:             # noqa: BLE001 (reported in the main thread)
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
