// A line chart on a canvas. A long run has more points than pixels: each series
// is drawn from its min and max per pixel column, so a 10,000-step curve draws
// in one pass and no spike disappears; the data itself is kept whole.

export interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>; // (step, value), in step order
}

export function draw(canvas: HTMLCanvasElement, series: Series[]): void {
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const { width, height } = canvas;
  const pad = 36;
  ctx.clearRect(0, 0, width, height);
  const all = series.flatMap((s) => s.points);
  if (!all.length) return;
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [x, y] of all) {
    if (!Number.isFinite(y)) continue;
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  const px = (x: number) => pad + ((x - x0) / (x1 - x0)) * (width - 2 * pad);
  const py = (y: number) => height - pad - ((y - y0) / (y1 - y0)) * (height - 2 * pad);
  ctx.strokeStyle = "#999";
  ctx.fillStyle = "#555";
  ctx.font = "11px sans-serif";
  ctx.strokeRect(pad, pad, width - 2 * pad, height - 2 * pad);
  ctx.fillText(y1.toPrecision(3), 2, pad + 4);
  ctx.fillText(y0.toPrecision(3), 2, height - pad);
  ctx.fillText(`step ${x0}`, pad, height - pad + 14);
  ctx.fillText(`${x1}`, width - pad - 20, height - pad + 14);
  series.forEach((s, n) => {
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.fillText(s.name, pad + 6 + n * 110, pad - 8);
    ctx.beginPath();
    for (const [x, lo, hi] of columns(s.points, px)) {
      ctx.lineTo(x, py(lo));
      if (hi !== lo) ctx.lineTo(x, py(hi));
    }
    ctx.stroke();
  });
}

/** Per pixel column: (x, min, max) of the points that fall in it. */
export function columns(
  points: Array<[number, number]>,
  px: (x: number) => number,
): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  for (const [x, y] of points) {
    if (!Number.isFinite(y)) continue;
    const col = Math.round(px(x));
    const last = out[out.length - 1];
    if (last && last[0] === col) {
      last[1] = Math.min(last[1], y);
      last[2] = Math.max(last[2], y);
    } else out.push([col, y, y]);
  }
  return out;
}
