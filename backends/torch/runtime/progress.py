"""The PyTorch trainer's progress: tqdm on a terminal, a line every few seconds in a log."""

import sys

try:
    from tqdm import tqdm
except ImportError:  # one line, exit 2, as for any other problem of the setup
    print("error: train.py needs tqdm: pip install tqdm", file=sys.stderr)
    raise SystemExit(2) from None

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from progress_lines import LOG_EVERY_S, ProgressLines, on_terminal


class FieldsBar(tqdm):
    """tqdm whose postfix is drawn from zero-argument callables (read only when drawn)
    and the rate in images per second."""

    def __init__(self, *args, fields, images, **kwargs):
        """tqdm's arguments, the postfix's fields and the images of one unit."""
        self.fields, self.images = fields, images
        super().__init__(*args, **kwargs)

    @property
    def format_dict(self):
        """tqdm's values with the postfix made now (none before the first update)."""
        values = super().format_dict
        done = values["n"] - values["initial"]
        if done > 0:
            rate = done * self.images / max(values["elapsed"], 1e-9)
            shown = [f"{k}={f():.4g}" for k, f in self.fields.items()]
            values["postfix"] = ", ".join([*shown, f"{rate:.0f} img/s"])
        return values


class StepProgress:
    """One pass's progress (an epoch's steps, a validation pass's batches); silent where
    not enabled (ranks > 0) or where there is no stderr."""

    def __init__(
        self,
        total,
        desc,
        fields,
        unit,
        images,
        initial=0,
        enabled=True,
        every_s=LOG_EVERY_S,
    ):
        """Count towards total units of `images` images each from `initial` on; every_s:
        the seconds between two lines of a log."""
        self.unit = unit
        stream = sys.stderr
        self.view = None
        if enabled and on_terminal(stream):
            self.view = FieldsBar(
                total=total,
                desc=desc,
                initial=initial,
                unit=unit,
                leave=False,
                fields=fields,
                images=images,
            )
        elif enabled and stream is not None:
            self.view = ProgressLines(
                total, desc, fields, unit, images, initial, every_s
            )

    def update(self, position):
        """Move to position (units done in the pass)."""
        if isinstance(self.view, tqdm):
            self.view.update(position - self.view.n)
        elif self.view is not None:
            self.view.update(position)

    def close(self):
        """Clear the bar from the terminal."""
        if isinstance(self.view, tqdm):
            self.view.close()
