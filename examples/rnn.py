"""A recurrent network (Elman RNN, tanh) trained with scan and backpropagation through time to sum
a sequence's numbers: the last hidden state's readout must give the running total."""

import numpy as np

import gencomp
import gencomp.tensor as T


def make_data(n=64, steps=8, seed=0):
    """Sequences of numbers in [-1, 1] (steps, n, 1) and their sums (n,)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (steps, n, 1))
    return X, X.sum(axis=(0, 2))


def init_params(hidden=16, seed=0):
    rng = np.random.default_rng(seed + 1)
    return {"W_in": rng.standard_normal((1, hidden)) * 0.5,
            "W_rec": rng.standard_normal((hidden, hidden)) * (0.5 / np.sqrt(hidden)),
            "w_out": rng.standard_normal(hidden) * (1.0 / np.sqrt(hidden)),
            "b_out": np.zeros(())}


def build(params, lr):
    """(training function (X, y) -> loss, parameters as shared variables)."""
    p = {k: gencomp.shared(v.copy(), name=k) for k, v in params.items()}
    x, y = T.tensor3("x"), T.dvector("y")                 # x: (steps, batch, 1)
    h0 = T.zeros((x.shape[1], p["W_rec"].shape[0]))

    def step(x_t, h):
        return T.tanh(T.dot(x_t, p["W_in"]) + T.dot(h, p["W_rec"]))

    hs, _ = gencomp.scan(step, sequences=x, outputs_info=h0)
    prediction = T.dot(hs[-1], p["w_out"]) + p["b_out"]
    loss = ((prediction - y) ** 2).mean()
    grads = T.grad(loss, list(p.values()))
    train = gencomp.function([x, y], loss, updates=[(v, v - lr * g) for v, g in zip(p.values(), grads)])
    return train, p


def main(epochs=300, lr=0.1):
    X, y = make_data()
    train, p = build(init_params(), lr)
    losses = [float(train(X, y)) for _ in range(epochs)]
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f} after {epochs} steps of BPTT over {X.shape[0]} steps")
    return losses


if __name__ == "__main__":
    main()
