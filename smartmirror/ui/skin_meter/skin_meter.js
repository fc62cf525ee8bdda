// SmartMirror's skin meter in the page (smartmirror/ui/skin_meter.py explains the design).
// It wraps the streamlit-webrtc component's getUserMedia so that every raw camera frame passes through
// measure-and-tag (skin_meter_core.js) before the browser encodes it, in a worker (skin_meter_worker.js) so the
// page's own work never makes the camera drop frames; on the page's thread where a worker cannot take the streams.
// It receives the skin mask from Python as the component's arguments and sends nothing anywhere.
"use strict";
(() => {
  const core = globalThis.SmartMirrorMeterCore;
  const state = { // read by tests and when debugging, as window.smartmirrorMeter in the webrtc component's frame
    status: "waiting for the camera", // "measuring" once frames pass; "unsupported" or "error: ..." otherwise
    thread: null, // "worker" or "page"
    counter: 0,
    measured: 0,
    errors: 0,
    frameMs: 0,
    mask: null, // the mask version in use
  };
  const latest = { mask: null, settings: null };
  const meters = new Set(); // the running pipelines: {setMask, setSettings}

  function post(type, extra) {
    window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type }, extra || {}), "*");
  }

  let rendered = false;
  window.addEventListener("message", (event) => {
    const data = event.data;
    if (!data || data.type !== "streamlit:render") return;
    rendered = true;
    const args = data.args || {};
    if (args.settings) latest.settings = args.settings;
    latest.mask = args.mask || null;
    meters.forEach((meter) => {
      if (latest.settings) meter.setSettings(latest.settings);
      meter.setMask(latest.mask);
    });
  });
  // the handshake: sent again until the first render comes (a ready sent before the page listens is lost)
  const ready = () => {
    if (rendered) return;
    post("streamlit:componentReady", { apiVersion: 1 });
    post("streamlit:setFrameHeight", { height: 0 });
    setTimeout(ready, 500);
  };
  ready();

  function inWorker(processor, generator, onStop) {
    const worker = new Worker(new URL("skin_meter_worker.js", document.baseURI));
    try {
      worker.postMessage({ type: "start", readable: processor.readable, writable: generator.writable },
        [processor.readable, generator.writable]);
    } catch (error) {
      worker.terminate();
      throw error;
    }
    const meter = {
      setMask: (mask) => worker.postMessage({ type: "mask", mask }),
      setSettings: (settings) => worker.postMessage({ type: "settings", settings }),
    };
    worker.onmessage = (event) => {
      const report = event.data && event.data.state;
      if (!report) return;
      Object.assign(state, { status: report.status, counter: report.counter, measured: report.measured,
        errors: report.errors, frameMs: report.frameMs, mask: report.maskVersion });
    };
    onStop(() => {
      meters.delete(meter);
      setTimeout(() => worker.terminate(), 1000);
    });
    state.thread = "worker";
    return meter;
  }

  function onPage(win, processor, generator, onStop) {
    const meter = core.createMeter({ OffscreenCanvas: win.OffscreenCanvas, VideoFrame: win.VideoFrame });
    const tagging = meter.transformer(state);
    const transform = new win.TransformStream({
      async transform(frame, controller) {
        await tagging.transform(frame, controller);
        Object.assign(state, { counter: meter.state.counter, measured: meter.state.measured,
          frameMs: meter.state.frameMs, mask: meter.state.mask && meter.state.mask.version });
      },
    });
    processor.readable.pipeThrough(transform).pipeTo(generator.writable).catch(() => {});
    onStop(() => meters.delete(meter));
    state.thread = "page";
    return meter;
  }

  function meterStream(win, stream) {
    const [track] = stream.getVideoTracks();
    if (!track || typeof win.MediaStreamTrackProcessor !== "function"
        || typeof win.MediaStreamTrackGenerator !== "function") {
      state.status = "unsupported";
      return stream;
    }
    const stops = [];
    const onStop = (callback) => stops.push(callback);
    const start = (run) => {
      // a queue instead of the default single slot: a frame that waits keeps its capture timestamp
      const processor = new win.MediaStreamTrackProcessor({ track, maxBufferSize: 8 });
      const generator = new win.MediaStreamTrackGenerator({ kind: "video" });
      return { meter: run(processor, generator), generator };
    };
    let running;
    try {
      running = start((processor, generator) => inWorker(processor, generator, onStop));
    } catch (error) { // no transferable streams here: measure on the page's thread
      stops.length = 0;
      running = start((processor, generator) => onPage(win, processor, generator, onStop));
    }
    const { meter, generator } = running;
    if (latest.settings) meter.setSettings(latest.settings);
    meter.setMask(latest.mask);
    meters.add(meter);
    const stopGenerator = generator.stop.bind(generator);
    generator.stop = () => { // the webrtc component's STOP releases the camera too
      track.stop();
      stopGenerator();
      stops.forEach((callback) => callback());
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
      win.smartmirrorMeter = state;
    }
  }
  patch(); // often: the webrtc frame's window is replaced when its page loads, and kiosk mode starts at once
  setInterval(patch, 50);
})();
