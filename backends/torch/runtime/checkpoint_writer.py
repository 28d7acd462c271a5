"""Checkpoints written in a background thread: the step loop only queues copies to the
host; a thread waits for them, pickles and writes the file atomically (temp file, fsync,
rename), so the previous file stays whole until the new one replaces it."""

import threading

import torch

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from metrics_log import atomic_write

# isort: split
from nosync import copies_queued


def host_copy(value):
    """value with every tensor copied to the host (queued, not waited for) and its dicts
    (a state_dict's metadata kept), lists and tuples rebuilt, so that training may go on
    changing the originals."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", non_blocking=True, copy=True)
    if isinstance(value, dict):
        copy = type(value)((k, host_copy(v)) for k, v in value.items())
        if hasattr(value, "_metadata"):
            copy._metadata = value._metadata
        return copy
    if type(value) in (list, tuple):
        return type(value)(host_copy(v) for v in value)
    return value


def tensor_devices(value):
    """The devices of the tensors in a nest of dicts, lists and tuples."""
    if isinstance(value, torch.Tensor):
        return [value.device]
    if isinstance(value, dict):
        value = list(value.values())
    elif type(value) not in (list, tuple):
        return []
    return [d for item in value for d in tensor_devices(item)]


class CheckpointWriter:
    """One checkpoint write at a time in a background thread; a save, the end of the run
    and an error wait for the write in flight (a failed write raises in the caller)."""

    def __init__(self):
        """No write in flight."""
        self.thread, self.error = None, None

    def submit(self, path, ckpt, finish, after):
        """Copy ckpt to the host and write finish(copy) to path in the background, then
        call after(copy)."""
        self.wait()
        host = host_copy(ckpt)
        events = copies_queued(tensor_devices(ckpt))
        args = (path, host, events, finish, after)
        self.thread = threading.Thread(target=self.write, args=args, name="checkpoint")
        self.thread.start()

    def write(self, path, host, events, finish, after):
        """The thread: wait for the copies, write the file atomically, call after."""
        try:
            for event in events:
                event.synchronize()
            atomic_write(path, lambda f: torch.save(finish(host), f))
            after(host)
        except BaseException as err:  # noqa: BLE001 - re-raised by wait() in the caller
            self.error = err

    def wait(self):
        """Wait for the write in flight; raise its error, if it failed."""
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        error, self.error = self.error, None
        if error is not None:
            raise error
