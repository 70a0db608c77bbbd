"""A multilayer perceptron on one flat parameter tensor, its products with J and Jᵀ written out.

For a batch of rows x, with h_0 = x, the layers l = 1 … L compute

    a_l = h_{l−1} W_lᵀ + b_l,    h_l = act(a_l) (hidden layers),    y = a_L
    (y = act(a_L) as well with ``activate_output``, the trunk of a dueling Q-network).

The kernels, with J = ∂y/∂θ at the rows x:

    forward   y, keeping the input h_{l−1} of every layer (the cache);
    vjp       θ̄ = Jᵀδ for a cotangent δ = ∂ℓ/∂y, from the last layer to the first:
              ∂W_l = δ_lᵀ h_{l−1},  ∂b_l = Σ_i δ_l,i,  δ_{l−1} = (δ_l W_l) ⊙ act′(a_{l−1});
    jvp       J v for a tangent v = (dW_l, db_l), from the first layer to the last:
              da_l = h_{l−1} dW_lᵀ + db_l + dh_{l−1} W_lᵀ,  dh_l = act′(a_l) ⊙ da_l,  J v = da_L;
    numpy     y for a handful of rows (acting one env step at a time), where the fixed cost of
              each torch call would be most of the forward pass (numpy's is about a microsecond).

act′ is read from the layer's output: tanh′(a) = 1 − h², relu′(a) = 1[h > 0].

The readable versions (``torch.nn.functional``, ``torch.func.vjp`` / ``jvp``) are ``mlp``,
``mlp_vjp`` and ``mlp_jvp`` in ``core/engine/fast/reference.py``; ``tests/test_fast_kernels.py``
compares the two. On the small layers of this project (64–256 units, batches of 64–2048 rows)
autograd and ``nn.Module`` calls cost more than the arithmetic, and one flat tensor makes the
optimizer step and the gradient norm one operation each.

Layout of the flat tensor: W_1 (row-major [out, in]), b_1, W_2, b_2, … — the parameter order of
the ``nn.Sequential`` that ``core/engine/nets.py`` builds, so :meth:`FlatMLP.bind` can rebind a
module's parameters as views of it (the module, its ``state_dict`` and checkpoints keep working).

tanh runs in place through numpy's vectorized ``np.tanh`` on the tensor's memory (:func:`tanh_`):
on CPU, at this project's layer sizes, about 10× faster than ``torch.tanh``, and as exact
(within float32 rounding; ``tests/test_fast_kernels.py``).

One option chooses between equally exact ways to compute the same thing, which round differently
in the last bit; each network keeps the one its recorded seeded runs
(``tests/data/seeded_reference.json``) were made with:

- ``transposed_input_grad``: ∂W_1 as (h_0ᵀδ_1)ᵀ, the faster GEMM shape when the input is thin
  (a handful of observation columns).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

ACTIVATIONS = ("tanh", "relu")

NumpyLayers = list[tuple[np.ndarray, np.ndarray]]


def bind(params: Iterable[torch.Tensor], views: Sequence[torch.Tensor]) -> None:
    """Copy each parameter's value into its view, then make the view the parameter's storage."""
    params = list(params)
    if len(params) != len(views) or any(
        p.shape != v.shape or p.dtype != v.dtype for p, v in zip(params, views)
    ):
        raise TypeError("the parameters do not match the flat layout (sizes, order or dtype)")
    with torch.no_grad():
        for p, view in zip(params, views):
            view.copy_(p)
            p.data = view


class Layer:
    """One linear layer's W [out, in], b [out], Wᵀ and the gradient's ∂W, ∂b, all views."""

    __slots__ = ("W", "b", "Wt", "gW", "gb")

    def __init__(self, W: torch.Tensor, b: torch.Tensor, gW: torch.Tensor, gb: torch.Tensor):
        self.W, self.b, self.Wt, self.gW, self.gb = W, b, W.t(), gW, gb


class FlatMLP:
    """The MLP of the module docstring on ``params`` (gradient written into ``grad``).

    ``params`` and ``grad`` default to fresh zero tensors; pass slices of larger flat tensors to
    keep several networks in one (the actor-critic's actor, critic and log σ).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str,
        params: torch.Tensor | None = None,
        grad: torch.Tensor | None = None,
        *,
        activate_output: bool = False,
        transposed_input_grad: bool = False,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r}; allowed: {', '.join(ACTIVATIONS)}")
        self.sizes, self.activation = tuple(sizes), activation
        self.activate_output, self.transposed_input_grad = activate_output, transposed_input_grad
        n = self.n_params(self.sizes)
        self.flat = torch.zeros(n) if params is None else params
        self.grad = torch.zeros_like(self.flat) if grad is None else grad
        if self.flat.shape != (n,) or self.grad.shape != (n,):
            raise ValueError(f"sizes {self.sizes} need flat tensors of {n} elements")
        self.shapes = [(o, i) for i, o in zip(self.sizes[:-1], self.sizes[1:])]
        self.layers = [
            Layer(*w, *g) for w, g in zip(self._split(self.flat), self._split(self.grad))
        ]
        self._grads = [(layer.gW, layer.gb) for layer in self.layers]
        tanh = activation == "tanh"
        self._act_ = tanh_ if tanh else torch.relu_
        self._act_backward = _tanh_backward if tanh else _relu_backward

    @staticmethod
    def n_params(sizes: Sequence[int]) -> int:
        """Σ_l (in_l + 1) · out_l."""
        return sum((i + 1) * o for i, o in zip(sizes[:-1], sizes[1:]))

    @property
    def views(self) -> list[torch.Tensor]:
        """W_1, b_1, W_2, … as views of ``flat``: the order of ``nn.Sequential.parameters()``."""
        return [t for layer in self.layers for t in (layer.W, layer.b)]

    def bind(self, params: Iterable[torch.Tensor]) -> FlatMLP:
        """Take over ``params`` (an MLP's W_1, b_1, W_2, …): their values are copied into
        ``flat`` and they become views of it (:func:`bind`). Returns ``self``."""
        bind(params, self.views)
        return self

    # -- the kernels -----------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, cache: list[torch.Tensor] | None = None) -> torch.Tensor:
        """y for rows ``x``; appends h_0 … h_{L−1} (and y with ``activate_output``) to ``cache``."""
        h, last = x, len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if cache is not None:
                cache.append(h)
            h = torch.addmm(layer.b, h, layer.Wt)
            if i < last or self.activate_output:
                h = self._act_(h)
        if cache is not None and self.activate_output:
            cache.append(h)
        return h

    def vjp(
        self,
        cache: list[torch.Tensor],
        delta: torch.Tensor,
        *,
        slopes: list[torch.Tensor] | None = None,
        grad: torch.Tensor | None = None,
    ) -> None:
        """Write Jᵀδ (∂ℓ/∂θ for δ = ∂ℓ/∂y) into ``grad`` (default ``self.grad``).

        act′ is taken from ``slopes`` when given (:meth:`slopes`, computed once for many
        products), else from the cached outputs.
        """
        grads = self._grads if grad is None else self._split(grad)
        n = len(self.layers)
        if self.activate_output:  # δ_L ⊙ act′(a_L), leaving the caller's δ as it is
            delta = self._act_backward(delta, cache[n]) if slopes is None else delta * slopes[-1]
        for i in range(n - 1, -1, -1):
            gW, gb = grads[i]
            if i or not self.transposed_input_grad:
                torch.mm(delta.t(), cache[i], out=gW)
            else:
                gW.copy_(torch.mm(cache[0].t(), delta).t())
            torch.sum(delta, 0, out=gb)
            if i:
                delta = self._slope_times(delta.mm(self.layers[i].W), cache, slopes, i)

    def slopes(self, cache: list[torch.Tensor]) -> list[torch.Tensor]:
        """act′(a_l) for every activated layer, from its cached output."""
        if self.activation == "tanh":
            return [1.0 - h.square() for h in cache[1:]]
        return [(h > 0).to(h.dtype) for h in cache[1:]]

    def jvp(
        self, cache: list[torch.Tensor], slopes: list[torch.Tensor], tangent: torch.Tensor
    ) -> torch.Tensor:
        """J v for a tangent ``v`` laid out like ``flat``, at the rows of ``cache``."""
        dh, last = None, len(self.layers) - 1
        for i, ((dW, db), layer) in enumerate(zip(self._split(tangent), self.layers)):
            da = torch.addmm(db, cache[i], dW.t())
            if dh is not None:
                da.addmm_(dh, layer.Wt)
            if i < last or self.activate_output:
                dh = da.mul_(slopes[i])
        return da

    def numpy_layers(self, copy: bool) -> NumpyLayers:
        """:func:`numpy_layers` of this network: a snapshot (``copy``) or views that follow
        in-place updates of ``flat``."""
        return numpy_layers(self.views, copy)

    # -- helpers ---------------------------------------------------------------------------------

    def _split(self, flat: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(W_l, b_l) views of a tensor laid out like ``flat``."""
        out, offset = [], 0
        for o, i in self.shapes:
            W = flat[offset : offset + o * i].view(o, i)
            out.append((W, flat[offset + o * i : offset + o * i + o]))
            offset += o * i + o
        return out

    def _slope_times(
        self,
        dh: torch.Tensor,
        cache: list[torch.Tensor],
        slopes: list[torch.Tensor] | None,
        layer: int,
    ) -> torch.Tensor:
        """dh ⊙ act′(a_layer) for hidden layer ``layer`` (counted from 1); may overwrite dh."""
        if slopes is not None:
            return dh.mul_(slopes[layer - 1])
        return self._act_backward(dh, cache[layer])


def numpy_layers(params: Iterable[torch.Tensor], copy: bool) -> NumpyLayers:
    """(W_lᵀ, b_l) numpy arrays for :func:`numpy_forward` from parameters in the flat layout's order
    W_1, b_1, W_2, … (a FlatMLP's ``views``, or an MLP module's ``parameters()``): copies, or
    views of the same memory."""
    arrays = [p.detach().numpy() for p in params]
    if copy:
        return [(W.T.copy(), b.copy()) for W, b in zip(arrays[::2], arrays[1::2])]
    return [(W.T, b) for W, b in zip(arrays[::2], arrays[1::2])]


def numpy_forward(layers: NumpyLayers, activation: str, x: np.ndarray) -> np.ndarray:
    """y = act(… act(x W_1ᵀ + b_1) …) W_Lᵀ + b_L on ``layers`` given as (Wᵀ, b) numpy arrays."""
    h = x
    for weight_t, bias in layers[:-1]:
        h = h @ weight_t + bias
        h = np.tanh(h, out=h) if activation == "tanh" else np.maximum(h, 0.0, out=h)
    weight_t, bias = layers[-1]
    return h @ weight_t + bias


def tanh_(h: torch.Tensor) -> torch.Tensor:
    """tanh of ``h`` in place, by ``np.tanh`` on its memory when it is a contiguous CPU tensor
    outside autograd (module docstring), else by ``torch.tanh_``."""
    if h.requires_grad or not h.is_contiguous() or h.device.type != "cpu":
        return h.tanh_()
    array = h.numpy()
    np.tanh(array, out=array)
    return h


def _tanh_backward(dh: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """dh ⊙ (1 − h²), h = tanh(a)."""
    return torch.ops.aten.tanh_backward(dh, h)


def _relu_backward(dh: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """dh ⊙ 1[h > 0], h = relu(a)."""
    return torch.ops.aten.threshold_backward(dh, h, 0.0)
