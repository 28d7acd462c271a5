"""Progress off a terminal, the same in both trainers: a plain line every few seconds."""

import sys
import time

LOG_EVERY_S = 30.0  # seconds between two lines of one pass (--progress-every)


def on_terminal(stream):
    """Whether stream is an interactive terminal (where the framework's bar redraws)."""
    return stream is not None and stream.isatty()


class ProgressLines:
    """`DESC N/TOTAL (P%) R UNIT/s FIELD VALUE ... IMG img/s`, at most one line every
    `every_s` seconds; field values are zero-argument callables, called only when printed."""

    def __init__(
        self, total, desc, fields, unit, images, initial=0, every_s=LOG_EVERY_S
    ):
        """Count towards total units of `images` images each, from `initial` on."""
        self.total, self.desc, self.fields = total, desc, fields
        self.unit, self.images, self.initial = unit, images, initial
        self.every_s = every_s
        self.start = self.last = time.monotonic()

    def update(self, position):
        """Print a line for position if the last one is every_s old."""
        now = time.monotonic()
        if now - self.last < self.every_s:
            return
        self.last = now
        rate = (position - self.initial) / max(now - self.start, 1e-9)
        values = "".join(f"  {k} {f():.4g}" for k, f in self.fields.items())
        percent = 100 * position / max(self.total, 1)
        sys.stderr.write(
            f"{self.desc}  {position}/{self.total} ({percent:.0f}%)  "
            f"{rate:.2f} {self.unit}/s{values}  {rate * self.images:.0f} img/s\n"
        )
        sys.stderr.flush()
