// Compare's live scrubber: every method's fronts with a ring on the selected point and that point's metric cards,
// redrawn in the browser while the slider moves along one method's knob values (sent once per view); the method
// and value go to Python on release, and a click on another method's point switches the slider to that method.
import {
  cardsHtml, createSlider, fillCards, frameScheduler, hideFallback, loadPlotly, memory, moveRing, PLOT_CONFIG, report, theme,
  themed,
} from "./common.js";

async function build(root, data, state) {
  const Plotly = await loadPlotly();
  root.innerHTML =
    `<div class="cup-slot-slider"></div>` +
    `<div class="cup-columns"><div class="cup-plot" data-testid="cupFronts"></div>` +
    `<div class="cup-side"><h3 class="cup-heading" aria-live="polite"></h3>` +
    `<div class="cup-cards">${cardsHtml(data.card_help.length)}</div></div></div>`;
  const colours = theme(root);
  const plot = root.querySelector(".cup-plot"), heading = root.querySelector(".cup-heading");
  const cards = root.querySelector(".cup-cards"), slot = root.querySelector(".cup-slot-slider");
  const ring = data.ring_trace;
  let method = data.method;  // whose knob the slider moves
  let home = { method: data.method, index: data.selected, heading: data.heading };  // the server's selection
  const pointOf = (name, index) => data.methods[name].points[index];
  const start = pointOf(method, data.selected);
  const traces = data.figure.data.map((trace, i) => (i !== ring ? trace : {
    ...trace, x: start.x === null ? [] : [start.x], y: start.y === null ? [] : [start.y],
    marker: { ...trace.marker, line: { ...trace.marker.line, color: colours.text } },  // visible on either theme
  }));
  const layout = themed({ ...data.figure.layout, clickmode: "event", uirevision: "keep" }, colours);
  layout.legend = { ...(data.figure.layout.legend || {}), font: { color: colours.text } };
  await Plotly.newPlot(plot, traces, layout, PLOT_CONFIG);

  // While the slider moves, the ring's SVG is moved directly (common.js moveRing); at rest a restyle brings
  // Plotly's own data up to date.
  let synced = `${method}:${data.selected}`;
  const sync = (index) => {
    if (synced === `${method}:${index}`) return;
    synced = `${method}:${index}`;
    const point = pointOf(method, index);
    Plotly.restyle(plot, { x: [point.x === null ? [] : [point.x]], y: [point.y === null ? [] : [point.y]] }, [ring]);
  };
  const draw = (index) => {
    const point = pointOf(method, index);
    const prefix = method === home.method && index === home.index ? home.heading : "Selected";
    heading.textContent = `${prefix}: ${point.label}`;
    root.dataset.method = method;
    root.dataset.value = String(point.value);
    root.dataset.count = String(data.methods[method].values.length);
    fillCards(cards, point.cards, data.card_help);
    if (moveRing(plot, ring, point)) synced = null;  // Plotly's data is behind the picture until the next sync
    else sync(index);
  };
  const schedule = frameScheduler(draw);
  const commit = (index) => {
    state.component.setStateValue("value", [method, data.methods[method].values[index], Date.now()]);
    setTimeout(() => sync(index), 0);
  };
  let slider = null;
  const useMethod = (name, index) => {
    method = name;
    const entry = data.methods[name];
    const text = new Map(entry.points.map((p) => [p.value, p.text]));
    const format = (v) => text.get(v) ?? String(v);
    slider = createSlider(slot, {
      values: entry.values, positions: entry.positions, index, label: `${entry.label}: ${entry.knob}`, format,
      valueText: (v) => `${entry.knob} = ${format(v)}`,
      onInput: (i, { now = false } = {}) => (now ? (schedule.cancel(), draw(i)) : schedule(i)),
      onCommit: commit,
    });
  };
  useMethod(method, data.selected);

  plot.on("plotly_click", (event) => {
    const hit = (event.points || []).find((p) => Array.isArray(p.customdata) && p.customdata[0] in data.methods);
    if (!hit) return;
    const name = hit.customdata[0], value = Number(hit.customdata[2]);
    const index = data.methods[name].values.findIndex((v) => Math.abs(v - value) <= 1e-9 * Math.max(1, Math.abs(v)));
    if (index < 0) return;
    if (name === method) { slider.set(index); return; }
    schedule.cancel();
    useMethod(name, index);  // another method's point: the slider now moves along its knob
    draw(index);
    commit(index);
  });
  draw(data.selected);
  return {
    follow(next) {  // a rerun with the same points: follow the server's selection and method
      home = { method: next.method, index: next.selected, heading: next.heading };
      schedule.cancel();
      if (next.method !== method) useMethod(next.method, next.selected);
      else slider.set(next.selected, { silent: true });
      draw(next.selected);
      sync(next.selected);
    },
  };
}

export default function (component) {
  const { data, parentElement } = component;
  const root = parentElement.querySelector(".cup-compare");
  const state = memory(root);
  state.component = component;
  const showFallback = hideFallback(data.fallback);
  if (state.signature === data.signature && state.view) {
    state.view.follow(data);  // Python reran after a release, a click or a picked method: the same points
    return () => {};
  }
  state.signature = data.signature;
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
