"""The Keras trainer's progress: Keras's Progbar on a terminal, a line every few seconds
in a log."""

import sys
import time

import keras

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from progress_lines import LOG_EVERY_S, ProgressLines, on_terminal

REDRAW_S = 0.1  # seconds between two redraws of the bar (each reads the fields)


class FieldsBar:
    """keras.utils.Progbar showing zero-argument callables' values (read only when drawn)
    and the rate in images per second."""

    def __init__(self, total, fields, unit, images, initial):
        """A bar towards total units of `images` images each, from `initial` on."""
        self.fields, self.images, self.initial = fields, images, initial
        shown = [*fields, "img/s"]
        self.bar = keras.utils.Progbar(total, stateful_metrics=shown, unit_name=unit)
        self.start = self.last = time.monotonic()
        self.position = initial

    def update(self, position):
        """Redraw at position if the last redraw is REDRAW_S old or the pass is done."""
        now, self.position = time.monotonic(), position
        if now - self.last < REDRAW_S and position < self.bar.target:
            return
        self.last = now
        rate = (position - self.initial) * self.images / max(now - self.start, 1e-9)
        values = [(k, f()) for k, f in self.fields.items()]
        self.bar.update(position, [*values, ("img/s", round(rate))])


class StepProgress:
    """One pass's progress (an epoch's steps, a validation pass's batches); silent where
    there is no stdout (the bar) or stderr (the log's lines)."""

    def __init__(
        self, total, desc, fields, unit, images, initial=0, every_s=LOG_EVERY_S
    ):
        """Count towards total units of `images` images each from `initial` on; every_s:
        the seconds between two lines of a log."""
        self.unit = unit
        self.view = None
        if on_terminal(sys.stdout):
            print(desc, flush=True)
            self.view = FieldsBar(total, fields, unit, images, initial)
        elif sys.stderr is not None:
            self.view = ProgressLines(
                total, desc, fields, unit, images, initial, every_s
            )

    def update(self, position):
        """Move to position (units done in the pass)."""
        if self.view is not None:
            self.view.update(position)

    def close(self):
        """End the bar's line where the pass stopped early (Progbar ends a full one)."""
        if (
            isinstance(self.view, FieldsBar)
            and self.view.position < self.view.bar.target
        ):
            print(flush=True)
