// Explore's live scrubber: the frontier with the selected point, the metric cards and the per-class bars,
// redrawn in the browser from every grid value's numbers (sent once); the value goes to Python on release.
import {
  afterPaint, cardsHtml, createSlider, fillCards, frameScheduler, hideFallback, loadPlotly, memory, moveRing, PLOT_CONFIG,
  report, theme, themed,
} from "./common.js";

const format = (v) => String(Number(v.toPrecision(6)));

async function build(root, data, state) {
  const Plotly = await loadPlotly();
  root.innerHTML =
    `<div class="cup-slot-slider"></div>` +
    `<div class="cup-columns"><div class="cup-plot" data-testid="cupFrontier"></div>` +
    `<div class="cup-side"><h3 class="cup-heading" aria-live="polite"></h3><div class="cup-cards">${cardsHtml(6)}</div></div></div>` +
    `<h3 class="cup-subheading">Test accuracy per class</h3><div class="cup-bars"></div>`;
  const colours = theme(root);
  const plot = root.querySelector(".cup-plot"), bars = root.querySelector(".cup-bars");
  const heading = root.querySelector(".cup-heading"), cards = root.querySelector(".cup-cards");
  const frontierLayout = themed({ ...data.frontier.layout, clickmode: "event", uirevision: "keep" }, colours);
  await Plotly.newPlot(plot, data.frontier.data, frontierLayout, PLOT_CONFIG);

  // While the slider moves, the selection's SVG is moved directly (common.js moveRing); at rest, a real restyle
  // brings Plotly's own data (its hover labels) up to date.
  const barIndex = data.bars.data.slice(0, data.bar_trace).filter((t) => t.type === "bar").length;
  const moveBars = (point) => {
    const paths = plot && bars.querySelectorAll(".barlayer .trace")[barIndex]?.querySelectorAll(".point path");
    const ya = bars._fullLayout?.yaxis;
    if (!paths || !ya || paths.length !== point.per_class.length || point.per_class.includes(null)) return false;
    const base = ya.l2p(0);
    paths.forEach((path, k) => {
      const match = /^M([-\d.e]+),[-\d.e]+V[-\d.e]+H([-\d.e]+)/.exec(path.getAttribute("d") || "");
      if (match) path.setAttribute("d", `M${match[1]},${base}V${ya.l2p(point.per_class[k])}H${match[2]}V${base}Z`);
    });
    const label = bars.querySelectorAll(".legend .traces .legendtext")[data.bar_trace];
    if (label) label.textContent = point.bar_label;
    return true;
  };
  let synced = data.selected;
  const sync = (index) => {
    if (index === synced) return;
    synced = index;
    const point = data.points[index];
    Plotly.restyle(plot, { x: [point.x === null ? [] : [point.x]], y: [point.y === null ? [] : [point.y]] },
      [data.selected_trace]);
    if (bars._fullLayout) Plotly.restyle(bars, { y: [point.per_class], name: [point.bar_label] }, [data.bar_trace]);
  };
  const draw = (index) => {
    const point = data.points[index];
    heading.textContent = point.label;
    root.dataset.value = String(point.value);
    root.dataset.count = String(data.values.length);
    fillCards(cards, point.cards);
    const fast = moveRing(plot, data.selected_trace, point) && moveBars(point);
    if (!fast) sync(index);
    else synced = -1;  // Plotly's data is behind the picture until the next sync
  };
  const schedule = frameScheduler(draw);
  const slider = createSlider(root.querySelector(".cup-slot-slider"), {
    values: data.values, index: data.selected, label: data.label, format,
    onInput: (i, { now = false } = {}) => (now ? (schedule.cancel(), draw(i)) : schedule(i)),
    onCommit: (i) => { state.component.setStateValue("value", data.values[i]); setTimeout(() => sync(i), 0); },
  });
  plot.on("plotly_click", (event) => {
    const hit = (event.points || []).find((p) => p.data.name === "points" && p.customdata);
    if (!hit) return;
    const value = Number(hit.customdata[0]);
    const index = data.values.findIndex((v) => Math.abs(v - value) < 1e-9);
    if (index >= 0) slider.set(index);
  });
  draw(data.selected);
  // The frontier, the slider and the cards on screen first: drawing the bars held their frame 60 to 90 ms on a first
  // open. The bars come with the next frame, at the slider's value then.
  await afterPaint();
  await Plotly.newPlot(bars, data.bars.data, themed({ ...data.bars.layout, uirevision: "keep" }, colours), PLOT_CONFIG);
  draw(slider.index);
  return { slider, schedule, draw: (i) => { draw(i); sync(i); } };
}

export default function (component) {
  const { data, parentElement } = component;
  const root = parentElement.querySelector(".cup-explore");
  const state = memory(root);
  state.component = component;
  const showFallback = hideFallback(data.fallback);
  const signature = JSON.stringify([data.label, data.points]);  // the figures differ only in the selection
  if (state.signature === signature && state.view) {
    // The same frontier again (Python reran after a release): only follow the server's selection.
    if (state.view.slider.index !== data.selected) { state.view.slider.set(data.selected, { silent: true }); state.view.draw(data.selected); }
    return () => {};
  }
  state.signature = signature;
  state.view = null;
  build(root, data, state).then((view) => {
    state.view = view;
    report(component, data);
  }).catch((error) => {
    state.signature = null;
    root.textContent = "";
    showFallback();
    report(component, data, error);
  });
  return () => {};
}
