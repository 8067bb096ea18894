// Learn's pivot figure, live: CUP's direction for this step's two gradients at every grid intensity arrives
// once, and the bold arrow turns (with ψ = γ·Θ) as Learn's scrubber moves, heard through a page event.
import { hideFallback, loadPlotly, memory, PLOT_CONFIG, report, theme, themed } from "./common.js";

const format = (v) => String(Number(v.toPrecision(6)));

async function build(root, data) {
  const Plotly = await loadPlotly();
  root.innerHTML =
    `<div class="cup-columns"><div class="cup-plot cup-pivot-plot"></div><div class="cup-side cup-metrics">` +
    `<div class="cup-card"><div class="cup-card-label">angle between the gradients φ</div><div class="cup-card-value cup-phi"></div></div>` +
    `<div class="cup-card"><div class="cup-card-label">dual cone width Θ = π − φ</div><div class="cup-card-value cup-theta"></div></div>` +
    `<div class="cup-card"><div class="cup-card-label">pivot ψ = γ·Θ</div><div class="cup-card-value cup-psi"></div></div>` +
    `<div class="cup-card-caption cup-pivot-note"></div></div></div>`;
  const plot = root.querySelector(".cup-pivot-plot");
  root.querySelector(".cup-phi").textContent = `${data.phi.toFixed(1)}°`;
  root.querySelector(".cup-theta").textContent = `${data.theta.toFixed(1)}°`;
  root.querySelector(".cup-theta").parentElement.title = data.help.theta;
  root.querySelector(".cup-psi").parentElement.title = data.help.psi;
  await Plotly.newPlot(plot, data.figure.data, themed(data.figure.layout, theme(root)), PLOT_CONFIG);
  const psi = root.querySelector(".cup-psi"), note = root.querySelector(".cup-pivot-note");
  const draw = (index) => {
    const [x, y] = data.directions[index], value = data.values[index];
    psi.textContent = `${(value * data.theta).toFixed(1)}°`;
    note.textContent = Math.abs(value - data.run_value) < 1e-9 ? "" :
      `The arrow shows CUP's direction at γ = ${format(value)} for this step's gradients (of the γ = ` +
      `${format(data.run_value)} run); release the slider to see the γ = ${format(value)} run's own step.`;
    root.dataset.value = String(value);
    const trace = plot.querySelectorAll(".scatterlayer .trace")[data.bold_trace];
    const xa = plot._fullLayout?.xaxis, ya = plot._fullLayout?.yaxis;
    const line = trace?.querySelector("path.js-line"), points = trace?.querySelectorAll(".point");
    if (xa && line && points?.length === 2) {  // move the SVG: a restyle would redraw all 47 traces
      line.setAttribute("d", `M${xa.l2p(0)},${ya.l2p(0)}L${xa.l2p(x)},${ya.l2p(y)}`);
      points[1].setAttribute("transform", `translate(${xa.l2p(x)},${ya.l2p(y)})`);
      const label = [...plot.querySelectorAll(".legend .traces .legendtext")].pop();  // the bold arrow is drawn last
      if (label) label.textContent = `d at γ = ${format(value)}`;
    } else {
      Plotly.restyle(plot, { x: [[0, x]], y: [[0, y]], name: [`d at γ = ${format(value)}`] }, [data.bold_trace]);
    }
  };
  draw(data.selected);
  return { draw };
}

export default function (component) {
  const { data, parentElement } = component;
  const root = parentElement.querySelector(".cup-pivot");
  const state = memory(root);
  const showFallback = hideFallback(data.fallback);
  const listen = (event) => state.view && state.view.draw(event.detail.index);
  document.addEventListener(data.event, listen);
  build(root, data).then((view) => { state.view = view; report(component, data); })
    .catch((error) => { root.textContent = ""; showFallback(); report(component, data, error); });
  return () => document.removeEventListener(data.event, listen);
}
