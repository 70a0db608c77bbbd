"""GAE Lab: the exact bias/variance trade-off of λ (and γ) on a solvable MDP, then on real runs."""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.config import ConfigError
from core.labs import gae_lab as lab
from core.sweep.build import lambda_sweep
from core.sweep.control import stop_sweep
from core.sweep.local import launch_local
from core.sweep.progress import sweep_progress, sweeps
from core.sweep.spec import SweepError
from ui import deck_url, gae_url, widgets
from ui import gae_figures as figs
from ui.state import ensure_app_navigation, require_manager
from ui.tables import data_table
from ui.text import plain

LAMS = np.round(np.linspace(0.0, 1.0, 101), 3)
GRID_LAMS = np.round(np.linspace(0.0, 1.0, 41), 3)
GRID_GAMMAS = np.round(np.linspace(0.80, 1.0, 21), 3)
SWEEP_PREFIX = "gae-"
SWEEP_LAMS = [0.0, 0.5, 0.9, 0.95, 1.0]
MAX_BARS = 20

ensure_app_navigation()
manager = require_manager()
store = manager.store


def url_widget(fn: Any, label: str, name: str, **kw: Any) -> Any:
    """A widget for URL parameter ``name`` whose value survives page changes and starts from
    the URL (``ui.gae_url``)."""
    key, first = gae_url.FIELDS[name].key, gae_url.url_value(st.query_params, name)
    return widgets.kept_widget(fn, label, key, first, **kw)


# ---------------------------------------------------------------------------------------------
# Cached exact computations (milliseconds to a fraction of a second)
# ---------------------------------------------------------------------------------------------


@st.cache_data(max_entries=64, show_spinner=False)
def curve_of(scenario: lab.Scenario) -> pd.DataFrame:
    return lab.lambda_curve(scenario, LAMS)


@st.cache_data(max_entries=64, show_spinner=False)
def grid_of(scenario: lab.Scenario, column: str) -> pd.DataFrame:
    return lab.gamma_lambda_grid(scenario, GRID_GAMMAS, GRID_LAMS, column)


@st.cache_data(max_entries=64, show_spinner=False)
def pairs_of(scenario: lab.Scenario, lam: float) -> pd.DataFrame:
    return lab.pair_table(lab.build_problem(scenario), lam)


