"""Every fast kernel of ``core/engine/fast/`` against its readable reference
(``core/engine/fast/reference.py``): values, vjp / jvp (``torch.func``), the heads' gradients
(autograd through ``torch.distributions``), the Fisher metric (the autograd Hessian of the KL) and
the optimizers (``torch.optim``). In float64 unless a float32 path is the point."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.engine.fast import heads, reference
from core.engine.fast.mlp import FlatMLP, bind, numpy_forward, tanh_
from core.engine.fast.optim import Adam, RMSprop
from core.engine.nets import Critic, GaussianActor, QNetwork

SIZES = (5, 16, 8, 3)
TIGHT = dict(rtol=1e-10, atol=1e-12)


def _mlp(activation: str, sizes=SIZES, dtype=torch.float64, seed: int = 0, **options) -> FlatMLP:
    g = torch.Generator().manual_seed(seed)
    params = torch.randn(FlatMLP.n_params(sizes), generator=g, dtype=dtype) * 0.5
    return FlatMLP(sizes, activation, params, **options)


def _rows(n: int, dim: int, seed: int = 1, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# -- FlatMLP ---------------------------------------------------------------------------------------

OPTIONS = [
    {},
    {"activate_output": True},
    {"transposed_input_grad": True},
    {"activate_output": True, "transposed_input_grad": True},
]


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_forward_and_vjp_match_the_reference_and_torch_func_vjp(activation, options):
    mlp, x = _mlp(activation, **options), _rows(40, SIZES[0])
    out = options.get("activate_output", False)
    cache: list[torch.Tensor] = []
    y = mlp.forward(x, cache)
    torch.testing.assert_close(y, reference.mlp(mlp.flat, SIZES, activation, x, out), **TIGHT)
    delta = _rows(40, SIZES[-1], seed=2)
    expected = reference.mlp_vjp(mlp.flat, SIZES, activation, x, delta, out)
    mlp.vjp(cache, delta.clone())
    torch.testing.assert_close(mlp.grad, expected, **TIGHT)
    into = torch.full_like(mlp.flat, float("nan"))  # every element must be written
    mlp.vjp(cache, delta.clone(), slopes=mlp.slopes(cache), grad=into)
    torch.testing.assert_close(into, expected, **TIGHT)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("activate_output", [False, True])
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")  # inside torch.func.jvp
def test_jvp_matches_torch_func_jvp(activation, activate_output):
    mlp, x = _mlp(activation, activate_output=activate_output), _rows(40, SIZES[0])
    cache: list[torch.Tensor] = []
    mlp.forward(x, cache)
    tangent = torch.randn(mlp.flat.shape, dtype=torch.float64)
    expected = reference.mlp_jvp(mlp.flat, SIZES, activation, x, tangent, activate_output)
    torch.testing.assert_close(mlp.jvp(cache, mlp.slopes(cache), tangent), expected, **TIGHT)


@pytest.mark.parametrize("shape", [(3, 5), (256, 64)])
def test_tanh_in_place_is_tanh_to_float32_rounding(shape):
    x = 3 * torch.randn(shape, generator=torch.Generator().manual_seed(0))
    exact = torch.tanh(x.double())
    got = tanh_(x.clone())
    assert ((got.double() - exact).abs() <= 2 * 2**-24 * exact.abs() + 1e-30).all()  # ≤ 2 ulp
    graph = x.clone().requires_grad_()
    torch.testing.assert_close(tanh_(graph * 1.0), torch.tanh(graph))  # autograd: torch's tanh


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_numpy_forward_matches_torch_and_views_follow_in_place_updates(activation):
    mlp, x = _mlp(activation, dtype=torch.float32), _rows(6, SIZES[0], dtype=torch.float32)
    snapshot, live = mlp.numpy_layers(copy=True), mlp.numpy_layers(copy=False)
    expected = mlp.forward(x).numpy()
    for layers in (snapshot, live):
        np.testing.assert_allclose(
            numpy_forward(layers, activation, x.numpy()), expected, atol=1e-5
        )
    mlp.flat.mul_(0.5)
    moved = mlp.forward(x).numpy()
    np.testing.assert_allclose(numpy_forward(live, activation, x.numpy()), moved, atol=1e-5)
    np.testing.assert_allclose(numpy_forward(snapshot, activation, x.numpy()), expected, atol=1e-5)


def test_bind_makes_module_parameters_views_and_keeps_state_dict_keys():
    torch.manual_seed(0)
    critic = Critic(5, (16, 8), "tanh")
    keys, values = list(critic.state_dict()), [p.detach().clone() for p in critic.parameters()]
    mlp = FlatMLP(critic.sizes, critic.activation).bind(critic.net.parameters())
    assert (
        list(critic.state_dict())
        == keys
        == [f"net.{i}.{w}" for i in (0, 2, 4) for w in ("weight", "bias")]
    )
    for p, v in zip(critic.parameters(), values):
        assert torch.equal(p.detach(), v)
    x = _rows(7, 5, dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(mlp.forward(x).squeeze(-1), critic(x))
        mlp.flat.add_(1.0)  # the module sees in-place updates of the flat tensor
        torch.testing.assert_close(mlp.forward(x).squeeze(-1), critic(x))
    critic.load_state_dict({k: torch.zeros_like(v) for k, v in critic.state_dict().items()})
    assert not mlp.flat.any()  # and loading a checkpoint writes into it
    with pytest.raises(TypeError):
        bind(critic.parameters(), mlp.views[:-1])


def test_q_network_and_gaussian_actor_state_dict_keys_are_unchanged():
    dueling = QNetwork(4, 2, (8, 8), "relu", dueling=True)
    assert list(dueling.state_dict()) == [
        "trunk.0.weight", "trunk.0.bias", "trunk.2.weight", "trunk.2.bias",
        "value.weight", "value.bias", "advantage.weight", "advantage.bias",
    ]  # fmt: skip
    assert list(GaussianActor(3, 1, (8,), "tanh").state_dict()) == [
        "log_std", "net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"
    ]  # fmt: skip


# -- heads -----------------------------------------------------------------------------------------


def _categorical(seed: int = 0, n: int = 12, k: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(n, k, generator=g, dtype=torch.float64)
    return logits, torch.randint(0, k, (n,), generator=g)


def _gaussian(seed: int = 0, n: int = 12, d: int = 3):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(n, d, generator=g, dtype=torch.float64)
    log_std = 0.3 * torch.randn(d, generator=g, dtype=torch.float64)
    actions = mean + torch.randn(n, d, generator=g, dtype=torch.float64)
    return mean, log_std, actions


def test_categorical_values_match_torch_distributions():
    logits, actions = _categorical()
    logits_old, _ = _categorical(seed=1)
    lsm, lsm_old = torch.log_softmax(logits, -1), torch.log_softmax(logits_old, -1)
    z, z_old = (logits,), (logits_old,)
    torch.testing.assert_close(
        heads.categorical_log_prob(lsm, actions), reference.log_prob(z, actions)
    )
    torch.testing.assert_close(heads.categorical_entropy(lsm), reference.entropy(z))
    torch.testing.assert_close(heads.categorical_kl(lsm_old, lsm), reference.kl(z_old, z))
    p_old = torch.softmax(logits_old, -1)
    torch.testing.assert_close(heads.categorical_kl(lsm_old, lsm, p_old), reference.kl(z_old, z))
    torch.testing.assert_close(heads.log_prob(z, actions), reference.log_prob(z, actions))
    torch.testing.assert_close(heads.entropy(z), reference.entropy(z))
    torch.testing.assert_close(heads.kl(z_old, z), reference.kl(z_old, z))


@pytest.mark.parametrize("per_state", [False, True], ids=["one-g", "g-per-state"])
def test_categorical_gradients_match_autograd(per_state):
    logits, actions = _categorical()
    logits_old, _ = _categorical(seed=1)
    lsm = torch.log_softmax(logits, -1)
    p, p_old = lsm.exp(), torch.softmax(logits_old, -1)
    g = torch.randn(len(logits), dtype=torch.float64)
    g_h = g if per_state else 0.7

    def pullback(f, cotangent):
        return torch.func.vjp(f, logits)[1](cotangent)[0]

    def all_states(c):
        return c if per_state else torch.full((len(logits),), c, dtype=torch.float64)

    log_prob = pullback(lambda z: reference.log_prob((z,), actions), g)
    entropy = pullback(lambda z: reference.entropy((z,)), all_states(g_h))
    kl = pullback(lambda z: reference.kl((logits_old,), (z,)), all_states(g_h))
    torch.testing.assert_close(heads.categorical_log_prob_vjp(p, actions, g), log_prob)
    torch.testing.assert_close(heads.categorical_entropy_vjp(lsm, p, g_h), entropy)
    torch.testing.assert_close(heads.categorical_kl_vjp(p, p_old, g_h), kl)


def test_gaussian_values_match_torch_distributions():
    mean, log_std, actions = _gaussian()
    mean_old, log_std_old, _ = _gaussian(seed=1)
    z, z_old = (mean, log_std), (mean_old, log_std_old)
    u = (actions - mean) / log_std.exp()
    torch.testing.assert_close(heads.gaussian_log_prob(u, log_std), reference.log_prob(z, actions))
    torch.testing.assert_close(
        heads.gaussian_entropy(log_std.expand_as(mean)), reference.entropy(z)
    )
    torch.testing.assert_close(heads.gaussian_kl(*z_old, *z), reference.kl(z_old, z))
    torch.testing.assert_close(heads.log_prob(z, actions), reference.log_prob(z, actions))
    torch.testing.assert_close(heads.kl(z_old, z), reference.kl(z_old, z))


def test_gaussian_gradients_match_autograd():
    mean, log_std, actions = _gaussian()
    mean_old, log_std_old, _ = _gaussian(seed=1)
    g = torch.randn(len(mean), dtype=torch.float64)
    u, std = (actions - mean) / log_std.exp(), log_std.exp()
    _, pullback = torch.func.vjp(lambda m, s: reference.log_prob((m, s), actions), mean, log_std)
    for ours, expected in zip(heads.gaussian_log_prob_vjp(u, std, g), pullback(g)):
        torch.testing.assert_close(ours, expected)
    _, pullback = torch.func.vjp(
        lambda m, s: reference.kl((mean_old, log_std_old), (m, s)), mean, log_std
    )
    ours = heads.gaussian_kl_vjp(mean_old, log_std_old, mean, log_std, 0.7)
    for ours_part, expected in zip(ours, pullback(torch.full_like(g, 0.7))):
        torch.testing.assert_close(ours_part, expected)
    # ∂H/∂μ = 0 and ∂H/∂log σ = 1 in every state (actor_critic.py adds the constant itself)
    _, pullback = torch.func.vjp(lambda m, s: reference.entropy((m, s)), mean, log_std)
    d_mean, d_log_std = pullback(g)
    assert not d_mean.any()
    torch.testing.assert_close(d_log_std, g.sum().expand_as(log_std))


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_fisher_metric_is_the_autograd_hessian_of_the_mean_kl(kind):
    if kind == "categorical":
        z_old = (_categorical()[0],)
    else:
        mean, log_std, _ = _gaussian()
        z_old = (mean, log_std.expand_as(mean).clone())  # log σ per state, as TRPO's tangent
    hessian = reference.fisher_metric(z_old)
    metric = heads.fisher(z_old)
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        u = tuple(torch.randn(t.shape, generator=g, dtype=torch.float64) for t in z_old)
        ours = torch.cat([t.reshape(-1) for t in metric(u)])
        torch.testing.assert_close(ours, hessian @ torch.cat([t.reshape(-1) for t in u]), **TIGHT)


# -- optimizers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ours, name, options",
    [
        (lambda t: Adam(t, 0.01, 1e-5), "adam", {}),
        (lambda t: RMSprop(t, 0.01, 1e-5, alpha=0.99), "rmsprop", {"alpha": 0.99}),
    ],
    ids=["adam", "rmsprop"],
)
def test_optimizers_match_torch_optim_and_resume_from_their_state_dict(ours, name, options):
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(50, generator=g)
    ref = theta.clone().requires_grad_()
    opt, ref_opt = ours(theta), reference.optimizer(name, [ref], 0.01, 1e-5, **options)
    grads = [torch.randn(50, generator=g) for _ in range(8)]
    for grad in grads[:5]:
        opt.step(grad)
        ref.grad = grad.clone()
        ref_opt.step()
    torch.testing.assert_close(theta, ref.detach())
    state = opt.state_dict()
    assert set(state) == ({"m", "v", "t"} if name == "adam" else {"v"})  # checkpoints' keys
    resumed = ours(theta.clone())
    resumed.load_state_dict(state)
    for grad in grads[5:]:
        opt.step(grad)
        resumed.step(grad)
    assert torch.equal(resumed.params, opt.params)
