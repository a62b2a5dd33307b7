"""A LeNet-style convolutional network (conv 5x5, max-pool, conv 5x5, max-pool, tanh layer, softmax)
trained with SGD on generated 28x28 images, as Theano's deep-learning tutorial writes it: the whole
step, convolutions and poolings with their gradients included, runs in one compiled C module."""

import numpy as np

import gencomp
import gencomp.tensor as T
from gencomp.tensor.signal.pool import pool_2d


def make_data(n=512, classes=4, seed=0):
    """Noisy copies of one random 28x28 pattern per class (float32 images, int64 labels)."""
    rng = np.random.default_rng(seed)
    patterns = rng.standard_normal((classes, 1, 28, 28))
    labels = rng.integers(0, classes, n)
    images = patterns[labels] + 1.5 * rng.standard_normal((n, 1, 28, 28))
    return images.astype(np.float32), labels.astype(np.int64)


def init_params(classes, maps=(8, 16), hidden=64, seed=0):
    rng = np.random.default_rng(seed + 1)
    f32 = np.float32

    def uniform(shape, fan_in, fan_out):          # the tutorial's initialisation for tanh layers
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, shape).astype(f32)

    return {
        "w1": uniform((maps[0], 1, 5, 5), 25, maps[0] * 25 / 4), "b1": np.zeros(maps[0], f32),
        "w2": uniform((maps[1], maps[0], 5, 5), maps[0] * 25, maps[1] * 25 / 4), "b2": np.zeros(maps[1], f32),
        "w3": uniform((maps[1] * 16, hidden), maps[1] * 16, hidden), "b3": np.zeros(hidden, f32),
        "w4": np.zeros((hidden, classes), f32), "b4": np.zeros(classes, f32),
    }


def build(params, lr):
    """(training function, parameters): one call = one SGD step on a batch, returns [loss, errors]."""
    x, y = T.ftensor4("x"), T.lvector("y")
    p = {name: gencomp.shared(value, name=name) for name, value in params.items()}
    # 28x28 -> conv 24x24 -> pool 12x12 -> conv 8x8 -> pool 4x4
    h1 = pool_2d(T.tanh(T.nnet.conv2d(x, p["w1"]) + p["b1"].dimshuffle("x", 0, "x", "x")),
                 ws=(2, 2), ignore_border=True)
    h2 = pool_2d(T.tanh(T.nnet.conv2d(h1, p["w2"]) + p["b2"].dimshuffle("x", 0, "x", "x")),
                 ws=(2, 2), ignore_border=True)
    h3 = T.tanh(T.dot(h2.flatten(2), p["w3"]) + p["b3"])
    probs = T.nnet.softmax(T.dot(h3, p["w4"]) + p["b4"])
    loss = -T.mean(T.log(probs)[T.arange(y.shape[0]), y])
    errors = T.mean(T.neq(T.argmax(probs, axis=1), y))
    grads = T.grad(loss, list(p.values()))
    lr = np.float32(lr)
    updates = [(v, v - lr * g) for v, g in zip(p.values(), grads)]
    return gencomp.function([x, y], [loss, errors], updates=updates, name="lenet_sgd_step"), p


def train(steps=60, lr=0.1, batch=32, seed=0, verbose=False):
    X, labels = make_data(seed=seed)
    step_fn, _ = build(init_params(int(labels.max()) + 1, seed=seed), lr)
    losses = []
    for step in range(steps):
        start = (step * batch) % len(X)
        loss, errors = step_fn(X[start:start + batch], labels[start:start + batch])
        losses.append(float(loss))
        if verbose and (step % 10 == 0 or step == steps - 1):
            print(f"step {step:4d}  loss {float(loss):.4f}  batch error rate {float(errors):.3f}")
    return losses


if __name__ == "__main__":
    train(verbose=True)
