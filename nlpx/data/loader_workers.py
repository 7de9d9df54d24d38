"""DataLoader worker settings that also hold inside a joblib (loky) worker process."""

from __future__ import annotations

import multiprocessing

STANDARD_METHODS = ("fork", "spawn", "forkserver")


def worker_kwargs(num_workers: int) -> dict:
    """`num_workers`, `persistent_workers` and, where needed, `multiprocessing_context` for a DataLoader.

    `nlpx ablate ... hydra/launcher=joblib` runs each cell in a loky worker, and loky makes its own
    start method the process-wide default there; torch's DataLoader starts plain
    `multiprocessing.Process` objects through the default context, which loky's cannot start
    ("'Process' object has no attribute 'env'"). Outside the standard methods, name the platform's
    default (the first of `get_all_start_methods()`), as the DataLoader would have used anywhere else.
    """
    if num_workers <= 0:
        return {"num_workers": 0}
    kwargs = {"num_workers": num_workers, "persistent_workers": True}
    if multiprocessing.get_start_method(allow_none=True) not in (None, *STANDARD_METHODS):
        kwargs["multiprocessing_context"] = multiprocessing.get_context(multiprocessing.get_all_start_methods()[0])
    return kwargs
