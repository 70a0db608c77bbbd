"""Home: what the playground is, a short tour, and what it supports."""

import streamlit as st

from core.config import ALGORITHMS
from core.config.environments import SUPPORTED_ENVS
from core.runtime.store_schema import ACTIVE_STATUSES
from ui.state import ensure_app_navigation, require_manager

ensure_app_navigation()

ALGO_BLURBS = {
    "trpo": "Trust Region Policy Optimization: natural-gradient step by conjugate gradient, "
    "scaled to the KL bound δ, then a backtracking line search on the exact KL.",
    "npg": "Natural Policy Gradient: TRPO's step without the line search.",
    "ppo": "Proximal Policy Optimization with the clipped objective.",
    "ppo-kl": "PPO with the adaptive KL penalty (β halves or doubles around d_targ).",
    "a2c": "Advantage actor-critic with GAE: one plain gradient step per rollout.",
    "dqn": "Deep Q-Network with Double, Dueling and prioritized-replay options.",
}
# One card per page, in the sidebar's order and sections (app.py).
PLAYGROUND_TOUR = [
    (
        "pages/train.py",
        "Train",
        "🏋️",
        "Pick an environment and an algorithm, set the sliders, press Start. Curves update "
        "live; change δ or λ while it runs and see the marker on every chart.",
    ),
    (
        "pages/compare.py",
        "Compare",
        "📊",
        "TRPO vs PPO vs DQN (or δ = 0.001 vs 0.05) over several seeds on the same budget: "
        "mean ± band, steps to a threshold, speed.",
    ),
    (
        "pages/runs.py",
        "Runs",
        "🗂️",
        "Every run ever made, from the app or the CLI: open, rename, export CSV / TensorBoard, "
        "continue, and watch the trained agent play.",
    ),
]
LABS_TOUR = [
    (
        "pages/trust_region_lab.py",
        "Trust Region Lab",
        "🎯",
        "A 2-parameter policy: the KL ball, the Fisher ellipse, vanilla vs natural gradient, CG "
        "iterates and every line-search trial.",
    ),
    (
        "pages/gae_lab.py",
        "GAE Lab",
        "⚖️",
        "Exact bias and variance of GAE against λ and γ on a solvable MDP, and the same sweep on "
        "real training runs.",
    ),
    (
        "pages/inspector.py",
        "Update Inspector",
        "🔬",
        "One real update of a TRPO, NPG or PPO network: its exact KL ball, the Fisher ellipse "
        "and the step it took, in the plane of g and the step.",
    ),
    (
        "pages/deck.py",
        "Lecture deck",
        "🎞️",
        "Saved views as scenes, stepped through with the arrow keys on a projector; one "
        "example deck walks through TRPO in ten scenes.",
    ),
]


def tour_row(cards: list[tuple[str, str, str, str]]) -> None:
    """One row of cards, each a link to its page and a line on what it shows."""
    for col, (path, title, icon, text) in zip(st.columns(len(cards)), cards):
        with col.container(border=True, height="stretch"):
            st.page_link(path, label=f"**{title}**", icon=icon)
            st.caption(text)


st.title("Trust Region Playground")
st.markdown(
    "Watch policy optimization happen. Tune δ (the KL bound), λ (GAE), γ and the other knobs, "
    "train **TRPO, NPG, PPO, A2C and DQN** on classic-control, MuJoCo and Box2D tasks, and see "
    "each update: the "
    "exact KL against δ, whether the line search accepted the step, how far it backtracked."
)

runs = require_manager().store.runs()
active = int(runs["status"].isin(ACTIVE_STATUSES).sum()) if len(runs) else 0
c = st.columns([1, 1, 1, 3])
c[0].metric("Runs stored", len(runs))
c[1].metric("Training now", active)
c[2].metric("Algorithms", len(ALGORITHMS))
with c[3]:
    st.page_link(
        "pages/train.py",
        label="Start here: train TRPO on CartPole →",
        icon="🚀",
        query_params={"algo": "trpo", "env": "CartPole-v1"},
    )
    st.caption(
        "Press ▶ Start with the defaults: the return climbs within a minute, the KL stays under "
        "δ = 0.01, and most line searches accept the full step."
    )

st.subheader("A two-minute tour")
tour_row(PLAYGROUND_TOUR)
tour_row(LABS_TOUR)

st.subheader("Algorithms")
st.markdown(
    "| algorithm | what it does |\n|---|---|\n"
    + "\n".join(f"| **{a}** | {ALGO_BLURBS[a]} |" for a in ALGORITHMS)
)
st.subheader("Environments")
st.markdown(
    "| environment | actions | solved at | task |\n|---|---|---:|---|\n"
    + "\n".join(
        f"| {e.env_id} | {'discrete' if e.discrete else 'continuous'} | "
        f"{e.solved_return:g} | {e.blurb} |"
        for e in SUPPORTED_ENVS.values()
    )
)
st.caption("DQN needs discrete actions; the policy-gradient methods handle both.")