def monte_carlo_check(scenario: lab.Scenario, lam: float, n: int) -> pd.DataFrame:
    """Exact moments next to n sampled estimates per (s, a), with the mean's standard error."""
    problem = lab.build_problem(scenario)
    table = lab.pair_table(problem, lam)
    mdp = problem.mdp
    rows = []
    for i, (s, a) in enumerate(zip(*np.nonzero(problem.pairs))):
        x = lab.sample_gae(
            mdp, problem.V_hat, problem.gamma, lam, s, a, n, seed=scenario.seed * 1000 + i
        ).advantages
        se = x.std(ddof=1) / np.sqrt(n)
        rows.append(
            {
                "(s, a)": table["pair"].iloc[i],
                "exact E[Â]": table["mean"].iloc[i],
                "sampled mean": x.mean(),
                "± SE": se,
                "exact sd": table["sd"].iloc[i],
                "sampled sd": x.std(ddof=1),
                "|z|": abs(x.mean() - table["mean"].iloc[i]) / max(se, 1e-12),
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Page: controls
# ---------------------------------------------------------------------------------------------

MDP_NAMES = {"chain": "Slippery chain (7 states)", "grid": "Gridworld 4×4"}


def controls_label() -> str:
    """The controls' expander in presentation mode: the scenario in one line (the values the
    widgets below will show)."""
    query = st.query_params
    value = {n: widgets.kept(f.key, gae_url.url_value(query, n)) for n, f in gae_url.FIELDS.items()}
    return (
        f"⚙️ {MDP_NAMES.get(value['mdp'], value['mdp'])} · critic error {value['err']} "
        f"{float(value['size']):.2f} · γ {float(value['gamma']):.2f} · "
        f"λ {float(value['lam']):.2f} · N {value['n']}"
    )


large = widgets.presentation_on()
st.title("GAE Lab: λ trades bias for variance")
if not large:  # presentation mode: the chart needs the room
    st.markdown(
        "Generalized advantage estimation sums TD errors δₜ = rₜ + γ·V̂(sₜ₊₁) − V̂(sₜ) with "
        "weights (γλ)ᵏ: **Âₜ = Σₖ (γλ)ᵏ δₜ₊ₖ**. On a small MDP the true V, Q and A are solved "
        "exactly, so the bias and variance of Â for an imperfect critic V̂ = V + e are *exact "
        "numbers*, not noisy estimates. Move λ: the centred bias (what biases the policy "
        "gradient) falls and the variance rises."
    )
url_warnings = st.container()
if pending := [n for n, f in gae_url.FIELDS.items() if not widgets.is_kept(f.key)]:
    # The URL gives these widgets their first values now: note what it could not give.
    st.session_state["gae.url_notes"] = gae_url.url_notes(st.query_params, pending)
    st.session_state.pop("gae.url_query", None)

# Presentation mode: the controls fold into one line that names the scenario, above the metrics
# and the main chart (which fills the screen below its top: ``ui.presentation.SCREEN_CHARTS``).
panel = st.expander(controls_label()) if large else st.container(border=True)
with panel:
    c1, c2, c3, c4 = st.columns([1.2, 1.2, 1, 1])
    with c1:
        mdp_name = url_widget(
            st.selectbox,
            "MDP",
            "mdp",
            options=list(lab.MDPS),
            format_func=MDP_NAMES.get,
        )
        st.caption(lab.MDP_HELP[mdp_name])
    with c2:
        err = url_widget(
            st.radio, "Critic error", "err", options=list(lab.ERROR_KINDS), horizontal=True
        )
        size = url_widget(st.slider, "Error size", "size", min_value=0.0, max_value=1.0, step=0.05)
        st.caption(lab.ERROR_HELP[err])
    with c3:
        gamma = url_widget(
            st.slider, "Discount γ", "gamma", min_value=0.8, max_value=1.0, step=0.01
        )
        lam = url_widget(st.slider, "GAE λ", "lam", min_value=0.0, max_value=1.0, step=0.01)
        n_batch = url_widget(st.select_slider, "Batch size N", "n", options=gae_url.BATCHES)
    with c4:
        seed = url_widget(
            st.number_input,
            "Noise seed",
            "seed",
            min_value=0,
            max_value=9999,
            step=1,
            disabled=err != "noise",
        )
        longer = url_widget(
            st.toggle,
            "Score against a longer γ_true",
            "longer",
            help="Keep the estimator's γ but score it against the advantage under γ_true: "
            "γ's own bias.",
        )
        gamma_true = url_widget(
            st.slider,
            "γ_true",
            "gtrue",
            min_value=0.8,
            max_value=1.0,
            step=0.01,
            disabled=not longer,
        )

    o1, o2, o3 = st.columns([1.4, 1, 1])
    mse_column = url_widget(
        o1.radio,
        "MSE uses",
        "mse",
        options=list(gae_url.MSE_CHOICES),
        format_func=gae_url.MSE_CHOICES.get,
        horizontal=True,
        help="Centred: bias minus its π-mean over the state's actions, the part that biases the "
        "policy gradient. Raw: the error of Â as an estimate of A(s, a).",
    )
    log_y = url_widget(o2.toggle, "Log scale", "log")

url_state = gae_url.to_query(
    {
        "mdp": mdp_name,
        "err": err,
        "size": size,
        "seed": seed,
        "gamma": gamma,
        "lam": lam,
        "n": n_batch,
        "mse": mse_column,
        "longer": longer,
        "gtrue": gamma_true,
        "log": log_y,
    }
)
st.query_params.from_dict(deck_url.carried(widgets.with_flag(url_state)))  # ?present=1, ?deck=
if st.session_state.get("gae.url_notes"):  # shown until the lab's state changes
    if st.session_state.setdefault("gae.url_query", url_state) == url_state:
        for note in st.session_state["gae.url_notes"]:
            url_warnings.warning(note, icon="⚠️")
    else:
        st.session_state["gae.url_notes"] = []

scenario = lab.Scenario(
    mdp=mdp_name,
    error=err,
    error_size=float(size),
    seed=int(seed),
    gamma=float(gamma),
    gamma_true=float(gamma_true) if longer else None,
    batch=int(n_batch),
)

# ---------------------------------------------------------------------------------------------
# Page: exact results
# ---------------------------------------------------------------------------------------------

curve = curve_of(scenario)
best = lab.best_lambda(curve, mse_column)
at = curve.iloc[int(np.argmin(np.abs(curve["lam"].to_numpy() - lam)))]
at_best = curve.loc[curve["lam"] == best].iloc[0]

m = st.columns(5)  # a value shrinks to its column (``ui.presentation.BASE_CSS``)
m[0].metric("centred bias² at λ", f"{at['bias2_centred']:.2e}")
m[1].metric("raw bias² at λ", f"{at['bias2']:.2e}")
m[2].metric("variance / N at λ", f"{at['variance_n']:.2e}")
m[3].metric(
    "MSE at λ",
    f"{at[mse_column]:.2e}",
    delta=f"{at[mse_column] / at_best[mse_column] - 1:+.0%} vs best",
    delta_color="inverse",
)
m[4].metric("best λ", f"{best:.2f}", help="The λ with the smallest MSE, for this N.")

left, right = st.columns([2, 1])
with left:
    curves = figs.lambda_curves_figure(
        curve, batch=int(n_batch), lam=float(lam), mse_column=mse_column, log_y=log_y, large=large
    )
    st.plotly_chart(
        figs.for_screen(curves) if large else curves,
        key="gae_chart",  # presentation mode: as tall as the screen below its top
    )
with right, st.container(border=True):
    st.markdown(
        f"""
**λ = 0: the one-step TD error** Â = δₜ = rₜ + γV̂(sₜ₊₁) − V̂(sₜ). One random transition, so
**low variance**, but it trusts V̂(sₜ₊₁): the critic's error **biases** it.

**λ = 1: the Monte-Carlo return minus V̂** Â = Σₖ γᵏ rₜ₊ₖ − V̂(sₜ). The critic only enters as
the baseline V̂(sₜ): the raw bias is −e(s), the same for every action of a state, and
E[∇log π(a|s)] = 0 makes it vanish from the policy gradient (**centred bias = 0**). The whole
random future enters, so the **variance is high**.

**In between** (κ = γλ) the centred bias falls and the variance rises as λ grows. Averaging N
samples divides the variance by N but not the bias, so a larger batch affords a larger λ. Here
the best λ is **{best:.2f}**.
"""
    )

left, right = st.columns(2)
with left:
    grid = grid_of(scenario, mse_column)
    st.plotly_chart(
        figs.gamma_lambda_heatmap(
            grid,
            gamma=float(gamma),
            lam=float(lam),
            gamma_true=scenario.target_gamma,
            mse_column=mse_column,
            large=large,
        ),
    )
    st.caption(
        "Each row uses the estimator's γ (its critic V̂ = V_γ + e) and is scored against the true "
        "advantage at γ_true: a smaller γ cuts variance but adds its own bias."
    )
with right:
    table = pairs_of(scenario, float(lam))
    shown = table.nlargest(MAX_BARS, "weight").sort_index()
    st.plotly_chart(figs.pair_bars_figure(shown, lam=float(lam), large=large))
    note = f" The {MAX_BARS} most visited of {len(table)} pairs." if len(table) > MAX_BARS else ""
    st.caption(
        "Grey: the true advantage. Blue: the estimator's mean with ± one standard deviation of a "
        "single sample." + note
    )

left, right = st.columns([1, 1])
with left:
    problem = lab.build_problem(scenario)
    live = ~problem.mdp.terminal
    V_est = lab.solve_values(problem.mdp, problem.gamma).V
    st.plotly_chart(
        figs.critic_figure(
            [lbl for lbl, ok in zip(problem.mdp.state_labels, live) if ok],
            V_est[live],
            problem.V_hat[live],
            large=large,
        ),
    )
with right:
    st.markdown("**Check the exact numbers by sampling**")
    st.caption(
        "Simulate the same estimator (untruncated, until termination) from every (s, a) and "
        "compare with the exact mean and standard deviation. |z| is the gap in standard errors."
    )
    n_mc = st.select_slider("Samples per (s, a)", [500, 1000, 2000, 5000, 10000], value=2000)
    if st.button("Run the Monte-Carlo check", key="gae.mc"):
        with st.spinner("sampling…"):
            st.session_state["gae.mc_result"] = (
                (scenario, float(lam), n_mc),
                monte_carlo_check(scenario, float(lam), n_mc),
            )
    result = st.session_state.get("gae.mc_result")
    if result is not None and result[0] == (scenario, float(lam), n_mc):
        data_table(result[1], dict.fromkeys(result[1].select_dtypes("float"), "%.3f"), height=280)

# ---------------------------------------------------------------------------------------------
# Page: empirical λ sweep on CartPole (runs from the store)
# ---------------------------------------------------------------------------------------------

st.divider()
st.header("Empirical: the same λ sweep on CartPole")
st.markdown(
    "Real training runs with a learned critic: the exact picture above predicts that λ near 0 "
    "learns from a biased signal and λ = 1 from a noisy one. Launch a small sweep (runs go through "
    "the run manager and appear on the Runs page), then read final return and learning speed "
    "against λ."
)


def launch_sweep(algo: str, budget: int, n_seeds: int, lams: list[float]) -> None:
    """Start λ × seeds runs of ``algo`` on CartPole as one sweep tagged ``gae-…``."""
    try:
        spec = lambda_sweep(algo, "CartPole-v1", budget, n_seeds, lams)
        sweep_id = launch_local(manager, spec, sweep_id=SWEEP_PREFIX + uuid.uuid4().hex[:10])
    except (ConfigError, SweepError, RuntimeError) as exc:
        st.session_state["gae.sweep_error"] = str(exc)
        return
    st.session_state.pop("gae.sweep_error", None)
    widgets.set_kept("gae.sweep", sweep_id)


with st.container(border=True):
    s1, s2, s3, s4, s5 = st.columns([1, 1, 1, 2, 1])
    algo = widgets.kept_widget(s1.selectbox, "Algorithm", "gae.algo", "ppo", ["ppo", "trpo"])
    budget = widgets.kept_widget(
        s2.select_slider,
        "Budget per run (env steps)",
        "gae.budget",
        30_000,
        [10_000, 20_000, 30_000, 50_000, 100_000],
    )
    n_seeds = widgets.kept_widget(s3.number_input, "Seeds", "gae.seeds", 2, 1, 5)
    sweep_lams = widgets.kept_widget(
        s4.multiselect,
        "λ values",
        "gae.sweep_lams",
        SWEEP_LAMS,
        [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 1.0],
    )
    s5.button(
        f"Launch {len(sweep_lams) * int(n_seeds)} runs",
        type="primary",
        disabled=len(sweep_lams) < 2,
        on_click=launch_sweep,
        args=(algo, int(budget), int(n_seeds), list(sweep_lams)),
    )
    if "gae.sweep_error" in st.session_state:
        st.error(plain(st.session_state["gae.sweep_error"]))


def lambda_sweeps() -> pd.DataFrame:
    """Sweeps in the store that vary λ: those launched here (``gae-…``) and others over λ."""
    table = sweeps(store)
    if table.empty:
        return table
    runs = store.runs()
    varied = {
        sid
        for sid, group in runs[runs["sweep_id"].notna()].groupby("sweep_id")
        if group["config"].map(lambda c: json.loads(c)["gae_lambda"]).nunique() > 1
    }
    mask = table["sweep_id"].str.startswith(SWEEP_PREFIX) | table["sweep_id"].isin(varied)
    return table[mask].sort_values("created_at", ascending=False).reset_index(drop=True)


available = lambda_sweeps()
if available.empty:
    st.info("No λ sweep yet. Launch one above: 5 λ values × 2 seeds take a few minutes.")
else:
    ids = list(available["sweep_id"])
    first = st.query_params.get("sweep", ids[0])
    if widgets.kept("gae.sweep", first) not in ids:
        widgets.set_kept("gae.sweep", ids[0])
    labels = {
        r.sweep_id: f"{r.sweep_id} · {r.algos} · {r.trials} runs · {r.status}"
        for r in available.itertuples()
    }
    pick, thresh = st.columns([3, 1])
    sweep_id = widgets.kept_widget(
        pick.selectbox, "Sweep", "gae.sweep", first, ids, format_func=labels.get
    )
    st.query_params["sweep"] = sweep_id
    threshold = thresh.slider("Return threshold (steps to threshold)", 100, 500, 400, step=25)

    def sweep_panel() -> None:
        progress = sweep_progress(store, sweep_id)
        if active and progress.is_done:
            st.rerun()  # the whole page: stops this fragment's polling
        runs = progress.runs
        episodes = store.episodes(list(runs["run_id"]))
        summary = figs.sweep_table(runs, episodes, threshold=float(threshold))
        top = st.columns([3, 1])
        top[0].progress(
            progress.fraction,
            text=f"{progress.done}/{progress.total} runs done · {progress.status}",
        )
        if not progress.is_done:
            top[1].button(
                "Stop sweep",
                key="gae.stop",
                on_click=stop_sweep,
                args=(manager, sweep_id),
                width="stretch",
            )
        a, b = st.columns(2)
        a.plotly_chart(
            figs.sweep_scatter_figure(
                summary,
                "final_return",
                title="Final return (mean of last 10 episodes)",
                y_title="return",
                large=large,
            ),
            width="stretch",
        )
        b.plotly_chart(
            figs.sweep_scatter_figure(
                summary,
                "auc",
                title="Learning speed: mean return over the budget (AUC / T)",
                y_title="return averaged over training",
                large=large,
            ),
            width="stretch",
        )
        a, b = st.columns([3, 2])
        a.plotly_chart(figs.sweep_curves_figure(summary, episodes, large=large))
        per_lam = (
            summary.groupby("lam")
            .agg(
                runs=("run_id", "size"),
                final_return=("final_return", "mean"),
                auc=("auc", "mean"),
                reached=("steps_to_threshold", "count"),
                steps_to_threshold=("steps_to_threshold", "mean"),
            )
            .reset_index()
        )
        b.markdown("**Mean over seeds** (steps to threshold: over the runs that reached it)")
        b.dataframe(
            per_lam,
            hide_index=True,
            column_config={
                "lam": st.column_config.NumberColumn("λ", format="%.2f"),
                "runs": st.column_config.NumberColumn("runs"),
                "final_return": st.column_config.NumberColumn("final return", format="%.1f"),
                "auc": st.column_config.NumberColumn("AUC / T", format="%.1f"),
                "reached": st.column_config.NumberColumn(f"reached {threshold}"),
                "steps_to_threshold": st.column_config.NumberColumn("steps to it", format="%d"),
            },
        )

    active = not sweep_progress(store, sweep_id).is_done
    st.fragment(run_every=2.0 if active else None)(sweep_panel)()
