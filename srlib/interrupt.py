"""Ctrl-C between training steps, never in the middle of one.

Stopping half-way through a step would leave weights and step counter out of sync. Inside
:class:`DeferInterrupt`, the first Ctrl-C (a notebook's stop button, or the SIGINT torchrun sends
its processes when it is stopped) only sets ``requested``, which :func:`srlib.train.fit` checks
after every step (with several processes, all stop at the same step); a second Ctrl-C interrupts
at once.
"""

from __future__ import annotations

import signal
import threading

__all__ = ["DeferInterrupt"]


class DeferInterrupt:
    """``with DeferInterrupt() as interrupt:`` Ctrl-C sets ``interrupt.requested``; a second one raises
    KeyboardInterrupt at once. On leaving, the previous handler is back."""

    def __enter__(self) -> DeferInterrupt:
        self.requested = False
        self._installed = threading.current_thread() is threading.main_thread()
        if self._installed:  # signal handlers can only be set from the main thread
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def _on_sigint(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous if self._previous is not None else signal.default_int_handler)
