"""The examples train in compiled C and match a pure-numpy implementation of the same model step for step."""

import importlib.util
import pathlib

import numpy as np

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
