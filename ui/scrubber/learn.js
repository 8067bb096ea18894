// Learn's live scrubber: the decision regions of the original, of CUP at the slider's intensity and of the
// oracle, drawn on canvases from every intensity's regions (sent once, run-length coded); they morph while the
// slider moves, and the pivot figure (pivot.js) hears every move through a page event.
import { createSlider, frameScheduler, hideFallback, memory, report } from "./common.js";

const format = (v) => String(Number(v.toPrecision(6)));

function decode(runs, size) {
  const cells = new Uint8Array(size);
  for (let i = 0, at = 0; i < runs.length; i += 2) { cells.fill(runs[i], at, at + runs[i + 1]); at += runs[i + 1]; }
  return cells;
}

function rgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function panel(title) {
  const box = document.createElement("figure");
  box.className = "cup-region";
  box.innerHTML = `<figcaption class="cup-region-title"></figcaption><canvas width="360" height="360"></canvas>`;
  box.querySelector("figcaption").textContent = title;
  return box;
}

// The samples, drawn once on their own transparent layer: each frame only copies it over the regions.
function samplesLayer(data, side) {
  const layer = document.createElement("canvas");
  layer.width = side; layer.height = side;
  const ctx = layer.getContext("2d");
  const [x0, x1] = data.x_range, [y0, y1] = data.y_range, s = data.samples;
  for (let i = 0; i < s.y.length; i++) {
    const px = ((s.x[i][0] - x0) / (x1 - x0)) * side, py = side - ((s.x[i][1] - y0) / (y1 - y0)) * side;
    const colour = data.point_colours[s.y[i]] || "#333";
    if (s.forget[i]) {  // forget samples are crosses
      ctx.lineWidth = 2.5; ctx.strokeStyle = colour;
      ctx.beginPath(); ctx.moveTo(px - 4, py - 4); ctx.lineTo(px + 4, py + 4); ctx.moveTo(px + 4, py - 4); ctx.lineTo(px - 4, py + 4); ctx.stroke();
    } else {
      ctx.lineWidth = 0.5; ctx.strokeStyle = "#333"; ctx.fillStyle = colour;
      ctx.beginPath(); ctx.arc(px, py, 2.5, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    }
  }
  return layer;
}

// One picture: the region grid (rows run from the bottom) scaled up, then the samples' layer.
function paint(canvas, cells, data, palette, layer) {
  const [rows, columns] = data.shape, ctx = canvas.getContext("2d"), side = canvas.width;
  const image = new ImageData(columns, rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      const [red, green, blue] = palette[cells[r * columns + c]] || [255, 255, 255];
      const at = ((rows - 1 - r) * columns + c) * 4;
      image.data[at] = red; image.data[at + 1] = green; image.data[at + 2] = blue; image.data[at + 3] = 255;
    }
  }
  const tile = paint.tile || (paint.tile = document.createElement("canvas"));
  tile.width = columns; tile.height = rows;
  tile.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tile, 0, 0, side, side);
  ctx.drawImage(layer, 0, 0);
}

function build(root, data, state) {
  const size = data.shape[0] * data.shape[1];
  const palette = data.class_colours.map(rgb);
  const grids = data.points.map((runs) => decode(runs, size));  // 41 × 14,400 bytes: decoded once
  root.innerHTML = `<div class="cup-slot-slider"></div><div class="cup-regions"></div>`;
  const regions = root.querySelector(".cup-regions");
  const original = panel(data.titles.original), live = panel(""), oracle = panel(data.titles.oracle);
  regions.append(original, live, ...(data.references.oracle ? [oracle] : []));
  const layer = samplesLayer(data, original.querySelector("canvas").width);
  paint(original.querySelector("canvas"), decode(data.references.original, size), data, palette, layer);
  if (data.references.oracle) paint(oracle.querySelector("canvas"), decode(data.references.oracle, size), data, palette, layer);
  const heading = live.querySelector("figcaption");
  heading.classList.add("cup-heading");
  const liveCanvas = live.querySelector("canvas");
  let drawnCount = 0;
  const draw = (index) => {
    heading.textContent = `CUP, γ = ${format(data.values[index])}`;
    paint(liveCanvas, grids[index], data, palette, layer);
    root.dataset.value = String(data.values[index]);
    root.dataset.regionsDrawn = String(++drawnCount);
    document.dispatchEvent(new CustomEvent(data.event, { detail: { index, value: data.values[index] } }));
  };
  const schedule = frameScheduler(draw);
  const slider = createSlider(root.querySelector(".cup-slot-slider"), {
    values: data.values, index: data.selected, label: data.label, format,
    onInput: (i, { now = false } = {}) => (now ? (schedule.cancel(), draw(i)) : schedule(i)),
    onCommit: (i) => state.component.setStateValue("value", data.values[i]),
  });
  root.dataset.count = String(data.values.length);
  draw(data.selected);
  return { slider, draw };
}

export default function (component) {
  const { data, parentElement } = component;
  const root = parentElement.querySelector(".cup-learn");
  const state = memory(root);
  state.component = component;
  const showFallback = hideFallback(data.fallback);
  const signature = JSON.stringify([data.shape, data.values, data.points, data.references]);
  if (state.signature === signature && state.view) {
    if (state.view.slider.index !== data.selected) { state.view.slider.set(data.selected, { silent: true }); state.view.draw(data.selected); }
    return () => {};
  }
  try {
    state.view = build(root, data, state);
    state.signature = signature;
    report(component, data);
  } catch (error) {
    root.textContent = "";
    showFallback();
    report(component, data, error);
  }
  return () => {};
}
