// One run on screen (ui/run_panel.py): title, Pause / Resume / Stop, status and progress, and
// the run's charts. It asks the live feed (ui/live_api.py) for news over HTTP instead of having
// Streamlit re-run a script every second: a status poll is a few hundred bytes, and the charts
// come only when they changed, at most about once a second, and are drawn in place.
const POLL_MS = 300;            // status and progress while the run is active
const FIGURES_MS = 900;         // charts at most this often (sooner when a live change lands)
const HIDDEN_POLL_MS = 5000;    // the tab is in the background
const RETRY_MS = 2000;          // the server did not answer (restarting?)
const CONFIRM_WAIT_S = 2;       // a poll after a command waits this long for its confirmation
// While a run trains, these charts are redrawn every third time the charts come (~2.7 s): each
// of them costs the browser 70–170 ms a drawing (several subplots), the time a click waits.
const SLOW_CHARTS = { line_search: 3, diagnostics: 5 };
const INSPECTABLE = ["kl", "line_search"];  // charts whose points open the Update Inspector
const BUTTONS = [
  ["pause", "⏸ Pause"], ["resume", "⏯️ Resume"], ["stop", "⏹ Stop"],
];

function element(tag, className, parent) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (parent) parent.appendChild(el);
  return el;
}

class RunPanel {
  constructor(root) {
    this.root = element("div", "run-panel", root);
    this.title = element("h3", "rp-title", this.root);
    this.controls = element("div", "rp-controls", this.root);
    this.buttons = {};
    for (const [action, label] of BUTTONS) {
      const button = element("button", "rp-button", this.controls);
      button.type = "button";
      button.textContent = label;
      button.dataset.action = action;
      button.addEventListener("click", () => this.command(action));
      this.buttons[action] = button;
    }
    this.message = element("span", "rp-message", this.controls);
    const status = element("div", "rp-status", this.root);
    this.statusText = element("div", "rp-status-text", status);
    const bar = element("div", "rp-bar", status);
    this.barFill = element("div", "rp-bar-fill", bar);
    this.grid = element("div", "rp-charts", this.root);
    this.hint = element("div", "rp-hint", this.root);
    this.hint.textContent = "Click a point of the KL or line-search chart to open that update "
      + "in the Update Inspector.";
    this.charts = {};
    this.timer = null;
    this.state = null;
    this.pending = null;     // a command clicked here and not yet confirmed
    this.pendingSince = 0;   // polls started before the command was sent cannot confirm it
    this.lastFigures = 0;    // when the charts were last fetched
    this.drawnChanges = -1;  // how many live changes (markers) the drawn charts show
    this.drawnUpdates = -1;  // how many updates they show
    this.sawActive = false;
    this.rounds = 0;         // how many times the charts came
    this.missing = false;    // a chart that had to be drawn came without its figure
  }

  configure(data, trigger) {
    if (this.runId !== data.run_id || this.large !== data.large) {
      this.have = null;  // another run, or another size: fetch the charts again
      this.lastFigures = 0;
    }
    this.runId = data.run_id;
    this.large = data.large;
    this.src = data.src;
    this.trigger = trigger;
    this.controls.hidden = !data.controls;
    this.inspect = data.inspect || null;  // the inspector's URL for this run, or null
    this.hint.hidden = !this.inspect;
    this.title.hidden = !data.title;
    this.root.classList.toggle("rp-large", Boolean(data.large));
    this.sawActive = this.sawActive || Boolean(data.active);
  }

  start() {
    this.stopped = false;
    if (this.timer === null) this.schedule(0);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
  }

