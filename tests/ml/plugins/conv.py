"""A user's torch model: a small 1-D convolution over the standardised numeric columns (taken as
a sequence), plus one embedding per categorical column. Nothing in ml/ knows it exists."""

from __future__ import annotations

import torch
from torch import nn

from ml.families import ModelSpec


class TabularConv(nn.Module):
    def __init__(self, spec: ModelSpec, channels: int = 8, width: int = 32):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(1, channels, kernel_size=3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool1d(4), nn.Flatten()
        )
        self.embeddings = nn.ModuleList(nn.Embedding(c + 1, 4) for c in spec.cardinalities)
        features = (channels * 4 if spec.n_numeric else 0) + 4 * len(spec.cardinalities)
        self.head = nn.Sequential(nn.Linear(features, width), nn.ReLU(), nn.Linear(width, spec.n_outputs))

    def forward(self, numeric: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        parts = [self.conv(numeric.unsqueeze(1))] if numeric.shape[1] else []
        parts += [table(codes[:, i]) for i, table in enumerate(self.embeddings)]
        return self.head(torch.cat(parts, dim=1))


def build(spec: ModelSpec, channels: int = 8) -> nn.Module:
    return TabularConv(spec, channels=channels)
