// Shared by the live scrubbers: plotly.js from the plotly package (served beside these files, never a CDN),
// an accessible slider, the app's theme for Plotly, and the handshake with Python (ui/scrubber.py).

const PLOTLY_URL = new URL("../cup_explorer.plotly/plotly.min.js", import.meta.url).href;

// Always the plotly package's own plotly.js, never a window.Plotly that Streamlit's bundle (or anything else on the
// page) may have set: the figures were built by that package for its version. The global it sets is put back.
export function loadPlotly() {
  if (!window.__cupPlotly) {
    window.__cupPlotly = new Promise((resolve, reject) => {
      const prior = window.Plotly;
      const script = document.createElement("script");
      script.src = PLOTLY_URL;
      script.async = true;
      script.onload = () => {
        const ours = window.Plotly;
        if (prior !== undefined) window.Plotly = prior;
        if (ours && ours !== prior) resolve(ours);
        else { window.__cupPlotly = null; reject(new Error("plotly.js did not load")); }
      };
      script.onerror = () => {
        window.__cupPlotly = null;
        script.remove();
        reject(new Error("plotly.js could not be fetched"));
      };
      document.head.appendChild(script);
    });
  }
  return window.__cupPlotly;
}

// Today's widgets stay on the page until the component has drawn; hide them meanwhile, show them on failure.
export function hideFallback(className) {
  let style = document.getElementById(`cup-hide-${className}`);
  if (!style) {
    style = document.createElement("style");
    style.id = `cup-hide-${className}`;
    style.textContent = `.${className} { display: none !important; }`;
    document.head.appendChild(style);
  }
  return () => style.remove();
}

// Per mount point: what was drawn last, so a rerun that only moves the selection reuses it.
const drawn = new WeakMap();
export function memory(element) {
  if (!drawn.has(element)) drawn.set(element, {});
  return drawn.get(element);
}

export function theme(element) {
  const css = getComputedStyle(element);
  const read = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  return {
    text: read("--st-text-color", "#31333f"),
    background: read("--st-background-color", "#ffffff"),
    grid: read("--st-border-color-light", "rgba(49,51,63,0.1)"),
    font: read("--st-font", "sans-serif"),
    primary: read("--st-primary-color", "#ff4b4b"),
  };
}

export function themed(layout, colours) {
  const axis = (a) => ({ automargin: true, gridcolor: colours.grid, zerolinecolor: colours.grid, linecolor: colours.grid, ...(a || {}) });
  return {
    ...layout,
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { ...(layout.font || {}), color: colours.text, family: colours.font },
    xaxis: axis(layout.xaxis),
    yaxis: axis(layout.yaxis),
    hoverlabel: { font: { family: colours.font } },
  };
}

export const PLOT_CONFIG = { displaylogo: false, responsive: true };

// Resolves once the browser has painted what is on the page now, so that what is drawn next does not hold back
// that frame; or after 100 ms (a hidden tab draws no frame, and the build must not wait for the tab to be shown).
export function afterPaint() {
  return new Promise((resolve) => {
    requestAnimationFrame(() => setTimeout(resolve, 0));
    setTimeout(resolve, 100);
  });
}

// Draws at most once per animation frame, the latest request winning: pointer events come faster than frames.
export function frameScheduler(draw) {
  let pending = null, frame = 0;
  const schedule = (value) => {
    pending = value;
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; const v = pending; pending = null; draw(v); });
  };
  schedule.cancel = () => { if (frame) cancelAnimationFrame(frame); frame = 0; };
  return schedule;
}

