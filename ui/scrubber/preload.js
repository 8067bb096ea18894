// Fetches and runs plotly.js while the server is busy (loading the library, computing models), so that the live
// scrubber drawn afterwards starts drawing at once. It draws nothing and reports nothing: a report would rerun the
// script and interrupt the computation; the scrubber itself reports whether it could draw.
import { loadPlotly } from "./common.js";

export default function () {
  loadPlotly().catch(() => {});  // the scrubber that needs it tries again, and says why it failed
  return () => {};
}
