// Shared by the live chart (ui/live_chart.py) and the run panel (ui/run_panel.py): Plotly.js is
// loaded once from the app's static files, and charts are drawn one at a time in place
// (Plotly.react on the same <div>: zoom, pan and legend clicks survive with a constant
// layout.uirevision).
const CONFIG = {
  responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"],
};
let loading = null;

function loadPlotly(src) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => { loading = null; reject(new Error(`cannot load ${src}`)); };
      document.head.appendChild(script);
    });
  }
  return loading;
}

// Charts scrolled out of view wait: drawing them costs the browser CPU that training needs.
const visibility = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    entry.target.visible = entry.isIntersecting;
    if (entry.isIntersecting) draw(entry.target);
  }
});

// A chart's element: while a mouse button is held on it (a zoom being dragged), updates wait
// until it is released.
function chartElement(name) {
  const el = document.createElement("div");
  el.className = "live-chart";
  el.dataset.chart = name;
  el.dataset.draws = "0";
  el.addEventListener("pointerdown", () => { el.held = true; });
  window.addEventListener("pointerup", () => {
    if (el.held) { el.held = false; draw(el); }
  });
  visibility.observe(el);
  return el;
}

// One chart is drawn at a time, and the browser gets a turn between two charts: a refresh with
// four new figures is four short tasks instead of one long one, so a click (Pause, Stop) is
// handled between them instead of after all four.
window.__liveChartDrawing = window.__liveChartDrawing || { queue: [], busy: false };
const drawing = window.__liveChartDrawing;

function draw(el) {
  if (!drawing.queue.includes(el)) drawing.queue.push(el);
  pump();
}

function ready(el) {
  const hidden = el.visible === false && el.dataset.draws !== "0";  // always draw once
  return window.Plotly && !el.held && el.next && !hidden && el.isConnected;
}

function pump() {
  if (drawing.busy) return;
  let el = drawing.queue.shift();
  while (el && !ready(el)) el = drawing.queue.shift();  // held or hidden: their events re-queue
  if (!el) return;
  drawing.busy = true;
  const fig = el.next;
  el.next = null;
  const lastX = el.pendingLastX;
  const t0 = performance.now();
  window.Plotly.react(el, fig.data, fig.layout, CONFIG).then(() => {
    el.dataset.drawMs = (performance.now() - t0).toFixed(1);  // read by benchmarks/bench_live.py
    el.dataset.draws = String(Number(el.dataset.draws) + 1);
    el.dataset.lastX = lastX == null ? "" : String(lastX);
    if (el.onDrawn) el.onDrawn();
  }).catch((err) => console.error("live chart:", err)).finally(() => {
    setTimeout(() => {
      drawing.busy = false;
      if (el.next) drawing.queue.push(el);
      pump();
    }, 0);
  });
}

// Give a chart its next figure (Plotly JSON) and draw it when its turn comes.
function showFigure(el, figure, lastX, src) {
  el.next = figure;
  el.pendingLastX = lastX;
  loadPlotly(src).then(() => draw(el)).catch((err) => {
    el.textContent = `The chart library could not be loaded (${err.message}).`;
  });
}
