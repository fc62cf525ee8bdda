// SmartMirror's skin meter, the part that touches frames (smartmirror/ui/skin_meter.py explains the design,
// frame_tag.py the strip's layout). Loaded by the page (skin_meter.js) and by its worker (skin_meter_worker.js):
// createMeter(env) returns a meter whose tagFrame(frame) measures the skin inside the newest mask on the raw
// frame and returns (a promise of) a new I420 frame, the camera's picture with the tag strip below it.
// env: {OffscreenCanvas, VideoFrame}; the canvas only rasterises the mask.
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

    // Python reads the encoded I420 frame with OpenCV's BT.601 studio-range conversion (cv2.COLOR_YUV2BGR_I420:
    // 20-bit fixed point, each chroma sample covering 2x2 pixels); the meter reads the raw frame's bytes the same
    // way, to the same integers.
    function bt601Rgb(y, u, v) {
      const luma = Math.max(0, y - 16) * 1220542;
      const half = 1 << 19;
      const clamp = (x) => (x < 0 ? 0 : x > 255 ? 255 : x);
      return [clamp((luma + half + 1673527 * (v - 128)) >> 20),
        clamp((luma + half - 852492 * (v - 128) - 409993 * (u - 128)) >> 20),
        clamp((luma + half + 2116026 * (u - 128)) >> 20)];
    }

    function roiMean(picture, mask) {
      const coverage = mask.coverage;
      const rgb = new Uint8Array(3 * coverage.length);
      const luma = new Uint8Array(coverage.length);
      const histogram = new Uint32Array(256);
      let inside = 0;
      for (let row = 0; row < mask.h; row++) {
        const y = mask.y0 + row;
        for (let column = 0; column < mask.w; column++) {
          const i = row * mask.w + column;
          if (!coverage[i]) continue;
          const x = mask.x0 + column;
          const c = (y >> 1) * picture.chromaStride + (x >> 1);
          const [r, g, b] = bt601Rgb(picture.data[y * picture.width + x], picture.data[picture.uOffset + c],
            picture.data[picture.vOffset + c]);
          rgb[3 * i] = r;
          rgb[3 * i + 1] = g;
          rgb[3 * i + 2] = b;
          // OpenCV's BGR->YCrCb luma, fixed point
          const l = (r * 4899 + g * 9617 + b * 1868 + 8192) >> 14;
          luma[i] = l;
          if (coverage[i] > 127) {
            histogram[l]++;
            inside++;
          }
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
        total += weight;
        red += weight * rgb[3 * i];
        green += weight * rgb[3 * i + 1];
        blue += weight * rgb[3 * i + 2];
      }
      return total > 0 ? [red / total, green / total, blue / total] : null;
    }

    function measure(picture) {
      if (state.pending) {
        state.pending = false;
        state.mask = state.maskArgs ? rasterise(state.maskArgs, picture.width, picture.height) : null;
      }
      return state.mask ? roiMean(picture, state.mask) : null;
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

    // The strip in the luma plane: black (16) and white (235) cells under the picture, grey chroma.
    function drawTag(picture, bits) {
      const { data, width, height, rows } = picture;
      data.fill(16, height * width, picture.uOffset);
      bits.forEach((bit, i) => {
        if (!bit) return;
        const row = Math.floor(i / TAG.cellsPerRow);
        const column = i % TAG.cellsPerRow;
        const x0 = Math.round((column * width) / TAG.cellsPerRow);
        const x1 = Math.round(((column + 1) * width) / TAG.cellsPerRow);
        const y0 = Math.round((row * rows) / TAG.rows);
        const y1 = Math.round(((row + 1) * rows) / TAG.rows);
        for (let y = height + y0; y < height + y1; y++) data.fill(235, y * width + x0, y * width + x1);
      });
      const pictureChromaRows = Math.ceil(height / 2);
      for (const offset of [picture.uOffset, picture.vOffset]) {
        data.fill(128, offset + pictureChromaRows * picture.chromaStride, offset + picture.chromaRows * picture.chromaStride);
      }
    }

    // --- the frame out: I420 made from the camera's own bytes ------------------------------------------------
    // Not a canvas: Chromium encodes a canvas frame as BT.709 full range, which Python's BT.601 studio-range
    // decode reads about 4 % off in green; the camera's YUV goes to the encoder as it came (full-range cameras
    // scaled to studio range) and the meter measures it as Python will see it.

    const STUDIO_LUMA = Uint8Array.from({ length: 256 }, (_, v) => Math.round(16 + (v * 219) / 255));
    const STUDIO_CHROMA = Uint8Array.from({ length: 256 }, (_, v) => Math.round(128 + ((v - 128) * 224) / 255));

    function planesOut(width, height) {
      const rows = Math.max(TAG.rows, Math.round(height / TAG.divisor)); // as frame_tag.strip_rows
      const frameHeight = height + rows + ((height + rows) % 2); // I420 wants an even height; a spare black row
      const chromaStride = Math.ceil(width / 2);
      const chromaRows = frameHeight / 2;
      const uOffset = width * frameHeight;
      const vOffset = uOffset + chromaStride * chromaRows;
      return { width, height, rows, frameHeight, chromaStride, chromaRows, uOffset, vOffset,
        data: new Uint8Array(vOffset + chromaStride * chromaRows), scratch: null };
    }

    function copyRows(from, fromOffset, fromStride, to, toOffset, toStride, length, rows) {
      for (let r = 0; r < rows; r++) {
        to.set(from.subarray(fromOffset + r * fromStride, fromOffset + r * fromStride + length), toOffset + r * toStride);
      }
    }

    // the camera's picture into out's planes, as studio-range BT.601 I420
    async function readPicture(frame, out) {
      const { width, height, chromaStride } = out;
      const chromaHeight = Math.ceil(height / 2);
      const format = frame.format;
      if (format === "I420") {
        await frame.copyTo(out.data, { layout: [{ offset: 0, stride: width }, { offset: out.uOffset, stride: chromaStride },
          { offset: out.vOffset, stride: chromaStride }] });
      } else {
        const size = frame.allocationSize();
        if (!out.scratch || out.scratch.length !== size) out.scratch = new Uint8Array(size);
        const scratch = out.scratch;
        const layout = await frame.copyTo(scratch);
        if (format === "I420A" || format === "NV12") {
          copyRows(scratch, layout[0].offset, layout[0].stride, out.data, 0, width, width, height);
        }
        if (format === "I420A") {
          copyRows(scratch, layout[1].offset, layout[1].stride, out.data, out.uOffset, chromaStride, chromaStride, chromaHeight);
          copyRows(scratch, layout[2].offset, layout[2].stride, out.data, out.vOffset, chromaStride, chromaStride, chromaHeight);
        } else if (format === "NV12") {
          for (let r = 0; r < chromaHeight; r++) {
            const from = layout[1].offset + r * layout[1].stride;
            for (let c = 0; c < chromaStride; c++) {
              out.data[out.uOffset + r * chromaStride + c] = scratch[from + 2 * c];
              out.data[out.vOffset + r * chromaStride + c] = scratch[from + 2 * c + 1];
            }
          }
        } else if (["RGBA", "RGBX", "BGRA", "BGRX"].includes(format)) {
          rgbToI420(scratch, layout[0], format.startsWith("B"), out);
          return;
        } else {
          throw new Error(`unsupported camera pixel format ${format}`);
        }
      }
      if (frame.colorSpace && frame.colorSpace.fullRange === true) {
        const { data } = out;
        for (let i = 0; i < width * height; i++) data[i] = STUDIO_LUMA[data[i]];
        for (const offset of [out.uOffset, out.vOffset]) {
          for (let i = offset; i < offset + chromaStride * chromaHeight; i++) data[i] = STUDIO_CHROMA[data[i]];
        }
      }
    }

    // BT.601 studio range, each chroma sample the mean of its 2x2 pixels
    function rgbToI420(rgba, plane, bgr, out) {
      const { width, height, data, chromaStride } = out;
      const [ri, bi] = bgr ? [2, 0] : [0, 2];
      const at = (x, y) => plane.offset + y * plane.stride + 4 * x;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const j = at(x, y);
          data[y * width + x] = Math.round(16 + 0.256788 * rgba[j + ri] + 0.504129 * rgba[j + 1] + 0.097906 * rgba[j + bi]);
        }
      }
      for (let cy = 0; cy < Math.ceil(height / 2); cy++) {
        for (let cx = 0; cx < chromaStride; cx++) {
          let r = 0;
          let g = 0;
          let b = 0;
          let n = 0;
          for (let y = 2 * cy; y < Math.min(height, 2 * cy + 2); y++) {
            for (let x = 2 * cx; x < Math.min(width, 2 * cx + 2); x++) {
              const j = at(x, y);
              r += rgba[j + ri];
              g += rgba[j + 1];
              b += rgba[j + bi];
              n++;
            }
          }
          [r, g, b] = [r / n, g / n, b / n];
          data[out.uOffset + cy * chromaStride + cx] = Math.round(128 - 0.148223 * r - 0.290993 * g + 0.439216 * b);
          data[out.vOffset + cy * chromaStride + cx] = Math.round(128 + 0.439216 * r - 0.367788 * g - 0.071427 * b);
        }
      }
    }

    const STUDIO_BT601 = { matrix: "smpte170m", primaries: "smpte170m", transfer: "smpte170m", fullRange: false };

    let out = null; // the planes of the frame out, kept from frame to frame (VideoFrame copies them)

    async function tagFrame(frame) {
      const started = performance.now();
      const width = frame.visibleRect.width;
      const height = frame.visibleRect.height;
      if (!out || out.width !== width || out.height !== height) {
        out = planesOut(width, height);
        state.pending = state.maskArgs !== null; // rasterise again for this size
        state.mask = null;
      }
      await readPicture(frame, out);
      const rgb = measure(out);
      if (rgb) state.measured++;
      drawTag(out, tagBits(state.counter, state.mask ? state.mask.version : 0, rgb));
      state.counter = (state.counter + 1) & 0xffff;
      const init = { format: "I420", codedWidth: width, codedHeight: out.frameHeight, timestamp: frame.timestamp,
        colorSpace: STUDIO_BT601 };
      if (frame.duration) init.duration = frame.duration;
      const tagged = new env.VideoFrame(out.data, init);
      state.frameMs += (performance.now() - started - state.frameMs) / 20;
      return tagged;
    }


    // A TransformStream transformer: each frame out tagged, or as it came when tagging failed (counted in
    // report.errors, the reason in report.status: the stream never stops for the meter).
    function transformer(report) {
      return {
        async transform(frame, controller) {
          let tagged = null;
          try {
            tagged = await tagFrame(frame);
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
