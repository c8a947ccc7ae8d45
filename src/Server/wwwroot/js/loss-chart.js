// The loss chart: plain SVG, one polyline per series, axes with a few round ticks.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 560, HEIGHT = 260;
const MARGIN = { top: 12, right: 16, bottom: 36, left: 52 };

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** About `count` round values covering [low, high] (1, 2 or 5 times a power of ten apart). */
function ticks(low, high, count) {
  if (high <= low) return [low];
  const rough = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map(f => f * power).find(s => s >= rough) ?? 10 * power;
  const values = [];
  for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) values.push(Number(v.toPrecision(12)));
  return values;
}

function label(value) {
  return Math.abs(value) >= 1000 || Number.isInteger(value) ? String(value) : value.toPrecision(3).replace(/\.?0+$/, '');
}

/**
 * Draws the series (each {name, points: [{step, loss}]}) into the svg element, replacing what was
 * there. Each series is a polyline with class `${name}-loss` and one point per metrics event.
 */
export function drawLossChart(chart, series) {
  chart.replaceChildren();
  const all = series.flatMap(s => s.points);
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  chart.append(svg('rect', { class: 'plot-area', x: MARGIN.left, y: MARGIN.top, width: plotWidth, height: plotHeight }));
  if (all.length === 0) {
    chart.append(svg('text', { class: 'chart-empty', x: WIDTH / 2, y: HEIGHT / 2, 'text-anchor': 'middle' }, 'No metrics yet'));
    return;
  }

  const minStep = Math.min(...all.map(p => p.step)), maxStep = Math.max(...all.map(p => p.step));
  let minLoss = Math.min(...all.map(p => p.loss)), maxLoss = Math.max(...all.map(p => p.loss));
  const pad = (maxLoss - minLoss) * 0.08 || Math.abs(maxLoss) * 0.1 || 1;
  minLoss = Math.max(0, minLoss - pad);
  maxLoss += pad;
  const stepSpan = maxStep - minStep || 1;
  const x = step => MARGIN.left + ((step - minStep) / stepSpan) * plotWidth;
  const y = loss => MARGIN.top + (1 - (loss - minLoss) / (maxLoss - minLoss)) * plotHeight;

  const axes = svg('g', { class: 'axes' });
  for (const value of ticks(minLoss, maxLoss, 6)) {
    axes.append(svg('line', { class: 'grid', x1: MARGIN.left, x2: MARGIN.left + plotWidth, y1: y(value), y2: y(value) }));
    axes.append(svg('text', { x: MARGIN.left - 6, y: y(value) + 4, 'text-anchor': 'end' }, label(value)));
  }
  const stepTicks = maxStep === minStep ? [minStep] : ticks(minStep, maxStep, 6).filter(Number.isInteger);
  for (const value of stepTicks) {
    axes.append(svg('line', { class: 'tick', x1: x(value), x2: x(value), y1: MARGIN.top + plotHeight, y2: MARGIN.top + plotHeight + 4 }));
    axes.append(svg('text', { x: x(value), y: MARGIN.top + plotHeight + 16, 'text-anchor': 'middle' }, label(value)));
  }
  axes.append(svg('line', { class: 'axis', x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: MARGIN.top + plotHeight }));
  axes.append(svg('line', { class: 'axis', x1: MARGIN.left, x2: MARGIN.left + plotWidth, y1: MARGIN.top + plotHeight, y2: MARGIN.top + plotHeight }));
  axes.append(svg('text', { class: 'axis-title', x: MARGIN.left + plotWidth / 2, y: HEIGHT - 4, 'text-anchor': 'middle' }, 'step'));
  axes.append(svg('text', { class: 'axis-title', x: 12, y: MARGIN.top + plotHeight / 2, 'text-anchor': 'middle',
    transform: `rotate(-90 12 ${MARGIN.top + plotHeight / 2})` }, 'loss'));
  chart.append(axes);

  for (const { name, points } of series) {
    if (points.length === 0) continue;
    const sorted = [...points].sort((a, b) => a.step - b.step);
    const coordinates = sorted.map(p => `${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`).join(' ');
    chart.append(svg('polyline', { class: `${name}-loss`, points: coordinates }));
    // Validation comes once an epoch: markers keep a few points visible.
    if (name === 'valid' || sorted.length === 1) {
      for (const p of sorted) chart.append(svg('circle', { class: `${name}-point`, cx: x(p.step), cy: y(p.loss), r: 3 }));
    }
    const last = sorted[sorted.length - 1];
    const title = svg('title', {}, `${name} loss at step ${last.step}: ${last.loss.toFixed(4)}`);
    chart.lastElementChild.append(title);
  }
}
