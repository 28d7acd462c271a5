"""The start of a run: the spec's shape table (shape_table.py, written at compile time)
with the activation memory at the run's batch and how the batch is split."""

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
import shape_table


def mebibytes(batch):
    """The activations' float32 memory at batch, in MiB (as `archdsl shapes` counts it)."""
    return shape_table.ACTIVATION_BYTES * batch / 2**20


def activation_line(batch):
    """`archdsl shapes --batch B`'s activations line for B = batch."""
    return (
        f"activations: {shape_table.ACTIVATION_VALUES:,} values per example; "
        f"{mebibytes(batch):,.1f} MiB in float32 at batch {batch}"
    )


def summary_text(batch, replicas, classes):
    """The table, the activations at the global batch and its split over the
    data-parallel replicas (processes under torchrun, Keras's mirrored replicas)."""
    each = batch / replicas
    split = (
        f"{replicas} replicas x {each:g}, {mebibytes(each):,.1f} MiB of activations each"
        if replicas > 1
        else "1 replica"
    )
    return "\n".join(
        [
            *shape_table.LINES,
            activation_line(batch),
            f"global batch {batch} ({split}); {classes} classes",
        ]
    )
