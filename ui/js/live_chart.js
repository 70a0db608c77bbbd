// One chart updated in place (ui/live_chart.py): each render hands it a whole figure.
export default function (component) {
  const { data, parentElement } = component;
  let el = parentElement.querySelector(":scope > div.live-chart");
  if (!el) {
    el = chartElement(data.name);
    parentElement.appendChild(el);
  }
  if (el.version === data.version) return;  // the same figure again: nothing to redraw
  el.version = data.version;
  showFigure(el, data.figure, data.last_x, data.src);
}
