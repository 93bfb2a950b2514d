// The try-on page: camera -> WebRTC -> server try-on -> back as a video track.
// No dependencies; the token (if the server has one) comes from ?token= and goes in a header.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.search).get("token");
  const headers = (extra) => Object.assign(token ? { "X-Tryon-Token": token } : {}, extra || {});
  const state = { pc: null, channel: null, stream: null, before: false, last: null, frames: 0 };
  window.tryon = state; // for debugging and tests

  const status = (text) => { $("status").textContent = text; };

  async function post(path, body, type) {
    const response = await fetch(path, { method: "POST", body, headers: headers({ "Content-Type": type }) });
    const reply = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) throw new Error(`${path}: ${response.status} ${reply.error || ""}`);
    return reply;
  }

  function gathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 3000); // whatever was gathered by then
    });
  }

  async function start() {
    $("start").disabled = true;
    try {
      status("asking for the camera...");
      state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
      $("local").srcObject = state.stream;
      const pc = new RTCPeerConnection({ iceServers: [] });
      state.pc = pc;
      const channel = pc.createDataChannel("tryon");
      state.channel = channel;
      channel.onmessage = (event) => onMessage(JSON.parse(event.data));
      for (const track of state.stream.getVideoTracks()) pc.addTrack(track, state.stream);
      pc.ontrack = (event) => { $("remote").srcObject = event.streams[0] || new MediaStream([event.track]); };
      pc.onconnectionstatechange = () => {
        status(`connection: ${pc.connectionState}`);
        if (pc.connectionState === "failed") stop();
      };
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      status("connecting...");
      const answer = await post("offer", JSON.stringify({
        sdp: pc.localDescription.sdp, type: pc.localDescription.type, garment: $("garment").value,
      }), "application/json");
      await pc.setRemoteDescription(answer);
      $("stop").disabled = false;
      $("toggle").disabled = false;
      state.timer = setInterval(updateStats, 1000);
    } catch (error) {
      status(String(error.message || error));
      stop();
    }
  }

  function stop() {
    clearInterval(state.timer);
    if (state.pc) state.pc.close();
    if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
    state.pc = state.channel = state.stream = null;
    $("start").disabled = false;
    $("stop").disabled = true;
    $("toggle").disabled = true;
  }

  function onMessage(message) {
    if (message.type === "frame") {
      $("server-ms").textContent = message.server_ms.toFixed(0);
      $("dropped").textContent = message.dropped;
      $("person").textContent = message.person ? "yes" : "no";
      state.frames = message.n;
    } else if (message.type === "garment") {
      status(message.ok ? `garment: ${message.id}` : `garment refused: ${message.error}`);
    } else if (message.type === "error") { // the server ended this stream (a worker lost, ...)
      stop();
      status(`stream ended: ${message.error} (Start opens a new one)`);
    }
  }

  async function updateStats() {
    if (!state.pc) return;
    const report = await state.pc.getStats();
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        const now = s.timestamp, decoded = s.framesDecoded || 0;
        if (state.last) {
          const fps = ((decoded - state.last.decoded) * 1000) / (now - state.last.time);
          $("fps").textContent = fps.toFixed(1);
        }
        state.last = { decoded, time: now };
      }
      if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) {
        $("rtt-ms").textContent = (s.currentRoundTripTime * 1000).toFixed(0);
      }
    });
  }

  function chooseGarment() {
    const id = $("garment").value;
    if (state.channel && state.channel.readyState === "open") state.channel.send(JSON.stringify({ garment: id }));
  }

  async function upload() {
    const file = $("upload").files[0];
    if (!file) return;
    try {
      status(`uploading ${file.name}...`);
      const reply = await post("garment", file, file.type || "application/octet-stream");
      const option = new Option(file.name, reply.id);
      $("garment").add(option);
      $("garment").value = reply.id;
      status(`uploaded ${file.name}`);
      chooseGarment();
    } catch (error) {
      status(String(error.message || error));
    }
  }

  function toggle() {
    state.before = !state.before;
    $("local").classList.toggle("hidden", !state.before);
    $("remote").classList.toggle("hidden", state.before);
    $("toggle").textContent = state.before ? "Show after" : "Show before";
  }

  $("start").onclick = start;
  $("stop").onclick = stop;
  $("toggle").onclick = toggle;
  $("garment").onchange = chooseGarment;
  $("upload").onchange = upload;
})();
