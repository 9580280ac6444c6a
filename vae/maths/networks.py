"""Encoder bodies and decoders (the `arch` config group chooses them: `mlp` or `conv`).

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
        self.net = nn.Sequential(mlp(latent_dim, width, depth), nn.Linear(width, X_DIM), nn.Unflatten(1, IMAGE_SHAPE))

    def forward(self, z):
        return self.net(z)


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (28 -> 14 -> 7 pixels; `channels`, then 2 * `channels` feature maps),
    then one fully connected layer of `width` units."""

    def __init__(self, channels: int = 32, width: int = 512):
        super().__init__()
        self.hidden = nn.Sequential(
            nn.Conv2d(1, channels, 4, stride=2, padding=1),
            nn.ReLU(),  # (channels, 14, 14)
            nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1),
            nn.ReLU(),  # (2 channels, 7, 7)
            nn.Flatten(),
            nn.Linear(2 * channels * 7 * 7, width),
            nn.ReLU(),
        )
        self.out_features = width

    def forward(self, x):
        return self.hidden(x)


class ConvDecoder(nn.Module):
    """The encoder mirrored: z -> `width` units -> 2 * `channels` maps of 7 x 7 -> two stride-2
    transposed convolutions (7 -> 14 -> 28 pixels) -> x_hat (B, 1, 28, 28)."""

    def __init__(self, latent_dim: int = 2, channels: int = 32, width: int = 512):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, width),
            nn.ReLU(),
            nn.Linear(width, 2 * channels * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (2 * channels, 7, 7)),
            nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1),
            nn.ReLU(),  # (channels, 14, 14)
            nn.ConvTranspose2d(channels, 1, 4, stride=2, padding=1),
        )  # (1, 28, 28)

    def forward(self, z):
        return self.net(z)
