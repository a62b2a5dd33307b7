"""A two-layer MLP (tanh hidden layer, softmax output) trained with SGD on generated data, in compiled C."""

import numpy as np

import gencomp
import gencomp.tensor as T


def make_data(n=512, features=32, classes=4, seed=0):
    """Gaussian blobs, one per class."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, features)) * 2
    labels = rng.integers(0, classes, n)
    X = centers[labels] + rng.standard_normal((n, features))
    return X, labels.astype(np.int64)


def init_params(features, hidden, classes, seed=0):
    rng = np.random.default_rng(seed + 1)
    return {
        "W1": rng.standard_normal((features, hidden)) * np.sqrt(1.0 / features),
        "b1": np.zeros(hidden),
        "W2": rng.standard_normal((hidden, classes)) * np.sqrt(1.0 / hidden),
        "b2": np.zeros(classes),
    }


def build(params, lr):
    """(training function, parameters): one call = one SGD step on a batch, returns [loss, accuracy]."""
    x, y = T.dmatrix("x"), T.lvector("y")
    shared = {name: gencomp.shared(value, name=name) for name, value in params.items()}
    hidden = T.tanh(T.dot(x, shared["W1"]) + shared["b1"])
    probs = T.nnet.softmax(T.dot(hidden, shared["W2"]) + shared["b2"])
    loss = T.nnet.categorical_crossentropy(probs, y).mean()
    accuracy = T.mean(T.eq(T.argmax(probs, axis=1), y))
    grads = T.grad(loss, list(shared.values()))
    updates = [(p, p - lr * g) for p, g in zip(shared.values(), grads)]
    return gencomp.function([x, y], [loss, accuracy], updates=updates, name="mlp_sgd_step"), shared


def train(steps=100, hidden=64, lr=0.5, batch=128, seed=0, verbose=False):
    X, labels = make_data(seed=seed)
    step_fn, _ = build(init_params(X.shape[1], hidden, labels.max() + 1, seed), lr)
    losses = []
    for step in range(steps):
        start = (step * batch) % len(X)
        loss, accuracy = step_fn(X[start:start + batch], labels[start:start + batch])
        losses.append(float(loss))
        if verbose and (step % 10 == 0 or step == steps - 1):
            print(f"step {step:4d}  loss {float(loss):.4f}  batch accuracy {float(accuracy):.3f}")
    return losses


if __name__ == "__main__":
    train(verbose=True)
