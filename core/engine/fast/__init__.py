"""Fast kernels: the hand-written math behind every trainer's hot path, on flat parameter tensors.

- ``mlp.py``: :class:`~core.engine.fast.mlp.FlatMLP`, an MLP on one flat tensor (forward with
  cached activations, vjp, jvp, a numpy forward for acting);
- ``heads.py``: categorical and diagonal-Gaussian policies in closed form (log-probability,
  entropy, KL, their gradients with respect to the network's output, the Fisher metric);
- ``optim.py``: Adam and RMSprop on one flat tensor.

``reference.py`` writes each of them the readable way (autograd, ``torch.func``,
``torch.distributions``, ``torch.optim``): read it first. ``tests/test_fast_kernels.py`` checks
every kernel against its reference. The trainers compose these kernels: the PPO/A2C loss
(``core/engine/algos/actor_critic.py``), TRPO's Fisher product and critic regression
(``core/engine/algos/trpo.py``), DQN's Q-network (``core/engine/algos/dqn.py``) and the rollout's
numpy actor (``core/engine/rollout_actor.py``).
"""
