"""Logistic regression trained with SGD on generated data: shared weights, T.grad and updates, as in Theano's tutorial."""

import numpy as np

import gencomp
import gencomp.tensor as T


def make_data(n=400, features=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features))
    true_w = rng.standard_normal(features)
    y = (X @ true_w + 0.5 * rng.standard_normal(n) > 0).astype(np.int64)
    return X, y


def main(steps=200, lr=0.1, seed=0):
    X_data, y_data = make_data(seed=seed)
    x, y = T.dmatrix("x"), T.lvector("y")
    w = gencomp.shared(np.zeros(X_data.shape[1]), name="w")
    b = gencomp.shared(0.0, name="b")
    p_1 = T.sigmoid(T.dot(x, w) + b)                              # probability of class 1
    prediction = p_1 > 0.5
    xent = T.nnet.binary_crossentropy(p_1, y)                     # stable: p_1 is a sigmoid
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = T.grad(cost, [w, b])
    train = gencomp.function([x, y], [cost, T.mean(T.eq(prediction, y))],
                             updates=[(w, w - lr * gw), (b, b - lr * gb)], name="logreg_train")
    for step in range(steps):
        loss, accuracy = train(X_data, y_data)
        if step % 20 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {float(loss):.4f}  accuracy {float(accuracy):.3f}")
    print(f"generated C: {train.source_path}")
    return float(loss), float(accuracy)


if __name__ == "__main__":
    main()