// A slider over a list of values (placed by value, not by index, or at the given `positions` in [0, 1]: a
// log-spaced knob's), role="slider", arrows, Page keys, Home/End; `valueText` is what a screen reader says.
// onInput(index) while it moves, onCommit(index) on release, on a click and after keys settle.
export function createSlider(host, { values, index, label, format, onInput, onCommit, positions = null,
                                     valueText = (v) => `γ = ${format(v)}` }) {
  host.innerHTML = "";
  const wrap = document.createElement("div");
  wrap.className = "cup-slider";
  const title = document.createElement("div");
  title.className = "cup-slider-label";
  title.textContent = label;
  const track = document.createElement("div");
  track.className = "cup-slider-track";
  const fill = document.createElement("div");
  fill.className = "cup-slider-fill";
  const thumb = document.createElement("div");
  thumb.className = "cup-slider-thumb";
  thumb.tabIndex = 0;
  thumb.setAttribute("role", "slider");
  thumb.setAttribute("aria-label", label);
  thumb.setAttribute("aria-valuemin", String(values[0]));
  thumb.setAttribute("aria-valuemax", String(values[values.length - 1]));
  const bubble = document.createElement("div");
  bubble.className = "cup-slider-value";
  thumb.appendChild(bubble);
  const ticks = document.createElement("div");
  ticks.className = "cup-slider-ticks";
  ticks.innerHTML = `<span>${format(values[0])}</span><span>${format(values[values.length - 1])}</span>`;
  track.append(fill, thumb);
  wrap.append(title, track, ticks);
  host.appendChild(wrap);

  const low = values[0], high = values[values.length - 1], span = high - low || 1;
  const fraction = (i) => (values.length < 2 ? 0.5 : positions ? positions[i] : (values[i] - low) / span);
  let current = index, committed = index, keyTimer = 0, dragging = false;

  const show = (i) => {
    const percent = `${(fraction(i) * 100).toFixed(3)}%`;
    thumb.style.left = percent;
    fill.style.width = percent;
    bubble.textContent = format(values[i]);
    thumb.setAttribute("aria-valuenow", String(values[i]));
    thumb.setAttribute("aria-valuetext", valueText(values[i]));
  };
  const nearest = (clientX) => {
    const box = track.getBoundingClientRect();
    const target = Math.min(1, Math.max(0, (clientX - box.left) / (box.width || 1)));
    let best = 0;
    for (let i = 1; i < values.length; i++) if (Math.abs(fraction(i) - target) < Math.abs(fraction(best) - target)) best = i;
    return best;
  };
  const move = (i, now = false) => {
    if (i === current) return;
    current = i;
    show(i);
    onInput(i, { now });
  };
  const commit = () => {
    if (current !== committed) { committed = current; onCommit(current); }
  };

  const down = (event) => {
    if (event.button !== 0) return;
    dragging = true;
    track.setPointerCapture(event.pointerId);
    thumb.focus({ preventScroll: true });
    move(nearest(event.clientX));
    event.preventDefault();
  };
  const drag = (event) => { if (dragging) move(nearest(event.clientX)); };
  const up = (event) => {
    if (!dragging) return;
    dragging = false;
    if (track.hasPointerCapture(event.pointerId)) track.releasePointerCapture(event.pointerId);
    commit();
  };
  track.addEventListener("pointerdown", down);
  track.addEventListener("pointermove", drag);
  track.addEventListener("pointerup", up);
  track.addEventListener("pointercancel", up);
  thumb.addEventListener("keydown", (event) => {
    const last = values.length - 1;
    const page = Math.max(1, Math.round(values.length / 10));
    const steps = { ArrowLeft: -1, ArrowDown: -1, ArrowRight: 1, ArrowUp: 1, PageDown: -page, PageUp: page };
    let next = null;
    if (event.key in steps) next = Math.min(last, Math.max(0, current + steps[event.key]));
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = last;
    if (next === null) return;
    event.preventDefault();
    move(next, true);  // a key press is drawn at once, not at the next frame
    clearTimeout(keyTimer);
    keyTimer = setTimeout(commit, 350); // a burst of key presses reruns the page once
  });
  show(current);
  return {
    set(i, { silent = false } = {}) { if (silent) { current = i; committed = i; show(i); } else { move(i); commit(); } },
    get index() { return current; },
    flush() { clearTimeout(keyTimer); commit(); },
  };
}

// The metric cards (ui/scrub_payload.card_texts): empty boxes once, then filled at every move. `help` (one per
// card) is used where the cards do not carry their own.
export function cardsHtml(count) {
  return Array.from({ length: count }, () =>
    `<div class="cup-card"><div class="cup-card-label"></div><div class="cup-card-value"></div>` +
    `<div class="cup-card-delta"></div><div class="cup-card-caption"></div></div>`).join("");
}

export function fillCards(host, cards, help = []) {
  host.querySelectorAll(".cup-card").forEach((node, i) => {
    const card = cards[i];
    node.title = card.help ?? help[i] ?? "";
    node.children[0].textContent = card.label;
    node.children[1].textContent = card.value;
    const delta = node.children[2];
    delta.textContent = card.delta ? `${card.delta.startsWith("-") ? "↓" : card.delta.startsWith("+") ? "↑" : ""} ${card.delta}` : "";
    delta.className = `cup-card-delta tone-${card.tone}`;
    node.children[3].textContent = card.caption;
  });
}

// Moves the one-point ring trace `traceIndex` of a drawn scatter plot to `point` ({x, y}) by its SVG alone (a
// restyle redraws the whole plot, 50-100 ms on a slow machine); false where there is nothing to move (no
// point drawn yet, or no position), so the caller restyles instead. The trace is found by its index in the
// figure, not its place in the DOM, which changes when the legend hides a trace.
export function moveRing(plot, traceIndex, point) {
  const layer = [...plot.querySelectorAll(".scatterlayer .trace")].find((node) => node.__data__?.[0]?.trace?.index === traceIndex);
  const ring = layer?.querySelector(".point");
  const xa = plot._fullLayout?.xaxis, ya = plot._fullLayout?.yaxis;
  if (!ring || !xa || !ya || point.x === null || point.y === null) return false;
  ring.setAttribute("transform", `translate(${xa.l2p(point.x)},${ya.l2p(point.y)})`);
  return true;
}

// The handshake: tell Python once that the live component drew (it then stops drawing the fallback), or why not.
export function report(component, data, error) {
  if (error) component.setStateValue("status", `failed: ${String(error.message || error).slice(0, 200)}`);
  else if (!data.live) component.setStateValue("status", "ready");
}
