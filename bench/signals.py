"""Stopping cleanly on Ctrl-C and SIGTERM: the loop finishes its step, checkpoints and ends,
in one process (the harness) or in every worker of ``--jobs`` (the pool). A cluster job adds
its scheduler's timeout signal (:func:`also_stop_on`). Whether a process still lives
(:func:`process_start`) is asked by a worker about its parent and by ``bench status`` about
a submitit-local controller."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_EXTRA: list[tuple[tuple[int, ...], list[int]]] = []  # (signals, where to record them)


class Terminated(KeyboardInterrupt):
    """SIGTERM where no loop can stop at a step (scoring, a report): it unwinds like Ctrl-C,
    so locks are released and the command says what is saved, instead of ending silently."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated("terminated (SIGTERM)")


def terminate_unwinds() -> None:
    """Make SIGTERM raise :class:`Terminated` in this process: the base handler of the
    ``bench`` command and of a ``--jobs`` worker. :func:`stop_on_signal` replaces it while a
    training loop runs and hands a signal the loop could not use back to it."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


@contextlib.contextmanager
def also_stop_on(*signums: int) -> Iterator[list[int]]:
    """Within the block, :func:`stop_on_signal` also stops on ``signums`` (Slurm's timeout
    signal for a submitit job), and the yielded list collects every signal it received, so
    the caller knows why the loop stopped."""
    entry: tuple[tuple[int, ...], list[int]] = (tuple(signums), [])
    _EXTRA.append(entry)
    try:
        yield entry[1]
    finally:
        _EXTRA.remove(entry)


@contextlib.contextmanager
def stop_on_signal() -> Iterator[threading.Event]:
    """First SIGINT/SIGTERM sets the event (finish the step, checkpoint, stop); a second
    SIGINT raises KeyboardInterrupt at once (the last checkpoint is still on disk).

    A signal that arrives when nothing is left to stop (during the last step) is not lost:
    once the block ends normally it is raised again for the caller's own handler, so the
    run, or pytest, still stops."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)
        for _, seen in _EXTRA:
            seen.append(signum)
        stop.set()

    catch = {signal.SIGINT, signal.SIGTERM}.union(*(sigs for sigs, _ in _EXTRA))
    old = {s: signal.signal(s, handler) for s in catch}
    try:
        yield stop
    except BaseException:
        for s, h in old.items():
            signal.signal(s, h)
        raise
    for s, h in old.items():
        signal.signal(s, h)
    if received:
        signal.raise_signal(received[0])


def process_start(pid: int) -> str | None:
    """An identity of process ``pid`` that a reused pid does not share (its start time in
    /proc), '' where /proc is missing but the pid exists, None when it is gone or a zombie
    (killed, not yet reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] == "Z" else fields[19]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
