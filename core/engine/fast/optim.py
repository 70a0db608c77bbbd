"""Optimizers on one flat parameter tensor, the updates of ``torch.optim.Adam`` and ``RMSprop``.

With the whole network in one tensor θ (``core/engine/fast/mlp.py``) and its gradient g in another,
a step is one fused kernel (Adam) or a few tensor operations (RMSprop) instead of a loop over
parameter tensors:

    Adam (Kingma & Ba 2015), step t:  m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,
                                      θ ← θ − lr · (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε)
    RMSprop (Tieleman & Hinton 2012): v ← αv + (1−α)g²,  θ ← θ − lr · g / (√v + ε)

``lr`` is read at every step, so a schedule or a live change just sets it. The state dicts are
{"m", "v", "t"} (Adam) and {"v"} (RMSprop), the keys of every checkpoint written so far.
The reference is ``torch.optim`` itself (``optimizer`` in ``core/engine/fast/reference.py``).
"""

from __future__ import annotations

from typing import Any

import torch


class Adam:
    """Adam on the flat tensor ``params``, each step one call of ``torch._fused_adam_`` (the kernel
    behind ``torch.optim.Adam(fused=True)``): one pass over θ, m, v and g, where the same update
    written as tensor operations makes several passes and temporaries (on the ~140k parameters of
    PPO's two 256-256 MuJoCo networks, a third of a minibatch step)."""

    def __init__(
        self,
        params: torch.Tensor,
        lr: float,
        eps: float,
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        self.params, self.lr, self.eps, self.betas = params, lr, eps, betas
        self.m = torch.zeros_like(params)
        self.v = torch.zeros_like(params)
        self.t = 0
        self._t = torch.zeros(())  # t as the tensor the fused kernel reads

    def step(self, grad: torch.Tensor) -> None:
        """One update of ``params`` with gradient ``grad``."""
        self.t += 1
        self._t += 1
        b1, b2 = self.betas
        torch._fused_adam_(
            [self.params],
            [grad],
            [self.m],
            [self.v],
            [],
            [self._t],
            lr=self.lr,
            beta1=b1,
            beta2=b2,
            weight_decay=0.0,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )

    def state_dict(self) -> dict[str, Any]:
        return {"m": self.m.clone(), "v": self.v.clone(), "t": self.t}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.m.copy_(state["m"])
        self.v.copy_(state["v"])
        self.t = int(state["t"])
        self._t.fill_(self.t)


class RMSprop:
    """RMSprop on the flat tensor ``params`` (A2C's default optimizer, as SB3's)."""

    def __init__(self, params: torch.Tensor, lr: float, eps: float, alpha: float = 0.99) -> None:
        self.params, self.lr, self.eps, self.alpha = params, lr, eps, alpha
        self.v = torch.zeros_like(params)

    def step(self, grad: torch.Tensor) -> None:
        """One update of ``params`` with gradient ``grad``."""
        self.v.mul_(self.alpha).addcmul_(grad, grad, value=1 - self.alpha)
        self.params.addcdiv_(grad, self.v.sqrt().add_(self.eps), value=-self.lr)

    def state_dict(self) -> dict[str, Any]:
        return {"v": self.v.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.v.copy_(state["v"])
