"""The examples train in compiled C and match a pure-numpy implementation of the same model step for step."""

import importlib.util
import pathlib

import numpy as np

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def numpy_mlp_losses(mlp, steps, hidden, lr, batch, seed):
    """The MLP of examples/mlp.py written directly in numpy, forward and backward by hand."""
    X, labels = mlp.make_data(seed=seed)
    p = {k: v.copy() for k, v in mlp.init_params(X.shape[1], hidden, labels.max() + 1, seed).items()}
    losses = []
    for step in range(steps):
        start = (step * batch) % len(X)
        x, y = X[start:start + batch], labels[start:start + batch]
        h = np.tanh(x @ p["W1"] + p["b1"])
        logits = h @ p["W2"] + p["b2"]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        n = len(y)
        losses.append(-log_probs[np.arange(n), y].mean())
        d_logits = np.exp(log_probs)
        d_logits[np.arange(n), y] -= 1
        d_logits /= n
        grads = {"W2": h.T @ d_logits, "b2": d_logits.sum(axis=0)}
        d_h = (d_logits @ p["W2"].T) * (1 - h * h)
        grads.update(W1=x.T @ d_h, b1=d_h.sum(axis=0))
        for k in p:
            p[k] -= lr * grads[k]
    return np.array(losses)


@pytest.mark.slow
def test_mlp_matches_numpy_for_100_sgd_steps():
    mlp = _load("mlp")
    settings = dict(steps=100, hidden=64, lr=0.5, batch=128, seed=3)
    compiled = np.array(mlp.train(**settings))
    reference = numpy_mlp_losses(mlp, **settings)
    assert compiled.shape == (100,) and compiled[-1] < compiled[0] / 10
    np.testing.assert_allclose(compiled, reference, rtol=1e-8)


def test_logistic_regression_example_learns(capsys):
    loss, accuracy = _load("logistic_regression").main(steps=60)
    assert accuracy > 0.9 and np.isfinite(loss)
    assert "accuracy" in capsys.readouterr().out


def numpy_rnn_losses(rnn, steps, lr):
    """examples/rnn.py's model in numpy: forward through time, gradients by hand (BPTT)."""
    X, y = rnn.make_data()
    p = {k: np.array(v, dtype=float).copy() for k, v in rnn.init_params().items()}
    losses = []
    for _ in range(steps):
        h = np.zeros((X.shape[1], p["W_rec"].shape[0]))
        hs = [h]
        for t in range(X.shape[0]):
            h = np.tanh(X[t] @ p["W_in"] + h @ p["W_rec"])
            hs.append(h)
        pred = hs[-1] @ p["w_out"] + p["b_out"]
        losses.append(((pred - y) ** 2).mean())
        d_pred = 2 * (pred - y) / len(y)
        g = {"w_out": hs[-1].T @ d_pred, "b_out": d_pred.sum(), "W_in": np.zeros_like(p["W_in"]),
             "W_rec": np.zeros_like(p["W_rec"])}
        d_h = np.outer(d_pred, p["w_out"])
        for t in reversed(range(X.shape[0])):
            d_a = d_h * (1 - hs[t + 1] ** 2)
            g["W_in"] += X[t].T @ d_a
            g["W_rec"] += hs[t].T @ d_a
            d_h = d_a @ p["W_rec"].T
        for k in p:
            p[k] = p[k] - lr * g[k]
    return np.array(losses)


@pytest.mark.slow
def test_rnn_example_matches_numpy_bptt():
    rnn = _load("rnn")
    X, y = rnn.make_data()
    train, _ = rnn.build(rnn.init_params(), lr=0.1)
    got = np.array([float(train(X, y)) for _ in range(25)])
    np.testing.assert_allclose(got, numpy_rnn_losses(rnn, 25, 0.1), rtol=1e-9)
    assert got[-1] < got[0] * 0.5


@pytest.mark.slow
def test_lenet_example_learns_and_matches_the_reference_evaluator():
    """examples/lenet.py: its compiled step (convolutions, poolings and their gradients in C) gives
    the losses of the numpy reference evaluator (device='py') step for step, and it learns."""
    import gencomp

    lenet = _load("lenet")
    X, labels = lenet.make_data(n=64, seed=1)
    params = lenet.init_params(int(labels.max()) + 1, seed=1)
    compiled, _ = lenet.build(params, lr=0.1)
    with gencomp.config.change(device="py"):
        reference, _ = lenet.build(params, lr=0.1)
    assert "conv2d(&cv" in compiled.source and "pool2d(&pl" in compiled.source
    for step in range(3):
        x, y = X[16 * step:16 * step + 16], labels[16 * step:16 * step + 16]
        got, want = compiled(x, y), reference(x, y)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-4)
    losses = lenet.train(steps=60)
    assert losses[-1] < 0.5 * losses[0]
