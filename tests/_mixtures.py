"""Data drawn from mixtures of experts with known structure, for recovery tests."""

import numpy as np


def sample_linear_mixture(n_samples, random_state, noise=0.0):
    """Draw from a known mixture of three logistic experts over three regions of the
    plane, with a sharp softmax gate.

    Returns ``X``, ``y``, the true region of each sample and the Bayes posterior
    ``P(y = 1 | x)``.
    """
    rng = np.random.default_rng(random_state)
    X = rng.uniform(-3, 3, size=(n_samples, 2))
    gate_coef = np.array([[-4.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    gate_intercept = np.array([0.0, 0.0, -6.0])
    scores = X @ gate_coef.T + gate_intercept
    gate = np.exp(scores - scores.max(axis=1, keepdims=True))
    gate /= gate.sum(axis=1, keepdims=True)
    expert_coef = np.array([[3.0, 3.0], [-3.0, 3.0], [0.0, -4.0]])
    expert_intercept = np.array([0.5, -0.5, 8.0])
    expert_positive = 1 / (1 + np.exp(-(X @ expert_coef.T + expert_intercept)))
    posterior = (gate * expert_positive).sum(axis=1)
    y = (rng.random(n_samples) < posterior).astype(int)
    region = np.argmax(gate, axis=1)
    return X, y, region, posterior
