// SmartMirror's skin meter, the part that touches frames (smartmirror/ui/skin_meter.py explains the design,
// frame_tag.py the strip's layout). Loaded by the page (skin_meter.js) and by its worker (skin_meter_worker.js):
// createMeter(env) returns a meter whose tagFrame(frame) measures the skin inside the newest mask on the raw
// frame and returns a new frame with the tag strip below the picture. env: {OffscreenCanvas, VideoFrame}.
"use strict";
(() => {
  const TAG = { magic: 0xb4, cellsPerRow: 64, rows: 2, divisor: 30, colourBits: 20, scale: 4096 };
  const NOT_MEASURED = (1 << TAG.colourBits) - 1;

  function createMeter(env) {
    const state = {
      settings: { dark_luma_fraction: 0.6, glare_luma: 245 },
      maskArgs: null, // the newest mask from Python (0..1 coordinates)
      pending: false, // maskArgs not rasterised yet
      mask: null, // the mask in use: {version, x0, y0, w, h, coverage}
      counter: 0,
      measured: 0,
      frameMs: 0, // mean time of measure-and-tag per frame (exponential, 1/20)
    };

    function setMask(mask) {
      const current = state.maskArgs;
      if ((mask === null) !== (current === null) || (mask && current && mask.version !== current.version)) {
        state.maskArgs = mask;
        state.pending = true;
      }
    }

    // --- the mask and the mean colour (as smartmirror.vitals.signal.skin_roi_mean_rgb) ---------------------------

    function rasterise(args, width, height) {
      const toPixels = (points) => points.map(([x, y]) => [x * width, y * height]);
      const outline = toPixels(args.outline);
      const holes = args.holes.map(toPixels);
      const xs = outline.map((p) => p[0]);
      const ys = outline.map((p) => p[1]);
      const x0 = Math.max(0, Math.floor(Math.min(...xs)) - 1);
      const y0 = Math.max(0, Math.floor(Math.min(...ys)) - 1);
      const x1 = Math.min(width, Math.ceil(Math.max(...xs)) + 2);
      const y1 = Math.min(height, Math.ceil(Math.max(...ys)) + 2);
      if (x1 - x0 < 2 || y1 - y0 < 2) return null;
      const w = x1 - x0;
      const h = y1 - y0;
      const canvas = new env.OffscreenCanvas(w, h);
      const context = canvas.getContext("2d", { willReadFrequently: true });
      // OpenCV centres pixel (i, j) on (i, j), i.e. +0.5 here; its anti-aliased fillPoly (4 sub-pixel bits) then
      // sits another quarter pixel down-right: +0.75 matches it on a real face within 0.04 grey levels (0.2 at +0.5)
      context.translate(0.75 - x0, 0.75 - y0);
      const fill = (points) => {
        context.beginPath();
        points.forEach(([x, y], i) => (i ? context.lineTo(x, y) : context.moveTo(x, y)));
        context.closePath();
        context.fill();
      };
      context.fillStyle = "#fff";
      fill(outline);
      context.globalCompositeOperation = "destination-out";
      holes.forEach(fill);
      const rgba = context.getImageData(0, 0, w, h).data;
      const coverage = new Uint8Array(w * h);
      for (let i = 0; i < coverage.length; i++) coverage[i] = rgba[4 * i + 3];
      return { version: args.version, x0, y0, w, h, coverage };
    }

    function roiMean(context, mask) {
      const rgba = context.getImageData(mask.x0, mask.y0, mask.w, mask.h).data;
      const coverage = mask.coverage;
      const luma = new Uint8Array(coverage.length);
      const histogram = new Uint32Array(256);
      let inside = 0;
      for (let i = 0; i < coverage.length; i++) {
        if (!coverage[i]) continue;
        const j = 4 * i;
        // OpenCV's BGR->YCrCb luma, fixed point
        const y = (rgba[j] * 4899 + rgba[j + 1] * 9617 + rgba[j + 2] * 1868 + 8192) >> 14;
        luma[i] = y;
        if (coverage[i] > 127) {
          histogram[y]++;
          inside++;
        }
      }
      if (!inside) return null;
      let cumulative = 0;
      let low = -1;
      let high = -1;
      for (let v = 0; v < 256 && high < 0; v++) {
        cumulative += histogram[v];
        if (low < 0 && cumulative > (inside - 1) >> 1) low = v;
        if (cumulative > inside >> 1) high = v;
      }
      const median = (low + high) / 2;
      const darkest = Math.max(Math.trunc(state.settings.dark_luma_fraction * median), 1);
      const brightest = state.settings.glare_luma;
      let total = 0;
      let red = 0;
      let green = 0;
      let blue = 0;
      for (let i = 0; i < coverage.length; i++) {
        const weight = coverage[i];
        if (!weight || luma[i] < darkest || luma[i] > brightest) continue;
        const j = 4 * i;
        total += weight;
        red += weight * rgba[j];
        green += weight * rgba[j + 1];
        blue += weight * rgba[j + 2];
      }
      return total > 0 ? [red / total, green / total, blue / total] : null;
    }

    function measure(context, width, height) {
      if (state.pending) {
        state.pending = false;
        state.mask = state.maskArgs ? rasterise(state.maskArgs, width, height) : null;
      }
      return state.mask ? roiMean(context, state.mask) : null;
    }

    // --- the tag (as smartmirror.ui.frame_tag) -------------------------------------------------------------------

    function crc16(bytes) {
      let crc = 0xffff;
      for (const byte of bytes) {
        crc ^= byte << 8;
        for (let k = 0; k < 8; k++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
      }
      return crc;
    }

    function tagBits(counter, version, rgb) {
      const bits = [];
      const push = (value, width) => {
        for (let i = width - 1; i >= 0; i--) bits.push(Math.floor(value / 2 ** i) % 2);
      };
      const colours = rgb && rgb.every(Number.isFinite)
        ? rgb.map((v) => Math.min(NOT_MEASURED - 1, Math.max(0, Math.round(v * TAG.scale))))
        : [NOT_MEASURED, NOT_MEASURED, NOT_MEASURED];
      push(TAG.magic, 8);
      push(counter & 0xffff, 16);
      push(version & 0xff, 8);
      colours.forEach((v) => push(v, TAG.colourBits));
      const padded = bits.concat(new Array((8 - (bits.length % 8)) % 8).fill(0));
      const bytes = [];
      for (let i = 0; i < padded.length; i += 8) bytes.push(parseInt(padded.slice(i, i + 8).join(""), 2));
      push(crc16(bytes), 16);
      return bits;
    }

    function drawTag(context, width, height, rows, bits) {
      context.fillStyle = "#000";
      context.fillRect(0, height, width, rows);
      context.fillStyle = "#fff";
      bits.forEach((bit, i) => {
        if (!bit) return;
        const row = Math.floor(i / TAG.cellsPerRow);
        const column = i % TAG.cellsPerRow;
        const x0 = Math.round((column * width) / TAG.cellsPerRow);
        const x1 = Math.round(((column + 1) * width) / TAG.cellsPerRow);
        const y0 = Math.round((row * rows) / TAG.rows);
        const y1 = Math.round(((row + 1) * rows) / TAG.rows);
        context.fillRect(x0, height + y0, x1 - x0, y1 - y0);
      });
    }


    let canvas = null;
    let context = null;

    function tagFrame(frame) {
      const started = performance.now();
      const width = frame.displayWidth;
      const height = frame.displayHeight;
      const rows = Math.max(TAG.rows, Math.round(height / TAG.divisor));
      if (!canvas || canvas.width !== width || canvas.height !== height + rows) {
        canvas = new env.OffscreenCanvas(width, height + rows);
        context = canvas.getContext("2d", { willReadFrequently: true, alpha: false });
        state.pending = state.maskArgs !== null; // rasterise again for this size
        state.mask = null;
      }
      context.drawImage(frame, 0, 0, width, height);
      const rgb = measure(context, width, height);
      if (rgb) state.measured++;
      drawTag(context, width, height, rows, tagBits(state.counter, state.mask ? state.mask.version : 0, rgb));
      state.counter = (state.counter + 1) & 0xffff;
      const init = { timestamp: frame.timestamp };
      if (frame.duration) init.duration = frame.duration;
      const tagged = new env.VideoFrame(canvas, init);
      state.frameMs += (performance.now() - started - state.frameMs) / 20;
      return tagged;
    }


    // A TransformStream transformer: each frame out tagged, or as it came when tagging failed (counted in
    // report.errors, the reason in report.status: the stream never stops for the meter).
    function transformer(report) {
      return {
        transform(frame, controller) {
          let tagged = null;
          try {
            tagged = tagFrame(frame);
          } catch (error) {
            report.errors++;
            report.status = `error: ${error}`;
          }
          if (tagged) {
            frame.close();
            controller.enqueue(tagged);
            report.status = "measuring";
          } else {
            controller.enqueue(frame);
          }
        },
      };
    }

    return {
      state,
      transformer,
      setMask,
      setSettings: (settings) => { state.settings = settings; },
      tagFrame,
      tagBits, // (counter, version, rgb | null) -> the strip's bits (tests compare them with frame_tag.tag_bits)
    };
  }

  globalThis.SmartMirrorMeterCore = { createMeter };
})();
