"""``mlp``: a PyTorch multi-layer perceptron as a scikit-learn estimator, GPU or CPU.

The estimator keeps its weights as NumPy arrays, so a fitted pipeline pickles, saves with
skops and loads on a machine without a GPU (or without CUDA at all); torch modules are
rebuilt from the arrays on the device at hand. Ten default architectures differ in depth,
width, dropout, normalisation and activation; Optuna tunes the learning rate, weight decay,
batch size and the number of epochs, with early stopping on the validation split.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from mlfleet.errors import MlfleetError
from mlfleet.zoo._registry import BOTH_TASKS, Family, register

#: (hidden widths, dropout, normalisation, activation) of the ten default architectures
ARCHITECTURES: tuple[tuple[tuple[int, ...], float, str, str], ...] = (
    ((64,), 0.0, "none", "relu"),
    ((128, 64), 0.1, "batch", "relu"),
    ((256, 128, 64), 0.2, "batch", "relu"),
    ((64, 64), 0.0, "layer", "gelu"),
    ((128, 128, 128), 0.3, "layer", "gelu"),
    ((32, 32, 32, 32), 0.1, "none", "tanh"),
    ((256,), 0.5, "none", "relu"),
    ((128, 64, 32), 0.1, "batch", "silu"),
    ((512, 256), 0.3, "layer", "silu"),
    ((64, 128, 64), 0.2, "batch", "gelu"),
)


def _torch():
    try:
        import torch
    except ImportError:
        raise MlfleetError(
            "the mlp family needs PyTorch, which is not installed here: pip install -e '.[gpu]' "
            "(on a machine without a GPU, a CPU build of torch first: see the README)"
        ) from None
    return torch


def resolve_device(requested: str) -> str:
    """``cuda`` when asked for (or ``auto``) and available here, else ``cpu``."""
    torch = _torch()
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        return "cuda"
    return "cpu"


class _TorchMLP(BaseEstimator):
    """Shared fit/predict; subclasses say how targets and outputs are treated."""

    _classifier = False

    def __init__(
        self,
        hidden=(64,),
        dropout=0.0,
        norm="none",
        activation="relu",
        lr=1e-3,
        weight_decay=0.0,
        batch_size=128,
        epochs=50,
        patience=5,
        device="cpu",
        n_threads=1,
        random_state=0,
    ):
        self.hidden = hidden
        self.dropout = dropout
        self.norm = norm
        self.activation = activation
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state

    # -- the network -------------------------------------------------------------------------
    def _module(self, n_in: int, n_out: int):
        torch = _torch()
        nn = torch.nn
        activations = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}
        layers: list[Any] = []
        width = n_in
        for h in self.hidden:
            layers.append(nn.Linear(width, h))
            if self.norm == "batch":
                layers.append(nn.BatchNorm1d(h))
            elif self.norm == "layer":
                layers.append(nn.LayerNorm(h))
            layers.append(activations[self.activation]())
            if self.dropout:
                layers.append(nn.Dropout(self.dropout))
            width = h
        layers.append(nn.Linear(width, n_out))
        return nn.Sequential(*layers)

    def fit(self, X, y, eval_set=None):
        """Train with Adam; with ``eval_set=(X_val, y_val)``, stop when its loss stops improving.

        Records ``best_epoch_``: the epoch count to use when refitting without a validation set.
        """
        torch = _torch()
        torch.set_num_threads(max(1, int(self.n_threads)))  # Ray reuses workers: set it every time
        torch.manual_seed(self.random_state)
        device = torch.device(resolve_device(self.device))
        X = np.asarray(X, dtype=np.float32)
        self._learn_target(np.asarray(y))
        target = self._encode_target(np.asarray(y))
        n_out = len(self.classes_) if self._classifier else 1
        # the data goes to the device once; batches are index slices on the device
        Xt = torch.from_numpy(X).to(device)
        yt = torch.from_numpy(target).to(device)
        val = None
        if eval_set is not None:
            Xv = torch.from_numpy(np.asarray(eval_set[0], dtype=np.float32)).to(device)
            yv = torch.from_numpy(self._encode_target(np.asarray(eval_set[1]))).to(device)
            val = (Xv, yv)
        net = self._module(X.shape[1], n_out).to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        loss_fn = self._loss()
        gen = torch.Generator(device=device).manual_seed(self.random_state)
        best, best_state, best_epoch, waited = float("inf"), None, 0, 0
        batch = max(2, int(self.batch_size))  # BatchNorm needs two rows
        seen, started = 0, time.perf_counter()
        for epoch in range(1, int(self.epochs) + 1):
            net.train()
            order = torch.randperm(len(Xt), device=device, generator=gen)
            for start in range(0, len(order), batch):
                idx = order[start : start + batch]
                if len(idx) < 2:
                    continue
                opt.zero_grad()
                loss = loss_fn(self._out(net(Xt[idx])), yt[idx])
                loss.backward()
                opt.step()
                seen += len(idx)
            if val is None:
                best_epoch = epoch
                continue
            net.eval()
            with torch.no_grad():
                val_loss = float(loss_fn(self._out(net(val[0])), val[1]))
            if val_loss < best - 1e-6:
                best, best_epoch, waited = val_loss, epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                waited += 1
                if self.patience and waited >= self.patience:
                    break
        if device.type == "cuda":
            torch.cuda.synchronize()
        self.samples_per_s_ = seen / max(time.perf_counter() - started, 1e-9)
        if best_state is not None:
            net.load_state_dict(best_state)
        self.best_epoch_ = best_epoch
        self.n_features_in_ = X.shape[1]
        self.weights_ = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
        self.device_ = "gpu" if device.type == "cuda" else "cpu"
        return self

    def _network(self):
        """The fitted network, rebuilt from the NumPy weights on the CPU (cached per object)."""
        torch = _torch()
        net = getattr(self, "_net_cache", None)
        if net is None:
            n_out = len(self.classes_) if self._classifier else 1
            net = self._module(self.n_features_in_, n_out)
            net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.weights_.items()})
            net.eval()
            self._net_cache = net
        return net

    def _forward(self, X) -> np.ndarray:
        torch = _torch()
        with torch.no_grad():
            out = self._network()(torch.from_numpy(np.asarray(X, dtype=np.float32)))
        return out.numpy()

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_net_cache", None)  # a torch module: rebuilt from weights_ when needed
        return state


class TorchMLPClassifier(ClassifierMixin, _TorchMLP):
    """An MLP classifier; ``predict_proba`` gives softmax probabilities."""

    _classifier = True

    def _learn_target(self, y):
        self.classes_ = np.unique(y)

    def _encode_target(self, y):
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _loss(self):
        return _torch().nn.CrossEntropyLoss()

    @staticmethod
    def _out(logits):
        return logits

    def predict_proba(self, X):
        logits = self._forward(X)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class TorchMLPRegressor(RegressorMixin, _TorchMLP):
    """An MLP regressor on a standardised target (the scale is undone in ``predict``)."""

    def _learn_target(self, y):
        y = y.astype(np.float64)
        self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std() or 1.0)

    def _encode_target(self, y):
        return ((y.astype(np.float64) - self.y_mean_) / self.y_scale_).astype(np.float32)

    def _loss(self):
        return _torch().nn.MSELoss()

    @staticmethod
    def _out(out):
        return out.squeeze(-1)

    def predict(self, X):
        return self._forward(X)[:, 0].astype(np.float64) * self.y_scale_ + self.y_mean_


def architecture(variant: int) -> dict[str, Any]:
    """The fixed (untuned) parameters of the ``variant``-th default architecture."""
    hidden, dropout, norm, activation = ARCHITECTURES[variant % len(ARCHITECTURES)]
    return {"hidden": hidden, "dropout": dropout, "norm": norm, "activation": activation}


def build(task, params, seed, n_jobs):
    cls = TorchMLPClassifier if task == "classification" else TorchMLPRegressor
    known = set(cls().get_params())
    return cls(**{k: v for k, v in params.items() if k in known}, n_threads=n_jobs, random_state=seed)


def space(trial, task):
    return {
        "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
        "epochs": trial.suggest_int("epochs", 10, 60, step=10),
    }


def defaults(task):
    """Adam's usual learning rate, light weight decay, the most epochs (early stopping decides)."""
    return {"lr": 1e-3, "weight_decay": 1e-4, "batch_size": 128, "epochs": 60}


def fit_early(model, X, y, X_val, y_val):
    """Train up to the trial's epochs, stopping when the validation loss stops improving; keeps the best epoch."""
    model.fit(X, y, eval_set=(X_val, y_val))
    return {"epochs": int(model.best_epoch_), "patience": 0}


MLP = register(
    Family(
        "mlp",
        build,
        space,
        defaults,
        cpus=1,
        gpus=1.0,
        cost=3.0,
        device="gpu",
        regression_note="TorchMLPRegressor",
        variant=architecture,
        fit_early=fit_early,
        float32=BOTH_TASKS,  # the network computes in float32
        check_installed=_torch,
    )
)
