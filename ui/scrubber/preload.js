// Fetches and runs plotly.js while the server is busy (loading the library, computing models), so that the live
// scrubber drawn afterwards starts drawing at once; the scrubbers' own modules too (fetching one and then its
// common.js took the first open 0.2 s after the models were computed). It draws nothing and reports nothing: a
// report would rerun the script and interrupt the computation; the scrubber itself reports whether it could draw.
import { loadPlotly } from "./common.js";

export default function (component) {
  const modules = component.data.modules || [];
  const warm = () => modules.forEach((url) => import(new URL(url, import.meta.url).href).catch(() => {}));
  // After plotly.js, which every scrubber needs first. A module imported here is the one Streamlit imports later (the
  // same URL); the scrubber that needs plotly.js tries again, and says why it failed.
  loadPlotly().then(warm, warm);
  return () => {};
}
