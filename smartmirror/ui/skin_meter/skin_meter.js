// SmartMirror's skin meter (smartmirror/ui/skin_meter.py explains the design; frame_tag.py the strip's layout).
// It wraps the streamlit-webrtc component's getUserMedia, so that every raw camera frame passes through
// measure-and-tag before the browser encodes it: the mean colour inside the skin mask sent from Python, written
// as black and white cells in a strip below the picture. Nothing here talks to any server.
"use strict";
(() => {
  const TAG = { magic: 0xb4, cellsPerRow: 64, rows: 2, divisor: 30, colourBits: 20, scale: 4096 };
  const NOT_MEASURED = (1 << TAG.colourBits) - 1;
  const state = {
    status: "waiting for the camera", // "measuring" once frames pass; "unsupported" or "error: ..." otherwise
    settings: { dark_luma_fraction: 0.6, glare_luma: 245 },
    maskArgs: null, // the newest mask from Python (0..1 coordinates)
    pending: false, // maskArgs not rasterised yet
    mask: null, // the mask in use: {version, x0, y0, w, h, coverage}
    counter: 0,
    measured: 0,
    errors: 0,
    frameMs: 0, // mean time of measure-and-tag per frame (exponential, 1/20)
  };

  function post(type, extra) {
    window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type }, extra || {}), "*");
  }

  window.addEventListener("message", (event) => {
    const data = event.data;
    if (!data || data.type !== "streamlit:render") return;
    const args = data.args || {};
    if (args.settings) state.settings = args.settings;
    const mask = args.mask || null;
    const current = state.maskArgs;
    if ((mask === null) !== (current === null) || (mask && current && mask.version !== current.version)) {
      state.maskArgs = mask;
      state.pending = true;
    }
  });
  post("streamlit:componentReady", { apiVersion: 1 });
  post("streamlit:setFrameHeight", { height: 0 });

  // --- the mask and the mean colour (as smartmirror.vitals.signal.skin_roi_mean_rgb) ---------------------------

  function rasterise(win, args, width, height) {
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
    const canvas = new win.OffscreenCanvas(w, h);
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.translate(0.5 - x0, 0.5 - y0); // OpenCV's pixel (i, j) is centred on (i, j)
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

  function measure(win, context, width, height) {
    if (state.pending) {
      state.pending = false;
      state.mask = state.maskArgs ? rasterise(win, state.maskArgs, width, height) : null;
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

  // --- the camera track through the meter ----------------------------------------------------------------------

  let canvas = null;
  let context = null;

  function tagFrame(win, frame) {
    const started = performance.now();
    const width = frame.displayWidth;
    const height = frame.displayHeight;
    const rows = Math.max(TAG.rows, Math.round(height / TAG.divisor));
    if (!canvas || canvas.width !== width || canvas.height !== height + rows) {
      canvas = new win.OffscreenCanvas(width, height + rows);
      context = canvas.getContext("2d", { willReadFrequently: true, alpha: false });
      state.pending = state.maskArgs !== null; // rasterise again for this size
      state.mask = null;
    }
    context.drawImage(frame, 0, 0, width, height);
    const rgb = measure(win, context, width, height);
    if (rgb) state.measured++;
    drawTag(context, width, height, rows, tagBits(state.counter, state.mask ? state.mask.version : 0, rgb));
    state.counter = (state.counter + 1) & 0xffff;
    const init = { timestamp: frame.timestamp };
    if (frame.duration) init.duration = frame.duration;
    const tagged = new win.VideoFrame(canvas, init);
    state.frameMs += (performance.now() - started - state.frameMs) / 20;
    return tagged;
  }

  function meterStream(win, stream) {
    const [track] = stream.getVideoTracks();
    if (!track || typeof win.MediaStreamTrackProcessor !== "function"
        || typeof win.MediaStreamTrackGenerator !== "function") {
      state.status = "unsupported";
      return stream;
    }
    // a queue instead of the default single slot: when the page's main thread is busy for a moment (Streamlit
    // redrawing), frames wait with their capture timestamps instead of being dropped
    const processor = new win.MediaStreamTrackProcessor({ track, maxBufferSize: 8 });
    const generator = new win.MediaStreamTrackGenerator({ kind: "video" });
    const transform = new win.TransformStream({
      transform(frame, controller) {
        let tagged = null;
        try {
          tagged = tagFrame(win, frame);
        } catch (error) {
          state.errors++;
          state.status = `error: ${error}`;
        }
        if (tagged) {
          frame.close();
          controller.enqueue(tagged);
          state.status = "measuring";
        } else {
          controller.enqueue(frame);
        }
      },
    });
    processor.readable.pipeThrough(transform).pipeTo(generator.writable).catch(() => {});
    const stopGenerator = generator.stop.bind(generator);
    generator.stop = () => { // the webrtc component's STOP releases the camera too
      track.stop();
      stopGenerator();
    };
    state.status = "camera through the meter";
    return new win.MediaStream([generator, ...stream.getAudioTracks()]);
  }

  function patch() {
    let frames = [];
    try {
      frames = Array.from(window.parent.document.querySelectorAll("iframe"));
    } catch (error) {
      state.status = "unsupported (the page is not reachable)";
      return;
    }
    for (const frame of frames) {
      if (!`${frame.title} ${frame.src}`.includes("streamlit_webrtc")) continue;
      let win = null;
      try {
        win = frame.contentWindow;
        if (!win || !win.navigator || !win.navigator.mediaDevices) continue;
      } catch (error) {
        continue;
      }
      const devices = win.navigator.mediaDevices;
      if (typeof devices.getUserMedia !== "function" || devices.getUserMedia.smartmirrorMeter) continue;
      const original = devices.getUserMedia.bind(devices);
      const wrapped = async (constraints) => {
        const stream = await original(constraints);
        try {
          return meterStream(win, stream);
        } catch (error) {
          state.status = `error: ${error}`;
          return stream;
        }
      };
      wrapped.smartmirrorMeter = true;
      devices.getUserMedia = wrapped;
      win.smartmirrorMeter = state; // read by tests and when debugging
    }
  }
  patch(); // often: the webrtc frame's window is replaced when its page loads, and kiosk mode starts at once
  setInterval(patch, 50);
})();
