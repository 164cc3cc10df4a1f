// One metric series as a uPlot line chart. The chart's element carries `data-points` (the number of points
// uPlot holds after drawing) and `plotted` (their values), so a test can compare them with the API's.

import { h } from "./dom.js";
import { withUnit } from "./format.js";

const HEIGHT = 170;
const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
const WHOLE = new Set(["req", "instances"]); // counted in whole numbers: no 0.5 tick

const PERIOD_S = { "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };

function drawn(holder, values) {
  holder.dataset.points = String(values.length);
  holder.plotted = values;
}

function options(series, color, width, span) {
  const unit = series.unit;
  return {
    width,
    height: HEIGHT,
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false } },
    // The whole period on the x axis, however few points there are: a new app's first minutes read as such.
    scales: {
      x: { time: true, range: () => span },
      y: { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] },
    },
    axes: [
      { stroke: "#5b6675", grid: { stroke: "#eef1f5" }, ticks: { stroke: "#d7dde5" } },
      {
        stroke: "#5b6675",
        grid: { stroke: "#eef1f5" },
        ticks: { stroke: "#d7dde5" },
        size: 52,
        // The unit is in the chart's caption; ticks stay short so that they fit beside a phone-wide chart.
        values: (u, ticks) => ticks.map((v) => compact.format(v)),
        ...(WHOLE.has(unit)
          ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7] }
          : {}),
      },
    ],
    series: [
      { value: (u, v) => (v === null ? "—" : new Date(v * 1000).toLocaleString()) },
      {
        label: unit,
        stroke: color,
        width: 2,
        fill: `${color}22`,
        points: { show: series.values.length < 3 },
        value: (u, v) => withUnit(v, unit),
      },
    ],
    hooks: { draw: [(u) => drawn(u.root.parentElement, u.data[1])] },
  };
}

// Draws `series` (the API's MetricSeries) into `holder`; returns a function that removes the chart.
export function lineChart(holder, series, color, period) {
  holder.replaceChildren();
  if (!series.values.length) {
    drawn(holder, []);
    holder.append(h("p", { class: "empty" }, "No data in this period."));
    return () => {};
  }
  const xs = series.labels.map((iso) => Date.parse(iso) / 1000);
  const end = Math.max(xs[xs.length - 1], Date.now() / 1000);
  const span = [Math.min(xs[0], end - PERIOD_S[period]), end];
  const chart = new uPlot(options(series, color, holder.clientWidth || 320, span), [xs, series.values], holder);
  const resized = new ResizeObserver(() => {
    const width = holder.clientWidth;
    if (width > 0 && width !== chart.width) chart.setSize({ width, height: HEIGHT });
  });
  resized.observe(holder);
  return () => {
    resized.disconnect();
    chart.destroy();
  };
}
