// Line charts with uPlot (vendor/uPlot.iife.min.js, from dashboard/package-lock.json).

import { el } from './dom.js';

const COLORS = ['#2458d6', '#067647', '#b54708', '#b42318', '#7a5af8', '#0e9384', '#c11574', '#667085'];

/**
 * A chart titled `title` for series `names`; returns `{node, update(times, columns)}`,
 * with `times` in Unix seconds and one array of values per series.
 */
export function lineChart(title, names, { unit = '', width = 560, height = 220 } = {}) {
  const box = el('div', { class: 'chart', 'data-chart': title });
  const heading = el('h3', {}, title);
  const area = el('div');
  box.append(heading, area);
  let plot = null;
  let shape = '';
  function build(seriesNames) {
    if (plot) plot.destroy();
    shape = seriesNames.join('\u0000');
    const opts = {
      width, height,
      scales: { x: { time: true } },
      axes: [{}, { values: (u, ticks) => ticks.map((v) => `${v}${unit}`), size: 60 }],
      series: [{}, ...seriesNames.map((name, i) => ({ label: name, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true }))],
    };
    plot = new window.uPlot(opts, [[], ...seriesNames.map(() => [])], area);
  }
  build(names);
  return {
    node: box,
    /**
     * Redraws with new data; `seriesNames` may change (new routes, new tiers). `span`
     * ([from, to], Unix seconds) fixes the time axis, so a few points do not stretch it.
     */
    update(times, columns, seriesNames = names, span = null) {
      if (seriesNames.join('\u0000') !== shape) build(seriesNames);
      plot.setData([times, ...columns], !span);
      if (span) plot.setScale('x', { min: span[0], max: span[1] });
    },
    destroy() { if (plot) plot.destroy(); },
  };
}
