"""Home: what the playground is, a short tour, and what it supports."""

import pandas as pd
import streamlit as st

from core.config import ALGORITHMS
from core.envs import SUPPORTED_ENVS

ALGO_BLURBS = {
    "trpo": "Trust Region Policy Optimization: natural-gradient step by conjugate gradient, "
    "scaled to the KL bound δ, then a backtracking line search on the exact KL.",
    "npg": "Natural Policy Gradient: TRPO's step without the line search.",
    "ppo": "Proximal Policy Optimization with the clipped objective.",
    "ppo-kl": "PPO with the adaptive KL penalty (β halves or doubles around d_targ).",
    "a2c": "Advantage actor-critic with GAE: one plain gradient step per rollout.",
    "dqn": "Deep Q-Network with Double, Dueling and prioritized-replay options.",
}

st.title("Trust Region Playground")
st.markdown(
    "Watch policy optimization happen. Tune δ (the KL bound), λ (GAE), γ and the other knobs, "
    "train **TRPO, NPG, PPO, A2C and DQN** on classic-control tasks, and see each update: the "
    "exact KL against δ, whether the line search accepted the step, how far it backtracked."
)

st.subheader("A two-minute tour")
cols = st.columns(3)
tour = [
    (
        "pages/train.py",
        "Train",
        "Pick an environment and an algorithm, set the sliders, press "
        "Start. Curves update live; change δ or λ while it runs and see the marker.",
    ),
    (
        "pages/compare.py",
        "Compare",
        "TRPO vs PPO vs DQN (or δ = 0.001 vs 0.05) over several "
        "seeds on the same budget: mean ± band, steps to a threshold, speed.",
    ),
    (
        "pages/runs.py",
        "Runs",
        "Every run ever made, from the app or the CLI: open, rename, "
        "export CSV / TensorBoard, resume, and watch the trained agent play.",
    ),
    (
        "pages/trust_region_lab.py",
        "Trust Region Lab",
        "A 2-parameter policy: the KL ball, the "
        "Fisher ellipse, vanilla vs natural gradient, CG iterates and every line-search trial.",
    ),
    (
        "pages/gae_lab.py",
        "GAE Lab",
        "Exact bias and variance of GAE against λ and γ on a "
        "solvable MDP, and the same sweep on real training runs.",
    ),
]
for i, (path, title, text) in enumerate(tour):
    with cols[i % 3].container(border=True):
        st.page_link(path, label=title)
        st.caption(text)

left, right = st.columns(2)
with left:
    st.subheader("Algorithms")
    st.dataframe(
        pd.DataFrame(
            {"algorithm": list(ALGORITHMS), "what it does": [ALGO_BLURBS[a] for a in ALGORITHMS]}
        ),
        hide_index=True,
        width="stretch",
    )
with right:
    st.subheader("Environments")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "environment": e.env_id,
                    "actions": "discrete" if e.discrete else "continuous",
                    "solved at": e.solved_return,
                    "task": e.blurb,
                }
                for e in SUPPORTED_ENVS.values()
            ]
        ),
        hide_index=True,
        width="stretch",
    )