  schedule(ms) {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => { this.timer = null; this.poll(); }, ms);
  }

  url(path) {
    return new URL(`api/runs/${encodeURIComponent(this.runId)}/${path}`, document.baseURI);
  }

  async poll(wait = 0) {
    const now = performance.now();
    const started = now;
    const figures = this.have === null || now - this.lastFigures >= FIGURES_MS;
    const url = this.url("live");
    url.search = new URLSearchParams({
      figures: figures ? "1" : "0", have: this.have || "", large: this.large ? "1" : "0",
      wait: String(wait), skip: figures ? this.skipped().join(",") : "",
    }).toString();
    let state;
    try {
      const response = await fetch(url, { cache: "no-store" });
      state = await response.json();
    } catch (err) {
      this.showMessage("The server does not answer; trying again…", true);
      this.schedule(RETRY_MS);
      return;
    }
    if (this.stopped) return;
    if (figures) this.lastFigures = now;
    this.show(state, started);
    this.schedule(this.nextPoll(state));
  }

  // The slow charts the next round will not redraw (the server leaves them out).
  skipped() {
    if (this.have === null || this.missing) return [];
    const round = this.rounds + 1;
    return Object.keys(SLOW_CHARTS).filter(
      (name) => this.charts[name] && round % SLOW_CHARTS[name] !== 0);
  }

  nextPoll(state) {
    if (!state.found) return null;
    if ((this.stale && state.status !== "running") || this.missing) {
      this.have = null;  // paused or ended with a chart a round behind: all of them again now
      this.lastFigures = 0;
      return 0;
    }
    const ended = !state.active;
    if (ended && this.state && this.state.version === this.have) return null;  // all drawn
    const first = this.drawnUpdates === 0 && state.updates > 0;
    if (state.figures === null && (ended || first || state.changes !== this.drawnChanges)) {
      this.lastFigures = 0;  // the first update, a live change or the end: their charts now
      return 0;
    }
    if (ended) return null;
    return document.hidden ? HIDDEN_POLL_MS : POLL_MS;
  }

  show(state, started = 0) {
    this.state = state;
    this.root.dataset.status = state.status || "deleted";
    if (!state.found) {
      this.showMessage(state.message, true);
      this.stop();
      return;
    }
    const confirmed = started >= this.pendingSince && !state.shown.endsWith("…");
    if (this.pending && confirmed) this.pending = null;
    const shown = this.pending ? `${this.pending}…` : state.shown;
    this.root.dataset.shown = shown;
    // Only what changed is written: each write costs the browser a layout and a paint.
    if (this.title.textContent !== state.label) this.title.textContent = state.label;
    const line = `${state.icon}\u0000${shown}\u0000${state.progress}`;
    if (this.line !== line) {
      this.line = line;
      this.statusText.replaceChildren(
        `${state.icon} `, Object.assign(document.createElement("strong"), { textContent: shown }),
        ` · ${state.progress}`,
      );
    }
    const width = `${(100 * state.fraction).toFixed(1)}%`;
    if (this.barFill.style.width !== width) this.barFill.style.width = width;
    const busy = this.pending !== null;
    this.buttons.pause.disabled = busy || state.status !== "running";
    this.buttons.resume.disabled = busy || state.status !== "paused";
    this.buttons.stop.disabled = busy || !state.active;
    if (state.figures) this.showFigures(state);
    if (state.active) this.sawActive = true;
    else if (this.sawActive && this.trigger) {
      this.sawActive = false;
      this.trigger("ended", state.status);  // the page redraws around the finished run
    }
  }

  showFigures(state) {
    // Every chart is drawn when a live change, the first update or the end came with it.
    const all = state.status !== "running" || state.changes !== this.drawnChanges
      || this.drawnUpdates <= 0;
    this.rounds += 1;
    this.stale = false;
    this.missing = false;
    this.have = state.version;
    this.drawnChanges = state.changes;
    this.drawnUpdates = state.updates;
    const names = Object.keys(state.figures);
    for (const name of Object.keys(this.charts)) {
      if (!names.includes(name)) { this.charts[name].remove(); delete this.charts[name]; }
    }
    for (const name of names) {
      let el = this.charts[name];
      if (!el) {
        el = chartElement(name);
        this.charts[name] = el;
        if (INSPECTABLE.includes(name)) el.onDrawn = () => this.linkToInspector(el);
      }
      this.grid.appendChild(el);  // keeps the order; an element already there only moves
      const every = SLOW_CHARTS[name] || 1;
      const figure = state.figures[name];
      const due = all || el.dataset.draws === "0" || this.rounds % every === 0;
      if (!due || figure === null) {
        this.stale = true;  // drawn on a later round, or at once if the run stops training
        if (due) this.missing = true;  // left out, but a live change needs it: fetch all now
        continue;
      }
      el.style.minHeight = `${figure.layout.height || 360}px`;
      showFigure(el, figure, state.last_x, this.src);
    }
    if (this.missing) this.drawnChanges = -1;  // so the refetch draws every chart
  }

  // A click on a point of the KL or line-search chart opens that update in the inspector (the
  // traces carry the update number as customdata: ui/charts/traces.py).
  linkToInspector(el) {
    if (el.linked || !el.on) return;
    el.linked = true;
    el.on("plotly_click", (event) => {
      const update = event.points && event.points.length ? event.points[0].customdata : null;
      if (!this.inspect || typeof update !== "number") return;
      const url = new URL(this.inspect, document.baseURI);
      url.searchParams.set("update", String(update));
      window.location.assign(url);
    });
  }

  showMessage(text, error) {
    this.message.textContent = text || "";
    this.message.classList.toggle("rp-error", Boolean(error));
  }

  async command(action) {
    const labels = { pause: "pausing", resume: "resuming", stop: "stopping" };
    this.pending = labels[action];
    this.pendingSince = Infinity;
    this.showMessage("");
    if (this.state) this.show({ ...this.state, figures: null });
    let answer;
    try {
      const response = await fetch(this.url(action), {
        method: "POST", headers: { "X-Playground-Command": "1" },
      });
      answer = await response.json();
    } catch (err) {
      answer = { ok: false, message: `Could not ${action}: the server does not answer.` };
    }
    this.pendingSince = performance.now();
    if (!answer.ok) {
      this.pending = null;
      this.showMessage(answer.message, true);
    }
    clearTimeout(this.timer);
    this.timer = null;
    this.poll(answer.ok ? CONFIRM_WAIT_S : 0);
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let panel = parentElement.runPanel;
  if (!panel) {
    panel = new RunPanel(parentElement);
    parentElement.runPanel = panel;
  }
  panel.configure(data, setTriggerValue);
  panel.start();
  return () => panel.stop();
}
