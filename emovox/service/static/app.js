// emovox web page: upload or record audio, show emotion probabilities and the timeline chart.
// Plain JavaScript, no external libraries (the page works offline).
"use strict";

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf"];
const $ = (id) => document.getElementById(id);

function setStatus(text) { $("status").textContent = text || ""; }

function showError(text) {
  const el = $("error");
  el.textContent = text || "";
  el.hidden = !text;
}

async function postAudio(url, blob, filename) {
  const form = new FormData();
  form.append("file", blob, filename);
  const resp = await fetch(url, { method: "POST", body: form });
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok) {
    const err = body && body.error ? body.error : { message: `HTTP ${resp.status}` };
    throw new Error(err.message + (err.hint ? ` (${err.hint})` : ""));
  }
  return body;
}

function renderPrediction(pred) {
  $("top-label").textContent = pred.label;
  $("top-prob").textContent = `(${(100 * pred.probabilities[pred.label]).toFixed(1)}%)`;
  const sf = pred.speech_fraction == null ? "" : `, speech ${(100 * pred.speech_fraction).toFixed(0)}%`;
  $("meta").textContent = `${pred.source}: ${pred.duration.toFixed(2)} s${sf}`;
  const tbody = $("probabilities").querySelector("tbody");
  tbody.replaceChildren();
  const entries = Object.entries(pred.probabilities).sort((a, b) => b[1] - a[1]);
  for (const [label, p] of entries) {
    const tr = document.createElement("tr");
    if (label === pred.label) tr.className = "top";
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.round(200 * p)}px`;
    for (const cell of [label, (100 * p).toFixed(1) + "%", bar]) {
      const td = document.createElement("td");
      if (typeof cell === "string") td.textContent = cell; else td.appendChild(cell);
      tr.appendChild(td);
    }
    tr.dataset.label = label;
    tbody.appendChild(tr);
  }
}

function renderTimeline(tl) {
  const canvas = $("timeline-chart");
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, pad = { l: 40, r: 30, t: 10, b: 30 };
  const pw = W - pad.l - pad.r, ph = H - pad.t - pad.b;
  const dur = Math.max(tl.duration, 1e-3);
  const x = (t) => pad.l + (t / dur) * pw;
  const y = (p) => pad.t + (1 - p) * ph;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#e8e8e8";
  for (const s of tl.speech) ctx.fillRect(x(s.start), pad.t, Math.max(1, x(s.end) - x(s.start)), ph);
  ctx.strokeStyle = "#999";
  ctx.strokeRect(pad.l, pad.t, pw, ph);
  ctx.fillStyle = "#444";
  ctx.font = "11px sans-serif";
  for (const p of [0, 0.5, 1]) ctx.fillText(p.toFixed(1), 8, y(p) + 4);
  const ticks = 6;
  for (let i = 0; i <= ticks; i++) {
    const t = (dur * i) / ticks;
    ctx.fillText(`${t.toFixed(1)}s`, x(t) - 10, H - 10);
  }
  const legend = $("legend");
  legend.replaceChildren();
  tl.labels.forEach((label, i) => {
    const color = COLORS[i % COLORS.length];
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let drawing = false;
    for (const w of tl.windows) {
      if (!w.probabilities) { drawing = false; continue; }
      const cx = x((w.start + w.end) / 2), cy = y(w.probabilities[label]);
      if (drawing) ctx.lineTo(cx, cy); else ctx.moveTo(cx, cy);
      drawing = true;
    }
    ctx.stroke();
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = color;
    item.append(swatch, label);
    legend.appendChild(item);
  });
  canvas.dataset.windows = String(tl.windows.length);
}

async function analyse(blob, filename) {
  showError("");
  setStatus(`Analysing ${filename}…`);
  $("analyse").disabled = true;
  try {
    const pred = await postAudio("/v1/predict", blob, filename);
    renderPrediction(pred);
    $("result").hidden = false;
    setStatus("Computing the timeline…");
    const tl = await postAudio("/v1/timeline", blob, filename);
    renderTimeline(tl);
    setStatus("Done.");
  } catch (err) {
    setStatus("");
    showError(err.message);
  } finally {
    $("analyse").disabled = false;
  }
}

// ------------------------------------------------------------------ microphone -> 16-bit WAV
let recorder = null;

function encodeWav(chunks, rate) {
  const n = chunks.reduce((s, c) => s + c.length, 0);
  const buf = new ArrayBuffer(44 + 2 * n);
  const v = new DataView(buf);
  const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  str(0, "RIFF"); v.setUint32(4, 36 + 2 * n, true); str(8, "WAVE"); str(12, "fmt ");
  v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
  v.setUint32(24, rate, true); v.setUint32(28, 2 * rate, true); v.setUint16(32, 2, true);
  v.setUint16(34, 16, true); str(36, "data"); v.setUint32(40, 2 * n, true);
  let o = 44;
  for (const c of chunks) {
    for (let i = 0; i < c.length; i++, o += 2) {
      const s = Math.max(-1, Math.min(1, c[i]));
      v.setInt16(o, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
  }
  return new Blob([buf], { type: "audio/wav" });
}

async function startRecording() {
  showError("");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("This browser cannot record here (the page needs http://127.0.0.1 or https).");
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const context = new AudioContext();
    const source = context.createMediaStreamSource(stream);
    const node = context.createScriptProcessor(4096, 1, 1);
    const chunks = [];
    node.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
    source.connect(node);
    node.connect(context.destination);
    recorder = { stream, context, node, source, chunks, started: Date.now() };
    $("record").disabled = true;
    $("stop").disabled = false;
    $("record-status").textContent = "Recording…";
  } catch (err) {
    showError(`Microphone not available: ${err.message}`);
  }
}

async function stopRecording() {
  if (!recorder) return;
  const { stream, context, node, source, chunks } = recorder;
  recorder = null;
  source.disconnect(); node.disconnect();
  stream.getTracks().forEach((t) => t.stop());
  const rate = context.sampleRate;
  await context.close();
  $("record").disabled = false;
  $("stop").disabled = true;
  $("record-status").textContent = "";
  await analyse(encodeWav(chunks, rate), "recording.wav");
}

async function loadModelInfo() {
  try {
    const resp = await fetch("/healthz");
    const body = await resp.json();
    const m = body.model || {};
    $("model-info").textContent = `Model: ${m.name || "?"} · labels: ${(m.labels || []).join(", ")}`;
  } catch (e) { /* informational only */ }
}

document.addEventListener("DOMContentLoaded", () => {
  $("upload-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const file = $("file").files[0];
    if (!file) { showError("Choose an audio file first."); return; }
    analyse(file, file.name);
  });
  $("record").addEventListener("click", startRecording);
  $("stop").addEventListener("click", stopRecording);
  loadModelInfo();
});
