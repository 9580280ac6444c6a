"""Encoder bodies and decoders (the `arch` config group chooses them).

An encoder body maps an image x (B, 1, 28, 28) to shared hidden features h (B, out_features);
the LightningModule puts its output projections on top (the VAE: mu and log_sigma_squared; the
AE: the code z). A decoder maps z (B, latent_dim) to x_hat (B, 1, 28, 28), the unconstrained
parameters of p(x | z) that the likelihood interprets (Gaussian mean = sigmoid(x_hat);
Bernoulli logits = x_hat).
"""

from torch import nn

IMAGE_SHAPE = (1, 28, 28)
X_DIM = 28 * 28


def mlp(in_features: int, width: int, depth: int) -> nn.Sequential:
    """depth hidden layers of `width` units, each Linear + ReLU."""
    layers = []
    for i in range(depth):
        layers += [nn.Linear(in_features if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    def __init__(self, width: int = 512, depth: int = 1):
        super().__init__()
        self.hidden = nn.Sequential(nn.Flatten(), mlp(X_DIM, width, depth))
        self.out_features = width

    def forward(self, x):
        return self.hidden(x)


class MLPDecoder(nn.Module):
    def __init__(self, latent_dim: int = 2, width: int = 512, depth: int = 1):
        super().__init__()
        self.net = nn.Sequential(mlp(latent_dim, width, depth), nn.Linear(width, X_DIM),
                                 nn.Unflatten(1, IMAGE_SHAPE))

    def forward(self, z):
        return self.net(z)
