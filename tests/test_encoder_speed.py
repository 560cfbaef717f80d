"""The loader's fast encoding path gives the very bits of the plain one: ``Encoder.infer``
against ``Encoder.forward``, and the CPU's 64-row batches against 512-row ones."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from caomai_loaders import encoder as enc


def _model() -> enc.Encoder:
    torch.manual_seed(3)
    return enc.Encoder(enc.EncoderConfig()).eval()


def _boxes(n: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    boxes = (0.05 * rng.normal(size=(n, 32, 32))).astype(np.float32)
    boxes[:, 14:18, 14:18] += rng.uniform(0.2, 1.0, size=(n, 1, 1)).astype(np.float32)
    return boxes


def _plain_encode(model: enc.Encoder, boxes: np.ndarray, batch: int = 512) -> np.ndarray:
    """``encode`` as it was: the module's forward, 512-row batches, 4 rotations."""
    out = np.zeros((len(boxes), model.config.dim), np.float32)
    host = torch.from_numpy(boxes).unsqueeze(1)
    with torch.no_grad():
        for start in range(0, len(boxes), batch):
            chunk = host[start : start + batch]
            m = len(chunk)
            chunk = torch.cat([chunk, chunk.new_zeros((batch - m, *chunk.shape[1:]))])
            z = sum(F.normalize(model(torch.rot90(chunk, k, dims=(2, 3))), dim=1) for k in range(4))
            out[start : start + m] = F.normalize(z, dim=1)[:m].numpy()
    return out


def test_infer_is_forward_bit_for_bit():
    model = _model()
    x = torch.from_numpy(_boxes(70)).unsqueeze(1)
    with torch.no_grad():
        assert torch.equal(model.infer(x), model(x))
        rotated = torch.rot90(x, 1, dims=(2, 3))
        assert torch.equal(model.infer(rotated), model(rotated))


def test_cpu_batches_give_the_plain_embeddings():
    model = _model()
    boxes = _boxes(150)  # 3 batches of 64, the last padded
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the loader encodes
    try:
        new = enc.encode(model, boxes, device=torch.device("cpu"))
        assert enc.CPU_BATCH == 64
        np.testing.assert_array_equal(new, _plain_encode(model, boxes))
        # and an object's embedding does not depend on its batch-mates
        np.testing.assert_array_equal(enc.encode(model, boxes[100:]), new[100:])
    finally:
        torch.set_num_threads(threads)
