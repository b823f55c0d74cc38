"""Streaming autoencoder graphs: memory carried from one block's graph call to the next.

A causal autoencoder (model/taehv.py, TAEHV) mixes each frame with the previous one at every MemBlock. Its
exported encoder and decoder take that memory as extra inputs ``memory_<i>`` and return the memory after the
block as ``memory_<i>_next`` (the same shapes). `GraphMemory` holds one stream's memory as two sets of
OrtValues on the execution provider's device and binds them with IO binding: this block's outputs are
written into the spare set, which becomes the next block's inputs, so on CUDA the memory (about 0.5 GB a
stream at 480x832 in float32) never crosses to the host.

A graph without memory inputs is stateless; `memory_inputs` is then empty and nothing here is used.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

#: Input name prefix and output suffix of a streaming graph's memory (model/taehv.py writes them).
MEMORY_PREFIX = "memory_"
MEMORY_NEXT = "_next"

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def memory_inputs(session: ort.InferenceSession) -> dict[str, tuple[tuple[int, ...], type]]:
    """{input name: (shape, dtype)} of a graph's memory inputs (empty for a stateless graph)."""
    out: dict[str, tuple[tuple[int, ...], type]] = {}
    for arg in session.get_inputs():
        if arg.name.startswith(MEMORY_PREFIX):
            out[arg.name] = (tuple(int(d) for d in arg.shape), _DTYPES[arg.type])
    return out


class GraphMemory:
    """One stream's memory for one streaming graph; `run` feeds it, keeps what comes out, returns the output."""

    def __init__(self, session: ort.InferenceSession, device: str = "cpu") -> None:
        self.session = session
        self.specs = memory_inputs(session)
        if not self.specs:
            raise ValueError("this graph has no memory inputs: it does not stream")
        self.output = next(o.name for o in session.get_outputs() if not o.name.endswith(MEMORY_NEXT))

        def zeros(shape, dtype):
            return ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, dtype), device, 0)

        self._current = {n: zeros(*spec) for n, spec in self.specs.items()}
        self._spare = {n: zeros(*spec) for n, spec in self.specs.items()}
        self._binding = session.io_binding()

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """One block: `feeds` (the graph's ordinary inputs, host arrays) -> its main output on the host."""
        b = self._binding
        b.clear_binding_inputs()
        b.clear_binding_outputs()
        for name, value in feeds.items():
            b.bind_cpu_input(name, np.ascontiguousarray(value))
        for name in self.specs:
            b.bind_ortvalue_input(name, self._current[name])
            b.bind_ortvalue_output(name + MEMORY_NEXT, self._spare[name])
        b.bind_output(self.output)  # on the host
        self.session.run_with_iobinding(b)
        self._current, self._spare = self._spare, self._current
        return b.get_outputs()[-1].numpy()  # bound last; the memory outputs stay where they are

    def reset(self) -> None:
        """Start a new stream: the memory is zeros again."""
        for name, (shape, dtype) in self.specs.items():
            self._current[name].update_inplace(np.zeros(shape, dtype))
