// SmartMirror's skin meter off the page's main thread: the camera's frames come in on a transferred
// ReadableStream and go out, tagged, on a transferred WritableStream (skin_meter.js sets it up).
"use strict";
importScripts("skin_meter_core.js");

const meter = globalThis.SmartMirrorMeterCore.createMeter({ OffscreenCanvas, VideoFrame });
const report = { status: "waiting for the camera", errors: 0 };

function post() {
  const { counter, measured, frameMs, mask } = meter.state;
  self.postMessage({ type: "state", state: { ...report, counter, measured, frameMs, maskVersion: mask && mask.version } });
}

self.onmessage = (event) => {
  const data = event.data || {};
  if (data.type === "mask") meter.setMask(data.mask);
  if (data.type === "settings") meter.setSettings(data.settings);
  if (data.type !== "start") return;
  const transform = new TransformStream(meter.transformer(report));
  report.status = "camera through the meter";
  data.readable.pipeThrough(transform).pipeTo(data.writable).catch(() => { report.status = "stopped"; post(); });
};
setInterval(post, 250);
