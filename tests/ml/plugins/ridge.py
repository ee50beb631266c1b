"""A user's scikit-learn model: imputation then a linear model, chosen by the task."""

from __future__ import annotations

from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ml.families import ModelSpec


def build(spec: ModelSpec, alpha: float = 1.0) -> Pipeline:
    model = Ridge(alpha=alpha) if spec.is_regression else LogisticRegression(C=1 / alpha, max_iter=500)
    return make_pipeline(SimpleImputer(), StandardScaler(), model)
