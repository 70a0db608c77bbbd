"""The Trust Region Lab's explanations (Markdown with LaTeX), beside its charts."""

DERIVATION = r"""
**What TRPO solves.** $\max_\theta L_{\theta_{old}}(\theta)$ subject to
$\bar D_{KL}(\theta_{old}, \theta) \le \delta$.

**Its local model.** With $d = \theta - \theta_{old}$: $L \approx g^\top d$ and
$\bar D_{KL} \approx \tfrac12 d^\top F d$, $F$ the Fisher matrix (the Hessian of the KL at
$\theta_{old}$). The maximiser of the model is
$$s = \sqrt{\frac{2\delta}{g^\top F^{-1} g}}\; F^{-1} g,$$
the **purple** arrow, which ends on the **pink** ellipse $\tfrac12 d^\top F d = \delta$.
The **orange** arrow is the plain gradient scaled to the same ellipse: steepest in Euclidean
distance, so it depends on how θ is parametrised (try the scaling k).

**Conjugate gradient** finds $x \approx (F + cI)^{-1} g$ from products $Fv$ only. It starts
from $x_0 = 0$, so $x_1 \parallel g$; in 2-D, $x_2 = F^{-1}g$ exactly (for $c = 0$).

**Why the line search can reject.** $\tfrac12 d^\top F d$ is only the second-order Taylor
expansion of the KL; the exact KL (**black** curve) differs at third order, so the full step can
land outside the ball. TRPO tries $\theta_{old} + \alpha^j s$, $j = 0, 1, \dots$ and keeps the
first trial with exact $\bar D_{KL} \le \delta$ **and** $\Delta L > 0$ (**green**); failures are
**red**.
"""

PATHS_TEXT = r"""
**Three update rules from the same θ₀.**
- **Vanilla gradient**: $\theta \leftarrow \theta + \eta\, g$, with η fixed or chosen so that
  $\tfrac12 \Delta\theta^\top F \Delta\theta = \delta$.
- **NPG**: $\theta \leftarrow \theta + s$ with the natural step $s$ above, no line search.
- **TRPO**: the same $s$, then the backtracking line search on the exact KL and $\Delta L$.

The natural gradient $F^{-1}g$ divides out how much each parameter changes the policy (in
Kakade's MDP: the visitation $d^\pi(s)$ and the sigmoid's slope), so it does not stall where the
policy is almost deterministic. Without the line search NPG can overshoot: its step is exact only
for the quadratic model.

Where NPG and TRPO coincide (every line search accepted the full step) NPG's wide dashed line
and open diamonds show around TRPO's thin line and dots.
"""

VANILLA_KL_TEXT = r"""
**About "same KL as TRPO".** This vanilla step is g scaled so that
$\tfrac12 \Delta\theta^\top F \Delta\theta = \delta$: the *direction* of the plain gradient with
TRPO's step *length in KL*. Where the policy is nearly deterministic (Kakade's plateau) F is tiny
along g, so a KL of δ along g is an enormous jump in θ (θ₁ ≈ 6000 after a few updates on the
plateau preset); the quadratic model of the KL is wrong that far out and the path leaves every
sensible window. A **fixed learning rate** η shows what the plain gradient really does there: a
slow crawl across the plateau.
"""
